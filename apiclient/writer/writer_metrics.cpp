// writer_metrics.cpp — see writer_metrics.h.
#include "writer_metrics.h"

namespace tickfan::apiclient {

namespace {
// Finer than latency_buckets_seconds() at the low end: the pipeline's own
// share is tens of microseconds and the target is relative to ~0.1 ms.
std::vector<double> fine_latency_buckets() {
  return {0.00002, 0.00005, 0.0001, 0.00015, 0.0002, 0.0003, 0.0005, 0.00075, 0.001, 0.002,
          0.005,   0.01,    0.025,  0.05,    0.1,    0.25,   0.5,    1,       2.5,   5};
}
const char* kRejected = "tickfan_apiclient_rejected_total";
const char* kRejectedHelp = "Payloads rejected by verification, never applied";
}  // namespace

WriterMetrics::WriterMetrics(MetricsRegistry& r)
    : batches_applied(r.counter("tickfan_apiclient_batches_applied_total", "Delta batches applied to the store")),
      quotes_applied(r.counter("tickfan_apiclient_quotes_applied_total", "Quotes written to the store")),
      quotes_refused(r.counter("tickfan_apiclient_quotes_refused_total", "Quotes the store refused (full or invalid)")),
      snapshot_parts(r.counter("tickfan_apiclient_snapshot_parts_total", "Snapshot parts applied")),
      rejected_too_small(r.counter(kRejected, kRejectedHelp, "reason=\"too_small\"")),
      rejected_wrong_identifier(r.counter(kRejected, kRejectedHelp, "reason=\"wrong_identifier\"")),
      rejected_malformed(r.counter(kRejected, kRejectedHelp, "reason=\"malformed\"")),
      rejected_schema_too_new(r.counter(kRejected, kRejectedHelp, "reason=\"schema_too_new\"")),
      rejected_bad_scale(r.counter(kRejected, kRejectedHelp, "reason=\"bad_scale\"")),
      rejected_unexpected_kind(r.counter(kRejected, kRejectedHelp, "reason=\"unexpected_kind\"")),
      nats_disconnects(r.counter("tickfan_apiclient_nats_disconnects_total", "NATS connection losses")),
      nats_reconnects(r.counter("tickfan_apiclient_nats_reconnects_total", "NATS reconnections")),
      slow_consumer(r.counter("tickfan_apiclient_slow_consumer_total", "Slow-consumer events (messages dropped)")),
      pending(
          r.gauge("tickfan_apiclient_nats_pending_msgs", "Messages waiting in the NATS library for the writer thread")),
      apply_seconds(
          r.histogram("tickfan_apiclient_apply_seconds", "Time to write and commit one batch", fine_latency_buckets())),
      ingest_to_store_seconds(r.histogram("tickfan_apiclient_ingest_to_store_seconds",
                                          "Per quote: apiserver receive time to committed in the store",
                                          fine_latency_buckets())),
      newest_quote_receive_ns(r.gauge("tickfan_apiclient_newest_quote_receive_ns",
                                      "Apiserver receive time (ns since epoch) of the newest quote applied")) {}

}  // namespace tickfan::apiclient
