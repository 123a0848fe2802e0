// Metrics registry: Prometheus text exposition.
#include "metrics.h"

#include <doctest/doctest.h>

using namespace tickfan;

TEST_CASE("registry renders counters, gauges and cumulative histogram buckets") {
  MetricsRegistry reg;
  reg.set_common_labels("worker=\"1\"");
  reg.counter("tf_rejected_total", "Rejected ticks", "reason=\"bad_price\"").inc(3);
  reg.counter("tf_rejected_total", "Rejected ticks", "reason=\"unknown_field\"").inc();
  reg.gauge("tf_age_seconds", "Data age").set(1.5);
  reg.gauge_fn("tf_answer", "Computed", [] { return 42.0; });
  Histogram& h = reg.histogram("tf_latency_seconds", "Latency", {0.001, 0.01});
  h.observe(0.0005);
  h.observe(0.005);
  h.observe(5);
  std::string text = reg.render();
  CHECK(text.find("# TYPE tf_rejected_total counter\n") != std::string::npos);
  CHECK(text.find("tf_rejected_total{worker=\"1\",reason=\"bad_price\"} 3\n") != std::string::npos);
  CHECK(text.find("tf_rejected_total{worker=\"1\",reason=\"unknown_field\"} 1\n") != std::string::npos);
  CHECK(text.find("tf_age_seconds{worker=\"1\"} 1.5\n") != std::string::npos);
  CHECK(text.find("tf_answer{worker=\"1\"} 42\n") != std::string::npos);
  CHECK(text.find("tf_latency_seconds_bucket{worker=\"1\",le=\"0.001\"} 1\n") != std::string::npos);
  CHECK(text.find("tf_latency_seconds_bucket{worker=\"1\",le=\"0.01\"} 2\n") != std::string::npos);
  CHECK(text.find("tf_latency_seconds_bucket{worker=\"1\",le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("tf_latency_seconds_count{worker=\"1\"} 3\n") != std::string::npos);
  // One HELP/TYPE per metric name even with several series.
  CHECK(text.find("# HELP tf_rejected_total") == text.rfind("# HELP tf_rejected_total"));
}
