// rank_cache.h — per-worker rankings: a snapshot of every quote's sort keys
// and pre-rendered JSON, taken at most once per store commit and at most every
// --rank-interval-ms, with orderings built lazily per (key, market) and kept
// until the next snapshot. While rankings are being asked for, the worker's
// ranking timer takes the snapshots and sorts the orderings in use (warm),
// so requests do not pay for them. A /v1/rank request is then an index walk and a
// copy of `limit` JSON records: it never sorts the market. Rows come from the
// same snapshot as the order, so a ranking is always internally consistent
// (values and order agree) even while the writer updates the store.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "quote.h"
#include "store.h"

namespace tickfan {
class Counter;
}

namespace tickfan::http {

enum class RankKey : uint8_t { change_pct, volume, turnover, price, amplitude, count };
// Parses a `by=` value; false when unknown.
bool rank_key_from_name(std::string_view name, RankKey* out);
const char* rank_key_name(RankKey k);

inline constexpr int kRankMarkets = 8;  // Market enum values 0..7; 0 (Unknown) means "all"

class RankCache {
 public:
  // Takes a new snapshot when the store's commit differs from the snapshot's
  // and at least interval_ms passed since the last one (or none exists yet).
  // True when it took one.
  bool refresh(const shm::StoreReader& r, uint64_t commit, int64_t commit_ns, int64_t mono_ns, uint32_t interval_ms,
               Counter* recomputes);
  // Sorts, for the current snapshot, every ordering the previous snapshot
  // was asked for: called off the request path (the worker's ranking timer)
  // so requests for rankings in steady use find them ready.
  void warm();
  // Entry indexes sorted by `k`, descending or ascending; ties keep the
  // order of the store slots in both directions (docs/http.md); market 0 is
  // the whole store.
  const std::vector<uint32_t>& order(RankKey k, int market, bool asc = false);
  std::string_view json(uint32_t idx) const {
    const Entry& e = entries_[idx];
    return std::string_view(json_.data() + e.json_off, e.json_len);
  }
  uint64_t commit() const { return commit_; }
  int64_t commit_ns() const { return commit_ns_; }
  bool empty_snapshot() const { return taken_ns_ == 0; }
  // Time the last snapshot took (ns), for docs/BENCHMARKS.md and metrics.
  int64_t last_build_ns() const { return build_ns_; }

 private:
  struct Entry {
    int64_t key[static_cast<int>(RankKey::count)];
    uint32_t json_off;
    uint16_t json_len;
    uint8_t market;
  };
  std::vector<Entry> entries_;
  std::string json_;
  std::vector<uint32_t> orders_[2][static_cast<int>(RankKey::count)][kRankMarkets];  // [asc]
  bool built_[2][static_cast<int>(RankKey::count)][kRankMarkets] = {};
  bool was_built_[2][static_cast<int>(RankKey::count)][kRankMarkets] = {};  // by the previous snapshot
  uint64_t commit_ = 0;
  int64_t commit_ns_ = 0;
  int64_t taken_ns_ = 0;
  int64_t build_ns_ = 0;
};

}  // namespace tickfan::http
