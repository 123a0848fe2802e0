// daemon.cpp — see daemon.h.
#include "daemon.h"

#include <cstring>

#include "batch.h"
#include "clock.h"
#include "log.h"
#include "subjects.h"

namespace tickfan::apiclient {

namespace {
void destroy_msg(void* p) { natsMsg_Destroy(static_cast<natsMsg*>(p)); }
}  // namespace

Daemon::Daemon(const Config& config, shm::StoreWriter& writer, MetricsRegistry& registry)
    : config_(config),
      writer_(writer),
      registry_(registry),
      metrics_(registry),
      samples_(config.latency_samples),
      applier_(writer, metrics_, samples_),
      queue_(static_cast<size_t>(config.nats.pending_msgs), static_cast<size_t>(config.nats.pending_bytes)),
      sync_(*this, config.sync),
      gaps_total_(registry.counter("tickfan_apiclient_gaps_total", "Sequence gaps detected on delta subjects")),
      resyncs_total_(registry.counter("tickfan_apiclient_resyncs_total",
                                      "Resyncs started (gap, epoch change, reconnect, slow consumer)")),
      buffered_(registry.gauge("tickfan_apiclient_buffered_deltas", "Deltas held while a snapshot is in flight")),
      last_sync_seconds_(registry.gauge("tickfan_apiclient_last_sync_seconds", "Duration of the last complete sync")),
      snapshot_quotes_(registry.gauge("tickfan_apiclient_snapshot_quotes", "Quotes in the last complete snapshot")),
      stale_dropped_(registry.counter("tickfan_apiclient_stale_dropped_total",
                                      "Deltas dropped as duplicates, older epoch, or covered by a snapshot")),
      snapshot_failures_(registry.counter("tickfan_apiclient_snapshot_failures_total",
                                          "Snapshot requests that timed out or got a broken reply")),
      epoch_changes_(registry.counter("tickfan_apiclient_epoch_changes_total", "Apiserver restarts seen (new epoch)")) {
  snapshot_subject_ = snapshot_subject(config.subject_prefix);
  snapshot_payload_ = config.snapshot_request_payload();
  delta_subjects_ = config.delta_subjects();
  registry.gauge_fn("tickfan_apiclient_sync_state", "0 unknown, 1 syncing, 2 live, 3 stale",
                    [this] { return static_cast<double>(state_.load(std::memory_order_relaxed)); });
  registry.gauge_fn("tickfan_apiclient_newest_quote_age_seconds",
                    "Now minus the apiserver receive time of the newest quote applied", [this] {
                      double newest = metrics_.newest_quote_receive_ns.value();
                      return newest > 0 ? (static_cast<double>(wall_ns()) - newest) * 1e-9 : 0.0;
                    });
}

Daemon::~Daemon() = default;

bool Daemon::healthy(std::string* reason) const {
  int s = state_.load(std::memory_order_relaxed);
  if (s == static_cast<int>(SyncState::live)) return true;
  *reason = s == static_cast<int>(SyncState::stale) ? "stale: no live data from the apiserver" : "syncing";
  return false;
}

int Daemon::run() {
  nats_ = std::make_unique<NatsConn>(config_.nats, queue_);
  nats_->subscribe(delta_subjects_);
  int64_t now = mono_ns();
  sync_.start(now);
  next_heartbeat_ = now;
  tick(now);
  std::vector<Item> items;
  items.reserve(1024);
  // Wake at least this often for heartbeat and timeouts even when quiet.
  int64_t wait_ns = std::min<int64_t>(config_.heartbeat_ms, 100) * 1'000'000;
  bool lost = false;
  uint64_t queue_dropped = 0;
  while (queue_.pop_all(items, wait_ns, &lost, &queue_dropped)) {
    now = mono_ns();
    for (Item& item : items) handle(item, now);
    if (lost) {
      metrics_.slow_consumer.inc();
      metrics_.queue_dropped.inc(queue_dropped - last_queue_dropped_);
      last_queue_dropped_ = queue_dropped;
      LOG_WARN("apply", "hand-off queue full: messages dropped (total %llu); resyncing",
               static_cast<unsigned long long>(queue_dropped));
      sync_.on_messages_lost(now);
    }
    tick(mono_ns());
  }
  for (Item& item : items)
    if (item.msg) natsMsg_Destroy(item.msg);
  // Stop the library's threads before the store goes away.
  nats_->close();
  applier_.heartbeat();
  shm::Status cs = applier_.checkpoint();
  const SyncCounters& c = sync_.counters();
  LOG_INFO("main",
           "stopped batches=%llu quotes=%llu rejected=%llu gaps=%llu resyncs=%llu snapshots=%llu checkpoint=%s",
           static_cast<unsigned long long>(metrics_.batches_applied.value()),
           static_cast<unsigned long long>(metrics_.quotes_applied.value()),
           static_cast<unsigned long long>(metrics_.rejected_too_small.value() + metrics_.rejected_wrong_identifier.value() +
                                           metrics_.rejected_malformed.value() + metrics_.rejected_schema_too_new.value() +
                                           metrics_.rejected_bad_scale.value() + metrics_.rejected_unexpected_kind.value()),
           static_cast<unsigned long long>(c.gaps), static_cast<unsigned long long>(c.resyncs),
           static_cast<unsigned long long>(c.snapshots_applied), shm::status_name(cs));
  if (!config_.latency_samples_file.empty()) {
    std::string err;
    if (!samples_.write(config_.latency_samples_file, &err)) LOG_ERROR("main", "%s", err.c_str());
  }
  return cs == shm::Status::ok ? 0 : 1;
}

void Daemon::handle(Item& item, int64_t now) {
  switch (item.kind) {
    case ItemKind::delta:
    case ItemKind::reply: {
      Inbound in;
      bool is_reply = item.kind == ItemKind::reply;
      uint64_t request_id = is_reply ? nats_->request_id_of(natsMsg_GetSubject(item.msg)) : 0;
      natsMsg* msg = item.msg;
      item.msg = nullptr;
      if (!is_reply) metrics_.queue_wait_seconds.observe(static_cast<double>(now - item.queued_ns) * 1e-9);
      if (!verify(msg, item.kind, &in)) return;
      if (is_reply) {
        sync_.on_reply(std::move(in), request_id, now);
      } else {
        sync_.on_delta(std::move(in), now);
      }
      return;
    }
    case ItemKind::disconnected:
      metrics_.nats_disconnects.inc();
      LOG_WARN("nats", "disconnected; reconnecting");
      sync_.on_disconnected(now);
      return;
    case ItemKind::reconnected:
      metrics_.nats_reconnects.inc();
      LOG_INFO("nats", "connected; resyncing");
      sync_.on_reconnected(now);
      return;
    case ItemKind::slow_consumer:
      metrics_.slow_consumer.inc();
      last_lib_dropped_ = nats_->dropped();
      LOG_WARN("nats", "slow consumer: NATS dropped messages (total %lld); resyncing",
               static_cast<long long>(last_lib_dropped_));
      sync_.on_messages_lost(now);
      return;
  }
}

bool Daemon::verify(natsMsg* msg, ItemKind kind, Inbound* in) {
  in->hold = Hold(msg, &destroy_msg);
  const char* data = natsMsg_GetData(msg);
  size_t size = static_cast<size_t>(natsMsg_GetDataLength(msg));
  const void* aligned = data;
  // NATS places payloads at arbitrary alignment; FlatBuffers reads int64
  // fields in place and the verifier insists on alignment.
  if (reinterpret_cast<uintptr_t>(data) % 8 != 0) {
    in->copy.reset(new uint64_t[(size + 7) / 8]);
    if (size) std::memcpy(in->copy.get(), data, size);
    aligned = in->copy.get();
  }
  BatchError err = verify_batch(aligned, size, &in->batch);
  if (err == BatchError::ok) {
    wire::BatchKind k = in->batch->kind();
    bool kind_ok = kind == ItemKind::delta ? k == wire::BatchKind::Delta : k != wire::BatchKind::Delta;
    if (kind_ok) {
      in->subject = natsMsg_GetSubject(msg);
      return true;
    }
  }
  switch (err) {
    case BatchError::too_small: metrics_.rejected_too_small.inc(); break;
    case BatchError::wrong_identifier: metrics_.rejected_wrong_identifier.inc(); break;
    case BatchError::malformed: metrics_.rejected_malformed.inc(); break;
    case BatchError::schema_too_new: metrics_.rejected_schema_too_new.inc(); break;
    case BatchError::bad_scale: metrics_.rejected_bad_scale.inc(); break;
    case BatchError::ok: metrics_.rejected_unexpected_kind.inc(); break;
  }
  static RateLimit limit(10, 1'000'000'000);
  uint64_t suppressed = 0;
  if (limit.allow(&suppressed)) {
    LOG_WARN("apply", "rejected payload subject=%s bytes=%zu reason=%s suppressed=%llu", natsMsg_GetSubject(msg), size,
             err == BatchError::ok ? "unexpected_kind" : batch_error_name(err), static_cast<unsigned long long>(suppressed));
  }
  return false;  // `in` (and the message) is released by the caller's scope
}

void Daemon::tick(int64_t now) {
  if (now >= next_heartbeat_) {
    applier_.heartbeat();
    next_heartbeat_ = now + config_.heartbeat_ms * 1'000'000;
    int64_t dropped = nats_->dropped();
    if (dropped > last_lib_dropped_) {
      // A drop whose NATS_SLOW_CONSUMER event we have not seen (yet).
      last_lib_dropped_ = dropped;
      metrics_.slow_consumer.inc();
      LOG_WARN("nats", "NATS dropped messages (total %lld); resyncing", static_cast<long long>(dropped));
      sync_.on_messages_lost(now);
    }
    export_counters();
  }
  sync_.on_tick(now);
}

void Daemon::export_counters() {
  const SyncCounters& c = sync_.counters();
  buffered_.set(static_cast<double>(sync_.buffered()));
  last_sync_seconds_.set(static_cast<double>(c.last_sync_ns) * 1e-9);
  snapshot_quotes_.set(static_cast<double>(c.snapshot_quotes));
  stale_dropped_.inc(c.stale_dropped + c.replay_dropped - exported_stale_);
  exported_stale_ = c.stale_dropped + c.replay_dropped;
  snapshot_failures_.inc(c.snapshot_failures - exported_failures_);
  exported_failures_ = c.snapshot_failures;
  epoch_changes_.inc(c.epoch_changes - exported_epochs_);
  exported_epochs_ = c.epoch_changes;
}

void Daemon::apply(const wire::QuoteBatch& batch, bool delta) { applier_.apply(batch, delta); }

void Daemon::request_snapshot(uint64_t request_id) {
  natsStatus s = nats_->request_snapshot(snapshot_subject_, snapshot_payload_, request_id);
  LOG_INFO("sync", "snapshot request id=%llu subject=%s markets=%s status=%s", static_cast<unsigned long long>(request_id),
           snapshot_subject_.c_str(), snapshot_payload_.empty() ? "all" : snapshot_payload_.c_str(), natsStatus_GetText(s));
}

void Daemon::state_changed(SyncState state, uint64_t gaps, uint64_t resyncs) {
  applier_.set_state(state, gaps, resyncs);
  state_.store(static_cast<int>(state), std::memory_order_relaxed);
  if (gaps > exported_gaps_) gaps_total_.inc(gaps - exported_gaps_);
  if (resyncs > exported_resyncs_) resyncs_total_.inc(resyncs - exported_resyncs_);
  exported_gaps_ = gaps;
  exported_resyncs_ = resyncs;
}

}  // namespace tickfan::apiclient
