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
  static uint64_t hash(const Key& k) {
    uint64_t h = (k.a ^ (k.b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 31);
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

 private:
  struct Entry {
    int64_t ts = 0;
    int source = -1;
    int priority = 0;
    Quote last;
  };
  static bool same_content(const Quote& a, const Quote& b);
  SymbolIndex index_;
  std::vector<Entry> entries_;
};

}  // namespace tickfan::apiserver
