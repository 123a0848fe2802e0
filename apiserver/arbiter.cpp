// arbiter.cpp — see arbiter.h.
#include "arbiter.h"

#include <climits>
#include <cstddef>

namespace tickfan::apiserver {

uint32_t SymbolIndex::find_or_add(const Quote& q, bool* added) {
  Key k = key_of(q);
  size_t mask = table_.size() - 1;
  for (size_t i = hash(k) & mask;; i = (i + 1) & mask) {
    uint32_t slot = table_[i];
    if (slot == 0) {
      *added = true;
      keys_.push_back(k);
      table_[i] = static_cast<uint32_t>(keys_.size());
      if (keys_.size() * 2 > table_.size()) grow();  // keep probes short
      return static_cast<uint32_t>(keys_.size() - 1);
    }
    if (keys_[slot - 1] == k) {
      *added = false;
      return slot - 1;
    }
  }
}

void SymbolIndex::grow() {
  std::vector<uint32_t> bigger(table_.size() * 2, 0);
  size_t mask = bigger.size() - 1;
  for (uint32_t id = 0; id < keys_.size(); ++id) {
    size_t i = hash(keys_[id]) & mask;
    while (bigger[i] != 0) i = (i + 1) & mask;
    bigger[i] = id + 1;
  }
  table_.swap(bigger);
}

bool Arbiter::same_content(const Quote& a, const Quote& b) {
  // Everything except receive_ts_ns, which differs per source by design. The
  // generated struct keeps its members private, so find the field's offset
  // once by writing it into a blank quote.
  static const size_t kRecv = [] {
    Quote probe;
    std::memset(static_cast<void*>(&probe), 0, sizeof probe);
    probe.mutate_receive_ts_ns(-1);
    const auto* p = reinterpret_cast<const unsigned char*>(&probe);
    size_t i = 0;
    while (p[i] == 0) ++i;
    return i;
  }();
  const auto* pa = reinterpret_cast<const unsigned char*>(&a);
  const auto* pb = reinterpret_cast<const unsigned char*>(&b);
  return std::memcmp(pa, pb, kRecv) == 0 && std::memcmp(pa + kRecv + 8, pb + kRecv + 8, sizeof(Quote) - kRecv - 8) == 0;
}

Verdict Arbiter::offer(const Quote& q, int source, int priority, uint32_t* id, bool* new_symbol) {
  *id = index_.find_or_add(q, new_symbol);
  if (*new_symbol) entries_.emplace_back();
  Entry& e = entries_[*id];
  int64_t ts = q.exchange_ts_ns();
  if (!*new_symbol) {
    if (ts < e.ts) return Verdict::stale;
    if (ts == e.ts) {
      if (same_content(q, e.last)) return Verdict::duplicate;
      if (source != e.source && priority >= e.priority) return Verdict::duplicate;
    }
  }
  e.ts = ts;
  e.source = source;
  e.priority = priority;
  std::memcpy(static_cast<void*>(&e.last), &q, sizeof q);
  if (!e.dirty) {
    e.dirty = true;
    dirty_.push_back(*id);
  }
  return Verdict::accept;
}

uint32_t Arbiter::restore(const Quote& q) {
  bool added = false;
  uint32_t id = index_.find_or_add(q, &added);
  if (added) entries_.emplace_back();
  Entry& e = entries_[id];
  e.ts = q.exchange_ts_ns();
  e.source = -1;  // nobody: any live source may correct a same-timestamp value
  e.priority = INT32_MAX;
  std::memcpy(static_cast<void*>(&e.last), &q, sizeof q);
  return id;
}

void Arbiter::take_dirty(std::vector<Quote>* out) {
  out->clear();
  for (uint32_t id : dirty_) {
    out->push_back(entries_[id].last);
    entries_[id].dirty = false;
  }
  dirty_.clear();
}

}  // namespace tickfan::apiserver
