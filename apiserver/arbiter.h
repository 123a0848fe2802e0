// arbiter.h — one tick per (symbol, exchange timestamp) reaches NATS, however
// many redundant sources carry it.
//
// Rules, per symbol, against the last tick accepted (published or pending):
//   - older exchange timestamp                  -> dropped as "stale"
//   - same timestamp, same content              -> dropped as "duplicate"
//                                                  (first arrival won)
//   - same timestamp, different content: from the source that won it, or
//     from a source with better (smaller) priority -> accepted (a correction,
//     or the preferred feed disagreeing); otherwise -> "duplicate"
//   - newer timestamp                           -> accepted
// The core drains rings in priority order, so when two feeds deliver the
// same tick in one pass the preferred feed's copy is the one published.
//
// Symbols get dense ids (0..n-1) on first sight from an open-addressing
// index keyed by the 16 symbol bytes; everything per symbol is a vector
// indexed by id, so the hot path does one probe and no allocation.
#pragma once
#include <cstdint>
#include <cstring>
#include <vector>

#include "quote.h"

namespace tickfan::apiserver {

class SymbolIndex {
 public:
  SymbolIndex() { table_.assign(1024, 0); }
  // Id of the symbol in `q`, adding it when new (*added = true).
  uint32_t find_or_add(const Quote& q, bool* added);
  uint32_t size() const { return static_cast<uint32_t>(keys_.size()); }

 private:
  struct Key {
    uint64_t a, b;
    bool operator==(const Key&) const = default;
  };
  static Key key_of(const Quote& q) {
    Key k;
    std::memcpy(&k, q.symbol()->Data(), sizeof k);
    return k;
  }
  // Full-avalanche mix (murmur3's fmix64 over both words): symbols differ
  // only in a few trailing digits, and a multiply alone carries low bytes
  // upwards only, which clustered "sh6000xx" into one probe run.
  static uint64_t hash(const Key& k) {
    uint64_t h = k.a ^ (k.b * 0x9E3779B97F4A7C15ull);
    h ^= h >> 33;
    h *= 0xFF51AFD7ED558CCDull;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ull;
    return h ^ (h >> 33);
  }
  void grow();

  std::vector<uint32_t> table_;  // id + 1, 0 = empty
  std::vector<Key> keys_;
};

enum class Verdict : uint8_t { accept, stale, duplicate };

class Arbiter {
 public:
  // Decides for tick `q` from source `source` (priority `priority`); on
  // accept, remembers it. *id gets the symbol id either way.
  Verdict offer(const Quote& q, int source, int priority, uint32_t* id, bool* new_symbol);
  // Seeds a symbol from persisted state (restart): later ticks must be newer.
  uint32_t restore(const Quote& q);
  uint32_t symbols() const { return index_.size(); }

  // The last accepted quote of symbol `id` (ids are 0..symbols()-1). This is
  // also the last-value state: the core flushes every pending batch before
  // reading it for a snapshot, so then "accepted" equals "published".
  const Quote& last(uint32_t id) const { return entries_[id].last; }
  // Moves the quotes accepted since the last call (one per symbol) into *out.
  void take_dirty(std::vector<Quote>* out);

 private:
  struct Entry {
    int64_t ts = 0;
    int32_t source = -1;
    int32_t priority = 0;
    bool dirty = false;
    Quote last;
  };
  std::vector<uint32_t> dirty_;
  static bool same_content(const Quote& a, const Quote& b);
  SymbolIndex index_;
  std::vector<Entry> entries_;
};

}  // namespace tickfan::apiserver
