// test_publisher.h — a stand-in apiserver for the writer's tests and benchmark:
// publishes delta batches (one QuoteBatch per subject, contiguous sequences)
// and answers snapshot requests exactly as docs/protocol.md says, built on the
// shared encode_batch() and subject scheme. It can also misbehave on purpose:
// skip a sequence, send raw (corrupt or foreign) payloads, restart with a new
// epoch, or stay silent to snapshot requests.
#pragma once
#include <nats/nats.h>

#include <atomic>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "batch.h"
#include "quote.h"

namespace tickfan::testing {

class TestPublisher {
 public:
  // Connects to `url` (reconnecting forever, SendAsap) and starts answering
  // snapshot requests on snapshot_subject(prefix).
  explicit TestPublisher(const std::string& url, std::string prefix = "tickfan.q", uint32_t shards = 4);
  ~TestPublisher();
  TestPublisher(const TestPublisher&) = delete;
  TestPublisher& operator=(const TestPublisher&) = delete;

  // Records the quotes as the latest state and publishes them as deltas, one
  // batch per subject (a symbol always maps to the same subject).
  void publish(const std::vector<Quote>& quotes);
  // Replaces the state without publishing (what a restarted apiserver would
  // have re-ingested before its first delta).
  void set_state(const std::vector<Quote>& quotes);
  // The next delta on `subject` skips one sequence number (as if lost).
  void skip_sequence(const std::string& subject);
  // Publishes arbitrary bytes on a subject (no sequence consumed).
  void publish_raw(const std::string& subject, const void* data, size_t size);
  // A new apiserver instance: new epoch, sequences start again from 1.
  void restart();
  void answer_snapshots(bool on) { answering_.store(on); }
  void flush();

  std::map<std::string, Quote> state() const;
  uint64_t epoch() const;
  int snapshot_requests() const { return requests_.load(); }
  std::string subject_of(std::string_view symbol) const;

 private:
  static void on_request(natsConnection*, natsSubscription*, natsMsg* msg, void* closure);
  void answer(const std::string& reply, const std::string& markets);
  void publish_locked(const std::string& subject, const std::vector<Quote>& quotes);

  std::string prefix_;
  uint32_t shards_;
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  mutable std::mutex mu_;
  flatbuffers::FlatBufferBuilder fbb_;
  uint64_t epoch_ = 0;
  std::map<std::string, uint64_t> seq_;  // per subject, last published
  std::map<std::string, Quote> state_;   // symbol -> latest
  std::atomic<bool> answering_{true};
  std::atomic<int> requests_{0};
};

}  // namespace tickfan::testing
