// mapping.h — internal to shm/: the pieces StoreWriter and StoreReader share:
// a mapped store file, the 16-byte symbol key, the index probe, the header
// check, the writer-lock probe and a consistent read of the header state.
#pragma once
#include <bit>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

#include "layout.h"
#include "store.h"

namespace tickfan::shm::detail {

using namespace layout;

// "what PATH: strerror(errno)".
std::string errno_text(const char* what, const std::string& path);

// The symbol as the 16-byte key stored in Keys[] and compared in probes.
struct Key {
  uint64_t w[2] = {0, 0};
  // Every lookup starts here, so no memcpy call: fixed-size loads that may
  // overlap (never reading outside `s`), OR-ed into place.
  static bool from(std::string_view s, Key* k) {
    const char* p = s.data();
    size_t n = s.size();
    if (n == 0 || n > kKeySize) return false;
    if (n >= 8) {
      k->w[0] = load8(p);
      k->w[1] = n == 8 ? 0 : load8(p + n - 8) >> (8 * (16 - n));
    } else if (n >= 4) {
      k->w[0] = load4(p) | (load4(p + n - 4) << (8 * (n - 4)));
      k->w[1] = 0;
    } else {
      uint64_t v = 0;
      for (size_t i = 0; i < n; ++i) v |= uint64_t{static_cast<uint8_t>(p[i])} << (8 * i);
      k->w[0] = v;
      k->w[1] = 0;
    }
    return true;
  }
  // The index position comes from the low bits, the tag from the top 6. The
  // two words are multiplied in parallel, then one xor-multiply-xor round
  // mixes the high bits down: half the latency of nesting mix64.
  uint64_t hash() const {
    uint64_t h = (w[0] * 0x9E3779B97F4A7C15ull) ^ ((w[1] + 0x632BE59BD9B4E019ull) * 0xC2B2AE3D27D4EB4Full);
    h ^= h >> 32;
    h *= 0xD6E8FEB86659FD93ull;
    return h ^ (h >> 29);
  }

 private:
  static uint64_t load8(const char* p) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    return v;
  }
  static uint64_t load4(const char* p) {
    uint32_t v;
    std::memcpy(&v, p, 4);
    return v;
  }
};
static_assert(std::endian::native == std::endian::little, "Key packs symbol bytes little-endian, as stored");

// A mapped store file; shared by writer and reader. bind() caches the
// area pointers once the header is known good.
struct Mapping {
  int fd = -1;
  void* base = nullptr;
  size_t size = 0;
  Header* header() const { return static_cast<Header*>(base); }
  Key* keys() const { return keys_; }
  std::atomic<uint32_t>* index() const { return index_; }
  Record* records() const { return records_; }
  Json* json() const { return json_; }
  void bind() {
    Geometry g = geometry_for(header()->capacity);
    auto* b = static_cast<char*>(base);
    keys_ = reinterpret_cast<Key*>(b + g.keys_offset);
    index_ = reinterpret_cast<std::atomic<uint32_t>*>(b + g.index_offset);
    records_ = reinterpret_cast<Record*>(b + g.records_offset);
    json_ = reinterpret_cast<Json*>(b + g.json_offset);
  }
  // Maps an existing store file of `file_size` bytes with `prot` and checks
  // its header (check_header below); binds on success.
  Status map_existing(size_t file_size, int prot, const std::string& path, std::string* error);
  void close();

 private:
  Key* keys_ = nullptr;
  std::atomic<uint32_t>* index_ = nullptr;
  Record* records_ = nullptr;
  Json* json_ = nullptr;
};

