// daemon.h — the apply loop: the one thread that owns the store writer. It
// takes messages and connection events from the MsgQueue in arrival order,
// verifies each payload, feeds the SyncMachine, and on a timer advances the
// store heartbeat (so readers can tell a quiet market from a dead writer) and
// drives the machine's timeouts.
#pragma once
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "applier.h"
#include "config.h"
#include "metrics.h"
#include "nats_conn.h"
#include "queue.h"
#include "sync.h"

namespace tickfan::apiclient {

class Daemon final : public SyncSink {
 public:
  Daemon(const Config& config, shm::StoreWriter& writer, MetricsRegistry& registry);
  ~Daemon() override;

  // Connects and subscribes (throws on a configuration error), then runs the
  // apply loop until stop(). Returns the process exit code.
  int run();
  // From any thread (the signal thread): ends run() promptly.
  void stop() { queue_.wake(); }

  // For /healthz (any thread).
  bool healthy(std::string* reason) const;

 private:
  void apply(const wire::QuoteBatch& batch, bool delta) override;
  void request_snapshot(uint64_t request_id) override;
  void state_changed(SyncState state, uint64_t gaps, uint64_t resyncs) override;

  void handle(Item& item, int64_t now);
  // Verifies the message into `in`; counts and logs a rejection. Takes ownership of msg.
  bool verify(natsMsg* msg, ItemKind kind, Inbound* in);
  void tick(int64_t now);
  void export_counters();

  const Config& config_;
  shm::StoreWriter& writer_;
  MetricsRegistry& registry_;
  WriterMetrics metrics_;
  LatencySamples samples_;
  StoreApplier applier_;
  MsgQueue queue_;
  SyncMachine sync_;
  std::unique_ptr<NatsConn> nats_;
  std::string snapshot_subject_, snapshot_payload_;
  std::vector<std::string> delta_subjects_;

  int64_t next_heartbeat_ = 0;
  int64_t last_lib_dropped_ = 0;
  uint64_t last_queue_dropped_ = 0;
  uint64_t exported_gaps_ = 0, exported_resyncs_ = 0;
  std::atomic<int> state_{0};
  Counter& gaps_total_;
  Counter& resyncs_total_;
  Gauge& buffered_;
  Gauge& last_sync_seconds_;
  Gauge& snapshot_quotes_;
  Counter& stale_dropped_;
  Counter& snapshot_failures_;
  Counter& epoch_changes_;
  uint64_t exported_stale_ = 0, exported_failures_ = 0, exported_epochs_ = 0;
};

}  // namespace tickfan::apiclient
