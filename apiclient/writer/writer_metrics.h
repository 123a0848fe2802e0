// writer_metrics.h — every Prometheus series the apiclient writer exports,
// registered once at start-up so the hot path holds plain references.
// Names are tickfan_apiclient_*; docs/apiclient.md lists them with meanings.
#pragma once
#include "metrics.h"

namespace tickfan::apiclient {

struct WriterMetrics {
  explicit WriterMetrics(MetricsRegistry& r);

  Counter& batches_applied;  // delta batches written and committed
  Counter& quotes_applied;   // quotes written (deltas and snapshots)
  Counter& quotes_refused;   // quotes the store refused (full, invalid symbol/value)
  Counter& snapshot_parts;   // snapshot parts applied
  // Payloads rejected before anything was read from them, by verifier reason.
  Counter& rejected_too_small;
  Counter& rejected_wrong_identifier;
  Counter& rejected_malformed;
  Counter& rejected_schema_too_new;
  Counter& rejected_bad_scale;
  Counter& rejected_unexpected_kind;
  Counter& nats_disconnects;
  Counter& nats_reconnects;
  Counter& slow_consumer;              // NATS_SLOW_CONSUMER events and dropped-count increases
  Gauge& pending;                      // messages waiting in the library for the delivery thread
  Histogram& apply_seconds;            // one batch: upserts + commit
  Histogram& ingest_to_store_seconds;  // per quote: apiserver receive_ts -> committed in the store
  Gauge& newest_quote_receive_ns;      // receive_ts of the newest quote applied (wall clock)
};

}  // namespace tickfan::apiclient
