// metrics.h — Prometheus metrics: counters, gauges and histograms that hot
// paths update with one relaxed atomic add, and a registry that renders them in
// the Prometheus text exposition format (version 0.0.4).
//
// Metrics are registered once at start-up and live as long as the registry
// (addresses are stable), so hot paths keep plain references. Labels are a
// fixed string per series, e.g. `source="feedA",reason="bad_price"`; never
// per-symbol (that would explode the series count).
#pragma once
#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace tickfan {

class Counter {
 public:
  void inc(uint64_t n = 1) { v_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> v_{0};
};

class Gauge {
 public:
  void set(double v) { v_.store(v, std::memory_order_relaxed); }
  void add(double d) {
    double cur = v_.load(std::memory_order_relaxed);
    while (!v_.compare_exchange_weak(cur, cur + d, std::memory_order_relaxed)) {
    }
  }
  double value() const { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0};
};

// Fixed upper bounds chosen at registration; observe() is a short linear scan
// (bucket lists are ~12 long) and two relaxed adds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds);
  void observe(double v);
  const std::vector<double>& bounds() const { return bounds_; }
  uint64_t bucket(size_t i) const { return counts_[i].load(std::memory_order_relaxed); }
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  // Value below which `q` (0..1) of observations fall, interpolated within a
  // bucket; for reports and tests, not for hot paths.
  double quantile(double q) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> counts_;  // bounds_.size() + 1 (+Inf)
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds, 50 µs .. 5 s.
std::vector<double> latency_buckets_seconds();

class MetricsRegistry {
 public:
  Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                       const std::string& labels = "");
  // A gauge computed when scraped (e.g. data age, queue depth).
  void gauge_fn(const std::string& name, const std::string& help, std::function<double()> fn,
                const std::string& labels = "");
  // Labels added to every series this registry renders, e.g. `worker="3"`.
  void set_common_labels(const std::string& labels);
  std::string render() const;

 private:
  enum class Kind { counter, gauge, gauge_fn, histogram };
  struct Series {
    Kind kind;
    std::string name, help, labels;
    Counter* counter = nullptr;
    Gauge* gauge = nullptr;
    Histogram* histogram = nullptr;
    std::function<double()> fn;
  };
  mutable std::mutex mu_;
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
  std::vector<Series> series_;
  std::string common_labels_;
};

}  // namespace tickfan
