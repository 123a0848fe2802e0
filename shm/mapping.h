// mapping.h — internal to shm/: the pieces StoreWriter and StoreReader share:
// a mapped store file, the 16-byte symbol key, the index probe, the header
// check, the writer-lock probe and a consistent read of the header state.
#pragma once
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
  static bool from(std::string_view s, Key* k) {
    if (s.empty() || s.size() > kKeySize) return false;
    std::memcpy(k->w, s.data(), s.size());
    return true;
  }
  uint64_t hash() const { return mix64(w[0] ^ mix64(w[1] + 0x632BE59BD9B4E019ull)); }
};

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
  void close();

 private:
  Key* keys_ = nullptr;
  std::atomic<uint32_t>* index_ = nullptr;
  Record* records_ = nullptr;
  Json* json_ = nullptr;
};

// Probe for `key`: returns the slot or -1, and the index position where the
// probe stopped (an empty entry) for an insert; *probes counts entries seen.
int64_t probe(const Mapping& m, const Key& key, uint32_t* stop_at, uint32_t* probes);

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
inline void prefetch_record_for_write(const Mapping& m, uint64_t hash) {
  const Header* h = m.header();
  uint32_t e = m.index()[static_cast<uint32_t>(hash) & (h->index_size - 1)].load(std::memory_order_relaxed);
  if (e == 0 || entry_tag(e) != index_tag(hash) || entry_slot(e) >= h->capacity) return;
  const char* rec = reinterpret_cast<const char*>(&m.records()[entry_slot(e)]);
  for (size_t line = 0; line < kRecordSize / 64; ++line) __builtin_prefetch(rec + line * 64, 1);
  const char* json = m.json()[entry_slot(e)].bytes;
  for (size_t line = 0; line < kJsonCap / 64; ++line) __builtin_prefetch(json + line * 64, 1);
}

// Checks a mapped header against this build; the message names both versions.
Status check_header(const Header* h, size_t file_size, const std::string& path, std::string* error);

// True when another open file description holds the writer lock.
bool ofd_lock_held_by_other(int fd);

// A consistent copy of the header (commit group read under its seqlock);
// writer_alive is left false for the caller to fill in.
StoreState read_state(const Header* h, size_t file_size);

}  // namespace tickfan::shm::detail
