// applier.cpp — see applier.h.
#include "applier.h"

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "clock.h"
#include "log.h"

namespace tickfan::apiclient {

bool LatencySamples::write(const std::string& path, std::string* error) const {
  FILE* f = std::fopen(path.c_str(), "w");
  if (!f) {
    *error = "cannot write latency samples to " + path + ": " + std::strerror(errno);
    return false;
  }
  for (int64_t v : samples_) std::fprintf(f, "%lld\n", static_cast<long long>(v));
  bool ok = std::fclose(f) == 0;
  if (!ok) *error = "cannot write latency samples to " + path + ": " + std::strerror(errno);
  return ok;
}

void StoreApplier::apply(const wire::QuoteBatch& b, bool delta, bool sample) {
  const auto* vec = b.quotes();
  size_t n = vec ? vec->size() : 0;
  // Quote is a fixed-layout struct: the vector is contiguous and 8-byte
  // aligned inside a verified, aligned buffer, so it is read in place.
  std::span<const Quote> quotes(n ? reinterpret_cast<const Quote*>(vec->Data()) : nullptr, n);
  if (!delta) {
    size_t applied = 0;
    shm::Status st = writer_.apply_batch(quotes, b.epoch(), b.sequence(), &applied);
    if (st != shm::Status::ok) log_failure(st, b);
    metrics_.quotes_applied.inc(applied);
    if (applied < n) metrics_.quotes_refused.inc(n - applied);
    if (b.kind() == wire::BatchKind::SnapshotPart) metrics_.snapshot_parts.inc();
    return;
  }
  // Deltas: upsert one by one (what apply_batch does) so each quote's
  // ingest-to-readable time is taken when it becomes readable — a quote is
  // visible the moment its upsert returns, not when the batch commits.
  int64_t t0 = mono_ns();
  size_t applied = 0;
  int64_t newest = newest_receive_ns_;
  for (const Quote& q : quotes) {
    shm::Status st = writer_.upsert(q);
    if (st != shm::Status::ok) {
      if (st != shm::Status::full && st != shm::Status::invalid_value && st != shm::Status::invalid_symbol)
        log_failure(st, b);
      continue;
    }
    ++applied;
    int64_t ns = wall_ns() - q.receive_ts_ns();
    metrics_.ingest_to_store_seconds.observe(static_cast<double>(ns) * 1e-9);
    if (sample) samples_.add(ns);
    if (q.receive_ts_ns() > newest) newest = q.receive_ts_ns();
  }
  writer_.commit(b.epoch(), b.sequence());
  metrics_.apply_seconds.observe(static_cast<double>(mono_ns() - t0) * 1e-9);
  metrics_.batches_applied.inc();
  metrics_.quotes_applied.inc(applied);
  if (applied < n) metrics_.quotes_refused.inc(n - applied);
  if (newest != newest_receive_ns_) {
    newest_receive_ns_ = newest;
    metrics_.newest_quote_receive_ns.set(static_cast<double>(newest));
  }
}

void StoreApplier::log_failure(shm::Status st, const wire::QuoteBatch& b) {
  if (st == shm::Status::full || st == shm::Status::invalid_value || st == shm::Status::invalid_symbol) return;
  static RateLimit limit(5, 1'000'000'000);
  uint64_t suppressed = 0;
  if (limit.allow(&suppressed)) {
    LOG_ERROR("apply", "store write failed status=%s epoch=%llu seq=%llu suppressed=%llu", shm::status_name(st),
              static_cast<unsigned long long>(b.epoch()), static_cast<unsigned long long>(b.sequence()),
              static_cast<unsigned long long>(suppressed));
  }
}

}  // namespace tickfan::apiclient
