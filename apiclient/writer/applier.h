// applier.h — the only code that writes the store: turns verified batches into
// StoreWriter calls and accounts for them (counts, apply time, ingest-to-store
// latency). Every method must be called from the one apply thread.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "quote.h"
#include "store.h"
#include "writer_metrics.h"

namespace tickfan::apiclient {

// Raw per-quote ingest-to-store latencies (ns), each with the quote's ingest
// time (receive_ts_ns), kept for benchmarks that want exact percentiles over a
// window of their choosing rather than histogram buckets. Off (capacity 0) in
// service.
class LatencySamples {
 public:
  struct Sample {
    int64_t ingest_ns;
    int64_t latency_ns;
  };
  explicit LatencySamples(size_t capacity) { samples_.reserve(capacity); }
  void add(int64_t ingest_ns, int64_t latency_ns) {
    if (samples_.size() < samples_.capacity()) samples_.push_back({ingest_ns, latency_ns});
  }
  bool enabled() const { return samples_.capacity() > 0; }
  // "ingest_ns latency_ns" per line; returns false (and says why in *error)
  // on I/O failure.
  bool write(const std::string& path, std::string* error) const;

 private:
  std::vector<Sample> samples_;
};

class StoreApplier {
 public:
  StoreApplier(shm::StoreWriter& writer, WriterMetrics& metrics, LatencySamples& samples)
      : writer_(writer), metrics_(metrics), samples_(samples) {}

  // Upserts the batch's quotes and commits (epoch, sequence). Snapshot parts
  // (`delta` false) are counted but carry no latency: their quotes are old.
  // `sample` false keeps a delta out of the raw benchmark samples (deltas
  // replayed after a sync); the latency histogram always counts it.
  void apply(const wire::QuoteBatch& batch, bool delta, bool sample = true);
  void set_state(shm::SyncState state, uint64_t gaps, uint64_t resyncs) {
    writer_.set_sync_state(state, gaps, resyncs);
  }
  void heartbeat() { writer_.heartbeat(); }
  shm::Status checkpoint() { return writer_.checkpoint(); }
  int64_t newest_receive_ns() const { return newest_receive_ns_; }

 private:
  void log_failure(shm::Status st, const wire::QuoteBatch& b);
  // Per-quote accounting of a delta batch, called by the store right after
  // each upsert (StoreWriter::QuoteObserver).
  struct DeltaTally {
    StoreApplier* self;
    const Quote* quotes;
    bool sample;
    int64_t newest;
  };
  static void on_delta_quote(void* context, size_t index, shm::Status status);

  shm::StoreWriter& writer_;
  WriterMetrics& metrics_;
  LatencySamples& samples_;
  int64_t newest_receive_ns_ = 0;
};

}  // namespace tickfan::apiclient
