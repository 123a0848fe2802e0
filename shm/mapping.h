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

// A mapped store file; shared by writer and reader.
struct Mapping {
  int fd = -1;
  void* base = nullptr;
  size_t size = 0;
  Header* header() const { return static_cast<Header*>(base); }
  Key* keys() const { return reinterpret_cast<Key*>(static_cast<char*>(base) + header()->keys_offset); }
  std::atomic<uint32_t>* index() const {
    return reinterpret_cast<std::atomic<uint32_t>*>(static_cast<char*>(base) + header()->index_offset);
  }
  Record* records() const { return reinterpret_cast<Record*>(static_cast<char*>(base) + header()->records_offset); }
  void close();
};

// Probe for `key`: returns the slot or -1, and the index position where the
// probe stopped (an empty entry) for an insert; *probes counts entries seen.
int64_t probe(const Mapping& m, const Key& key, uint32_t* stop_at, uint32_t* probes);

// Checks a mapped header against this build; the message names both versions.
Status check_header(const Header* h, size_t file_size, const std::string& path, std::string* error);

// True when another open file description holds the writer lock.
bool ofd_lock_held_by_other(int fd);

// A consistent copy of the header (commit group read under its seqlock);
// writer_alive is left false for the caller to fill in.
StoreState read_state(const Header* h, size_t file_size);

}  // namespace tickfan::shm::detail