// Probe for `key`: returns the slot or -1, and the index position where the
// probe stopped (an empty entry) for an insert. The entry's tag filters out
// most mismatches without touching a record; a tag match is confirmed
// against the record's own symbol, which sits on the record's first cache
// line: the line the read that follows needs anyway. Inline: it is half of
// every read by symbol; *probes counts entries seen.
inline int64_t probe(const Mapping& m, const Key& key, uint32_t* stop_at, uint32_t* probes) {
  const Header* h = m.header();
  const uint32_t mask = h->index_size - 1;
  const Record* recs = m.records();
  auto* index = m.index();
  const uint64_t hash = key.hash();
  const uint32_t tag = index_tag(hash);
  uint32_t pos = static_cast<uint32_t>(hash) & mask;
  for (uint32_t n = 1; n <= h->index_size; ++n, pos = (pos + 1) & mask) {
    uint32_t e = index[pos].load(std::memory_order_acquire);
    if (e == 0) {
      if (stop_at) *stop_at = pos;
      if (probes) *probes = n;
      return -1;
    }
    if (entry_tag(e) != tag) continue;
    uint32_t slot = entry_slot(e);
    if (slot >= h->capacity) continue;
    // A slot's symbol never changes once published, but the writer rewrites
    // the same bytes on every update: atomic loads keep that race-free.
    const auto* sym = reinterpret_cast<const uint64_t*>(recs[slot].quote.symbol()->Data());
    if (__atomic_load_n(&sym[0], __ATOMIC_RELAXED) == key.w[0] &&
        __atomic_load_n(&sym[1], __ATOMIC_RELAXED) == key.w[1]) {
      if (probes) *probes = n;
      return slot;
    }
  }
  if (stop_at) *stop_at = UINT32_MAX;
  return -1;
}


// Cache warm-up for a writer that knows which symbols come next (a batch):
// the index line holding the symbol's home entry, then, once that line is
// in, the record the entry points at (for writing: the undo copy reads it and
// the update rewrites it, and its JSON). Only the home entry is looked at: a symbol that
// collided further along is found by the normal probe, just without the head
// start. `raw_symbol` is the quote's 16-byte field as received; a hostile one
// only costs a useless prefetch.
inline uint64_t raw_key_hash(const uint8_t* raw_symbol) {
  Key k;
  std::memcpy(k.w, raw_symbol, kKeySize);
  return k.hash();
}
inline void prefetch_index(const Mapping& m, uint64_t hash) {
  __builtin_prefetch(&m.index()[static_cast<uint32_t>(hash) & (m.header()->index_size - 1)]);
}
// The record lines a quote read copies, if the index entry at the hash's
// home position (prefetched earlier) names a slot with the right tag.
inline void prefetch_record_for_read(const Mapping& m, uint64_t hash) {
  const Header* h = m.header();
  uint32_t e = m.index()[static_cast<uint32_t>(hash) & (h->index_size - 1)].load(std::memory_order_relaxed);
  if (e == 0 || entry_tag(e) != index_tag(hash) || entry_slot(e) >= h->capacity) return;
  const char* rec = reinterpret_cast<const char*>(&m.records()[entry_slot(e)]);
  for (size_t line = 0; line < kRecordSize / 64; ++line) __builtin_prefetch(rec + line * 64);
}
inline void prefetch_record_for_write(const Mapping& m, uint64_t hash) {
  const Header* h = m.header();
  uint32_t e = m.index()[static_cast<uint32_t>(hash) & (h->index_size - 1)].load(std::memory_order_relaxed);
  if (e == 0 || entry_tag(e) != index_tag(hash) || entry_slot(e) >= h->capacity) return;
  const char* rec = reinterpret_cast<const char*>(&m.records()[entry_slot(e)]);
  for (size_t line = 0; line < kRecordSize / 64; ++line) __builtin_prefetch(rec + line * 64, 1);
  const char* json = m.json()[entry_slot(e)].bytes;
  for (size_t line = 0; line < kJsonCap / 64; ++line) __builtin_prefetch(json + line * 64, 1);
}

// What an existing file at a store path holds, judged from its first bytes
// before it is mapped. *creating is set when it is a store whose creator has
// not finished (or died before finishing): empty, all zero where the header
// goes (sized but not yet written), or magic with version 0. Readers call
// that not ready; the next writer, holding the lock, starts it over.
// Anything else shorter than a header is bad_file: a writer must never
// overwrite a file that is not a store. Also bad_file: not a regular file.
Status classify_file(int fd, const std::string& path, size_t* size, bool* creating, std::string* error);

// Checks a mapped header against this build; the message names both versions.
Status check_header(const Header* h, size_t file_size, const std::string& path, std::string* error);

// True when another open file description holds the writer lock.
bool ofd_lock_held_by_other(int fd);

// A consistent copy of the header (commit group read under its seqlock);
// writer_alive is left false for the caller to fill in.
StoreState read_state(const Header* h, size_t file_size);

}  // namespace tickfan::shm::detail
