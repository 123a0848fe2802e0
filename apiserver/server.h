// server.h — the apiserver core: owns the sources, and one core thread that
// drains their rings, arbitrates, batches per subject, assigns sequence
// numbers, publishes, keeps the last-value state and answers snapshots.
//
// Why one core thread: sequence assignment, last-value update and snapshot
// capture then happen in one order with no locks, which is exactly what makes
// a snapshot consistent with the per-subject marks it reports (the core
// publishes every pending batch, then copies the last values and the
// current sequences, with nothing in between). Parsing (the
// expensive, parallel part) stays on the source threads.
//
// Batching (docs/apiserver.md has the measurements behind the defaults): a
// subject's batch is flushed when it reaches max_batch quotes, when its
// oldest quote waited max_delay, or at once when every ring is empty (input
// idle), so a lone tick never waits for company and a burst is batched by
// whatever accumulated while the previous publish was in flight.
#pragma once
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "arbiter.h"
#include "batch.h"
#include "breaker.h"
#include "metrics.h"
#include "publisher.h"
#include "snapshot.h"
#include "source.h"
#include "state.h"

namespace tickfan::apiserver {

struct ServerConfig {
  std::vector<SourceSpec> sources;
  NatsConfig nats;
  std::string prefix = "tickfan.q";
  uint32_t shards = 4;
  std::string publisher_id;
  size_t max_batch = 64;
  int64_t max_delay_ns = 2'000'000;
  size_t snapshot_part = 1000;
  int64_t refresh_ns = 0;  // periodic full refresh; 0 = off
  BreakerConfig breaker;
  ValidateLimits limits;
  uint32_t ring_capacity = 4096;
  std::string state_file;
  int64_t state_interval_ns = 1'000'000'000;
  bool exit_when_done = false;
};

class Server {
 public:
  Server(ServerConfig cfg, MetricsRegistry& metrics);
  ~Server();
  // Connects, opens state, starts sources. Throws std::runtime_error.
  void start();
  // Runs the core loop on the calling thread until stop() (or, with
  // exit_when_done, until every source finished), then drains and flushes.
  void run();
  // Async-signal-unsafe but thread-safe: called from the signal thread.
  void stop();
  // True (with the cause) once publishing can never work again: the NATS
  // connection was closed for good, or a later connect attempt was refused
  // its login. run() then stops as for stop(); main exits 1 so the
  // supervisor restarts the apiserver.
  bool failed(std::string* why) const;
  bool healthy(std::string* why) const;
  uint64_t epoch() const { return epoch_; }

 private:
  struct Pending {
    std::vector<Quote> quotes;
    std::vector<uint32_t> ids;
    int64_t first_mono = 0;
    bool listed = false;  // in nonempty_
  };
  struct SourceSlot {
    Source* src;
    std::unique_ptr<Breaker> breaker;
    Gauge* state_gauge;
    Counter* stale;
    Counter* duplicate;
    Counter* breaker_open;
    Counter* transitions;
  };

  size_t drain_once();
  void accept(SourceSlot& s, const Quote& q);
  void flush(uint32_t subject);
  void flush_all();
  void flush_due(int64_t now_mono);
  void check_breakers(int64_t now_mono);
  void serve_snapshots();
  size_t part_size();
  void refresh_all();
  void persist();
  uint32_t subject_of(const Quote& q) const;
  static void on_snapshot_msg(natsConnection* nc, natsSubscription* sub, natsMsg* msg, void* self);
  // The publisher's fatal handler (a NATS or connector thread): records why
  // and stops.
  void fail(const std::string& why);

  ServerConfig cfg_;
  MetricsRegistry& metrics_;
  Doorbell bell_;
  Publisher publisher_;
  std::vector<std::unique_ptr<Source>> sources_;
  std::vector<SourceSlot> order_;  // by priority, then command-line order
  Arbiter arbiter_;
  std::unique_ptr<StatePersister> persister_;
  std::vector<uint32_t> subject_by_id_;
  std::vector<std::string> subjects_;  // index = (market - 1) * shards + shard
  std::vector<uint64_t> sequences_;
  std::vector<Pending> pending_;
  std::vector<uint32_t> nonempty_;  // subjects with pending quotes
  flatbuffers::FlatBufferBuilder fbb_{64 * 1024};
  uint64_t epoch_ = 0;
  uint64_t total_sequence_ = 0;
  int closed_sources_ = 0;

  std::mutex snap_mu_;
  std::vector<SnapshotReply> snap_queue_;
  std::atomic<bool> snap_waiting_{false};
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  mutable std::mutex failure_mu_;
  std::string failure_;

  Counter* published_ticks_;
  Counter* published_batches_;
  Counter* published_bytes_;
  Counter* publish_errors_;
  Counter* snapshots_;
  Counter* snapshot_quotes_;
  Counter* snapshot_bad_;
  Histogram* publish_seconds_;
  Histogram* tick_latency_;
  Gauge* symbols_gauge_ = nullptr;
};

}  // namespace tickfan::apiserver
