// source_synthetic.cpp — synthetic:[?symbols=N&rate=R&seed=S&count=C]: drives
// the SyntheticMarket at R ticks/s in total (0 = as fast as the core takes
// them), through the same validation as real feeds.
#include <algorithm>
#include <chrono>

#include "clock.h"
#include "source.h"
#include "synthetic.h"

namespace tickfan::apiserver {

namespace {

class SyntheticSource final : public Source {
 public:
  SyntheticSource(const SourceSpec& spec, const SourceContext& ctx, int index)
      : Source(spec, ctx, index), market_(spec.symbols, spec.seed) {}
  ~SyntheticSource() override {
    request_stop();
    join();
  }

 protected:
  void run() override {
    LOG_INFO("source", "synthetic market source=%s symbols=%u rate=%.0f seed=%llu count=%llu", name().c_str(),
             market_.symbols(), spec_.rate, static_cast<unsigned long long>(spec_.seed),
             static_cast<unsigned long long>(spec_.count));
    const uint64_t limit = spec_.count;
    // Ticks are made in chunks published with one release store; at a paced
    // rate a chunk is what 1 ms of that rate amounts to (at least 1 tick).
    const uint64_t chunk = spec_.rate > 0 ? std::max<uint64_t>(1, static_cast<uint64_t>(spec_.rate / 1000)) : 64;
    const int64_t start = mono_ns();
    uint64_t made = 0;
    Reject reason;
    std::string detail;
    const FieldSet all = ~FieldSet{0};
    while (!stopping() && (limit == 0 || made < limit)) {
      uint64_t n = limit == 0 ? chunk : std::min(chunk, limit - made);
      int64_t now = wall_ns();
      for (uint64_t k = 0; k < n; ++k) {
        Quote* q = slot();
        market_.next(q, now);
        // Same gate as every feed: the benchmark measures the real path.
        if (validate_tick(q, all, now, ctx_.limits, &reason, &detail)) {
          commit_slot();
        } else {
          reject(reason, detail, quote_symbol(*q));  // a simulator bug, but never silent
        }
      }
      made += n;
      flush();
      if (spec_.rate > 0) {
        // Pace against the start time so sleep jitter does not accumulate.
        // Slept in slices of at most 50 ms so a stop is seen promptly at a
        // slow rate (0.1 ticks/s once held SIGTERM up for 10 s).
        int64_t due = start + static_cast<int64_t>(static_cast<double>(made) * 1e9 / spec_.rate);
        for (int64_t wait = due - mono_ns(); wait > 0 && !stopping(); wait = due - mono_ns())
          std::this_thread::sleep_for(std::chrono::nanoseconds(std::min<int64_t>(wait, 50'000'000)));
      }
    }
    LOG_INFO("source", "synthetic finished source=%s ticks=%llu", name().c_str(),
             static_cast<unsigned long long>(made));
  }

 private:
  SyntheticMarket market_;
};

}  // namespace

std::unique_ptr<Source> make_synthetic_source(const SourceSpec& spec, const SourceContext& ctx, int index) {
  return std::make_unique<SyntheticSource>(spec, ctx, index);
}

}  // namespace tickfan::apiserver
