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
  for (const Sample& v : samples_)
    std::fprintf(f, "%lld %lld\n", static_cast<long long>(v.ingest_ns), static_cast<long long>(v.latency_ns));
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
  // Deltas: each quote's ingest-to-readable time is taken when it becomes
  // readable — right after its upsert, not when the batch commits.
  int64_t t0 = mono_ns();
  DeltaTally tally{this, quotes.data(), sample, newest_receive_ns_};
  size_t applied = 0;
  shm::Status st =
      writer_.apply_batch(quotes, b.epoch(), b.sequence(), &applied, &StoreApplier::on_delta_quote, &tally);
  if (st != shm::Status::ok) log_failure(st, b);
  metrics_.apply_seconds.observe(static_cast<double>(mono_ns() - t0) * 1e-9);
  metrics_.batches_applied.inc();
  metrics_.quotes_applied.inc(applied);
  if (applied < n) metrics_.quotes_refused.inc(n - applied);
  if (tally.newest != newest_receive_ns_) {
    newest_receive_ns_ = tally.newest;
    metrics_.newest_quote_receive_ns.set(static_cast<double>(tally.newest));
  }
}

void StoreApplier::on_delta_quote(void* context, size_t index, shm::Status status) {
  auto* t = static_cast<DeltaTally*>(context);
  if (status != shm::Status::ok) return;
  const Quote& q = t->quotes[index];
  int64_t ns = wall_ns() - q.receive_ts_ns();
  t->self->metrics_.ingest_to_store_seconds.observe(static_cast<double>(ns) * 1e-9);
  if (t->sample) t->self->samples_.add(q.receive_ts_ns(), ns);
  if (q.receive_ts_ns() > t->newest) t->newest = q.receive_ts_ns();
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
