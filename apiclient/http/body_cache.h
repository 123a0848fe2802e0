// body_cache.h — per-worker cache of rendered /v1/quotes list bodies, keyed
// by the raw query string and valid for one store commit. A 500-symbol list
// asked for again before the next commit (clients polling the same
// watchlist or index) is served without touching the store.
//
// Each entry is one heap block, written once and never modified, shared
// (shared_ptr) by every connection still sending it, so an evicted entry
// lives until its last response is out. The server sends it from memory in
// the same sendmsg as its head. (It used to live in a memfd sent with
// sendfile(2), zero copy, as nginx serves static files; with the workers
// pinned, on loopback under bbr, one copy from memory measured 1.3-1.6x
// the list req/s of sendfile, which splices 16 pages at a time:
// docs/BENCHMARKS.md, HTTP, 2026-11-22 08:45.)
//
// Only the part after the age/commit prefix is cached, so age_ms stays exact
// per response. Bounded (LRU eviction) in bytes (--body-cache-bytes), counted
// as what an entry holds — its bytes, its deflated companion and its key —
// and in entries (kMaxEntries), which bounds the bookkeeping a client asking
// for thousands of distinct small lists can make. Skipped for small lists,
// which are cheaper to render than to look up.
#pragma once
#include <sys/types.h>

#include <cstdint>
#include <cstring>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tickfan::http {

struct CachedBody {
  std::unique_ptr<char[]> bytes;  // exactly `size` bytes, never modified
  size_t size = 0;
  explicit CachedBody(std::string_view b) : bytes(new char[b.size()]), size(b.size()) {
    if (size) std::memcpy(bytes.get(), b.data(), size);
  }
  CachedBody(const CachedBody&) = delete;
  CachedBody& operator=(const CachedBody&) = delete;
  const char* data() const { return bytes.get(); }
  std::string_view view() const { return {bytes.get(), size}; }
  // gzip companion, made on first use (BodyCache::deflated): the body as a
  // raw deflate stream of its own, and the body's CRC-32.
  mutable std::shared_ptr<const CachedBody> deflated;
  mutable uint32_t crc = 0;
  mutable bool deflate_tried = false;  // tried: `deflated` null means it did not shrink
};

class Gzip;

class BodyCache {
 public:
  static constexpr size_t kMaxEntries = 256;
  explicit BodyCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  bool enabled() const { return max_bytes_ > 0; }
  // The entry for `key` if it was rendered at (commit, commit_ns), else null.
  std::shared_ptr<const CachedBody> find(std::string_view key, uint64_t commit, int64_t commit_ns);
  // Stores a copy of `body`; false (nothing cached) if it is too large for
  // the budget. The first insert at a new (commit, commit_ns) drops every
  // entry of older ones: find() can never return them again, and in a live
  // market they would otherwise sit in the worker's memory until evicted.
  bool insert(std::string_view key, uint64_t commit, int64_t commit_ns, std::string_view body);
  // The raw-deflate companion of `body`, an entry cached under `key`:
  // compressed on first use and kept with the entry (charged to it and
  // evicted with it), so later gzip responses of the same list at the same
  // commit, HEAD included, are not compressed again. Null if compressing
  // does not shrink the body or fails.
  std::shared_ptr<const CachedBody> deflated(std::string_view key, const std::shared_ptr<const CachedBody>& body,
                                             Gzip& gz, std::string* scratch);
  uint64_t compressions() const { return compressions_; }
  size_t bytes() const { return bytes_; }
  size_t entries() const { return map_.size(); }

 private:
  struct Entry {
    uint64_t commit;
    int64_t commit_ns;
    std::shared_ptr<const CachedBody> body;
    size_t cost;  // bytes charged: the body's, its deflated companion's and the key's
    std::list<std::string>::iterator lru;
  };
  size_t max_bytes_;
  size_t bytes_ = 0;
  uint64_t commit_ = 0;  // of the newest entry
  int64_t commit_ns_ = 0;
  uint64_t compressions_ = 0;
  // Keys are whole query strings (4.6 KB for 500 symbols), hashed on every
  // list request: std::hash (murmur, one 8-byte word at a time) was 1.5-2 %
  // of a worker's CPU in perf. Four independent multiply-xorshift lanes of
  // 8 bytes do the same work in about a quarter of the time; the seed is
  // per process so clients cannot precompute colliding queries.
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view k) const;
  };
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, Entry, Hash, std::equal_to<>> map_;
};

}  // namespace tickfan::http
