// rank_cache.cpp — see rank_cache.h. The snapshot copies each record with the
// store's consistent read (quote and JSON from the same version); sorting is
// deferred to the first request for a (key, market) pair.
#include "rank_cache.h"

#include <algorithm>
#include <cstring>

#include "clock.h"
#include "metrics.h"

namespace tickfan::http {

namespace {
const char* const kKeyNames[] = {"change_pct", "volume", "turnover", "price", "amplitude"};
}

bool rank_key_from_name(std::string_view name, RankKey* out) {
  for (int i = 0; i < static_cast<int>(RankKey::count); ++i) {
    if (name == kKeyNames[i]) {
      *out = static_cast<RankKey>(i);
      return true;
    }
  }
  return false;
}

const char* rank_key_name(RankKey k) { return kKeyNames[static_cast<int>(k)]; }

bool RankCache::refresh(const shm::StoreReader& r, uint64_t commit, int64_t commit_ns, int64_t mono,
                        uint32_t interval_ms, Counter* recomputes) {
  if (taken_ns_ != 0 && (commit == commit_ || mono - taken_ns_ < static_cast<int64_t>(interval_ms) * 1000000))
    return false;
  int64_t t0 = mono_ns();
  uint32_t used = r.used();
  entries_.clear();
  entries_.reserve(used);
  json_.clear();
  json_.reserve(static_cast<size_t>(used) * 340);
  Quote q;
  char buf[kQuoteJsonMax];
  for (uint32_t slot = 0; slot < used; ++slot) {
    size_t len = 0;
    if (r.read(slot, &q, buf, &len) != shm::Status::ok || len == 0) continue;  // busy/torn: left out this round
    Entry e;
    e.key[static_cast<int>(RankKey::change_pct)] = quote_change_pct(q);
    e.key[static_cast<int>(RankKey::volume)] = q.volume();
    e.key[static_cast<int>(RankKey::turnover)] = q.turnover();
    e.key[static_cast<int>(RankKey::price)] = q.last();
    e.key[static_cast<int>(RankKey::amplitude)] = quote_amplitude_pct(q);
    e.json_off = static_cast<uint32_t>(json_.size());
    e.json_len = static_cast<uint16_t>(len);
    auto m = static_cast<unsigned>(q.market());
    e.market = static_cast<uint8_t>(m < kRankMarkets ? m : 0);
    json_.append(buf, len);
    entries_.push_back(e);
  }
  std::memcpy(was_built_, built_, sizeof built_);
  std::memset(built_, 0, sizeof built_);
  commit_ = commit;
  commit_ns_ = commit_ns;
  taken_ns_ = mono;
  build_ns_ = mono_ns() - t0;
  if (recomputes) recomputes->inc();
  return true;
}

void RankCache::warm() {
  for (int asc = 0; asc < 2; ++asc)
    for (int k = 0; k < static_cast<int>(RankKey::count); ++k)
      for (int m = 0; m < kRankMarkets; ++m)
        if (was_built_[asc][k][m]) order(static_cast<RankKey>(k), m, asc != 0);
}

const std::vector<uint32_t>& RankCache::order(RankKey k, int market, bool asc) {
  int ki = static_cast<int>(k);
  if (market < 0 || market >= kRankMarkets) market = 0;
  std::vector<uint32_t>& v = orders_[asc][ki][market];
  if (built_[asc][ki][market]) return v;
  if (asc) {
    // Ascending from the descending order in O(n): reversed, then each run
    // of equal keys reversed back, so ties keep slot order here too (plain
    // reversal listed them in reverse slot order, against docs/http.md).
    const std::vector<uint32_t>& desc = order(k, market, false);
    v.assign(desc.rbegin(), desc.rend());
    for (size_t i = 0; i < v.size();) {
      size_t j = i + 1;
      while (j < v.size() && entries_[v[j]].key[ki] == entries_[v[i]].key[ki]) ++j;
      std::reverse(v.begin() + static_cast<std::ptrdiff_t>(i), v.begin() + static_cast<std::ptrdiff_t>(j));
      i = j;
    }
    built_[asc][ki][market] = true;
    return v;
  }
  v.clear();
  for (uint32_t i = 0; i < entries_.size(); ++i) {
    if (market == 0 || entries_[i].market == market) v.push_back(i);
  }
  // Descending by key; ties keep slot order (stable), so pages do not shuffle
  // between identical snapshots.
  std::stable_sort(v.begin(), v.end(),
                   [&](uint32_t a, uint32_t b) { return entries_[a].key[ki] > entries_[b].key[ki]; });
  built_[asc][ki][market] = true;
  return v;
}

}  // namespace tickfan::http
