// metrics.cpp — see metrics.h.
#include "metrics.h"

#include <cmath>
#include <cstdio>
#include <map>
#include <memory>

namespace tickfan {

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), counts_(new std::atomic<uint64_t>[bounds_.size() + 1]) {
  for (size_t i = 0; i <= bounds_.size(); ++i) counts_[i].store(0, std::memory_order_relaxed);
}

void Histogram::observe(double v) {
  size_t i = 0;
  while (i < bounds_.size() && v > bounds_[i]) ++i;
  counts_[i].fetch_add(1, std::memory_order_relaxed);
  count_.fetch_add(1, std::memory_order_relaxed);
  double cur = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(cur, cur + v, std::memory_order_relaxed)) {
  }
}

double Histogram::quantile(double q) const {
  uint64_t total = count();
  if (total == 0) return 0;
  double target = q * static_cast<double>(total);
  uint64_t seen = 0;
  for (size_t i = 0; i <= bounds_.size(); ++i) {
    uint64_t c = bucket(i);
    if (static_cast<double>(seen + c) >= target && c > 0) {
      double lo = i == 0 ? 0 : bounds_[i - 1];
      double hi = i < bounds_.size() ? bounds_[i] : lo * 2;
      return lo + (hi - lo) * ((target - static_cast<double>(seen)) / static_cast<double>(c));
    }
    seen += c;
  }
  return bounds_.empty() ? 0 : bounds_.back();
}

std::vector<double> latency_buckets_seconds() {
  return {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5};
}

Counter& MetricsRegistry::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Counter& c = counters_.emplace_back();
  series_.push_back({Kind::counter, name, help, labels, &c, nullptr, nullptr, {}});
  return c;
}

Gauge& MetricsRegistry::gauge(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Gauge& g = gauges_.emplace_back();
  series_.push_back({Kind::gauge, name, help, labels, nullptr, &g, nullptr, {}});
  return g;
}

Histogram& MetricsRegistry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds,
                                      const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  Histogram& h = histograms_.emplace_back(std::move(bounds));
  series_.push_back({Kind::histogram, name, help, labels, nullptr, nullptr, &h, {}});
  return h;
}

void MetricsRegistry::gauge_fn(const std::string& name, const std::string& help, std::function<double()> fn,
                               const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  series_.push_back({Kind::gauge_fn, name, help, labels, nullptr, nullptr, nullptr, std::move(fn)});
}

void MetricsRegistry::set_common_labels(const std::string& labels) {
  std::lock_guard<std::mutex> lock(mu_);
  common_labels_ = labels;
}

namespace {
std::string join_labels(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (b.empty()) return a;
  return a + "," + b;
}
void append_number(std::string& out, double v) {
  char buf[64];
  if (std::isinf(v)) {
    out += v > 0 ? "+Inf" : "-Inf";
    return;
  }
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    std::snprintf(buf, sizeof buf, "%.9g", v);
  }
  out += buf;
}
void append_sample(std::string& out, const std::string& name, const std::string& labels, double v) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    out += labels;
    out += '}';
  }
  out += ' ';
  append_number(out, v);
  out += '\n';
}
}  // namespace

std::string MetricsRegistry::render() const {
  std::lock_guard<std::mutex> lock(mu_);
  // Prometheus wants all series of one metric name grouped under one HELP/TYPE.
  std::map<std::string, std::vector<const Series*>> by_name;
  for (const Series& s : series_) by_name[s.name].push_back(&s);
  std::string out;
  out.reserve(4096);
  for (const auto& [name, list] : by_name) {
    const Series& first = *list.front();
    const char* type = first.kind == Kind::counter ? "counter" : first.kind == Kind::histogram ? "histogram" : "gauge";
    out += "# HELP " + name + " " + first.help + "\n# TYPE " + name + " " + type + "\n";
    for (const Series* s : list) {
      std::string labels = join_labels(common_labels_, s->labels);
      switch (s->kind) {
        case Kind::counter: append_sample(out, name, labels, static_cast<double>(s->counter->value())); break;
        case Kind::gauge: append_sample(out, name, labels, s->gauge->value()); break;
        case Kind::gauge_fn: append_sample(out, name, labels, s->fn()); break;
        case Kind::histogram: {
          const Histogram& h = *s->histogram;
          uint64_t cumulative = 0;
          for (size_t i = 0; i <= h.bounds().size(); ++i) {
            cumulative += h.bucket(i);
            std::string le = "le=\"";
            if (i < h.bounds().size()) {
              append_number(le, h.bounds()[i]);
            } else {
              le += "+Inf";
            }
            le += '"';
            append_sample(out, name + "_bucket", join_labels(labels, le), static_cast<double>(cumulative));
          }
          append_sample(out, name + "_sum", labels, h.sum());
          append_sample(out, name + "_count", labels, static_cast<double>(h.count()));
          break;
        }
      }
    }
  }
  return out;
}

}  // namespace tickfan
