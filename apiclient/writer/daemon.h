// daemon.h — the writer's event handling. Store writes happen on the NATS
// library's single delivery thread (nats_conn.h says why): it verifies each
// payload and feeds the SyncMachine. The heartbeat (so readers can tell a
// quiet market from a dead writer) and the machine's timeouts are driven by
// a timer on run()'s thread that does not depend on the library delivering
// anything; it and the callbacks take `handler_mu_`, so the store still has
// one writer at a time. Connection events from other library threads (and
// the connect from NatsConn's connector thread) are queued and picked up by
// either. What a retry cannot fix (the library closed the connection, a
// refused login, a denied subscription or snapshot request) ends run() with
// one error line and exit code 1, after the usual checkpoint.
//
// The main thread opens the store before any callback can run and takes it
// back for the final checkpoint only after NatsConn::close() has joined the
// library's threads, so the writer is never used by two threads at once.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <string>
#include <vector>

#include "applier.h"
#include "config.h"
#include "metrics.h"
#include "nats_conn.h"
#include "sync.h"

namespace tickfan::apiclient {

class Daemon final : public SyncSink, public NatsHandler {
 public:
  Daemon(const Config& config, shm::StoreWriter& writer, MetricsRegistry& registry);
  ~Daemon() override;

  // Connects and subscribes (throws on a configuration error), then waits
  // until stop(); closes NATS, checkpoints the store. Returns the exit code.
  int run();
  // From any thread (the signal thread): ends run() promptly.
  void stop();

  // For /healthz (any thread).
  bool healthy(std::string* reason) const;

 private:
  // SyncSink (delivery thread)
  void apply(const wire::QuoteBatch& batch, bool delta) override;
  void request_snapshot(uint64_t request_id) override;
  void state_changed(SyncState state, uint64_t gaps, uint64_t resyncs) override;
  bool connected() const override;
  // NatsHandler
  void on_message(natsMsg* msg, bool reply) override;
  void on_event(NatsEvent e) override;
  void on_fatal(const std::string& what) override;

  // The daemon's own timer (run()'s thread, every min(heartbeat, 100 ms)):
  // heartbeat, connection events and the state machine's timeouts, whether
  // or not the library delivers anything (no server, a closed connection).
  void on_timer();

  // Fences off the callbacks and closes NATS (joining its threads). Idempotent.
  void close_nats();
  void drain_events(int64_t now);
  // Verifies the message into `in` (which owns msg from here); counts and logs a rejection.
  bool verify(natsMsg* msg, bool reply, Inbound* in);
  void tick(int64_t now);
  void export_counters();

  const Config& config_;
  WriterMetrics metrics_;
  LatencySamples samples_;
  StoreApplier applier_;
  SyncMachine sync_;
  std::unique_ptr<NatsConn> nats_;
  std::string snapshot_subject_, snapshot_payload_;
  std::vector<std::string> delta_subjects_;

  // Delivery-thread state.
  bool started_ = false;
  int64_t next_tick_ = 0;
  int64_t next_heartbeat_ = 0;
  int64_t last_lib_dropped_ = 0;
  uint64_t exported_gaps_ = 0, exported_resyncs_ = 0;
  uint64_t exported_stale_ = 0, exported_failures_ = 0, exported_epochs_ = 0;

  // Events from other library threads.
  std::mutex event_mu_;
  std::vector<NatsEvent> events_;
  std::atomic<bool> has_events_{false};

  // Stop: callbacks check `stopping_` under `handler_mu_`; run() waits on `stop_cv_`.
  std::mutex handler_mu_;
  bool stopping_ = false;
  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_requested_ = false;
  std::string fatal_;  // set by on_fatal: run() logs it and returns 1

  std::atomic<int> state_{0};
  Counter& gaps_total_;
  Counter& resyncs_total_;
  Gauge& buffered_;
  Gauge& last_sync_seconds_;
  Gauge& snapshot_quotes_;
  Counter& stale_dropped_;
  Counter& snapshot_failures_;
  Counter& epoch_changes_;
};

}  // namespace tickfan::apiclient
