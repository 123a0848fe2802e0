// body_cache.h — per-worker cache of rendered /v1/quotes list bodies, keyed
// by the raw query string and valid for one store commit. A 500-symbol list
// asked for again before the next commit (clients polling the same
// watchlist or index) is served without touching the store: the cached
// bytes go to the socket by reference in the same writev as the headers
// (zero copy; the entry is kept alive by the write until it completes).
//
// Only the part after the age/commit prefix is cached, so age_ms stays exact
// per response. Bounded in bytes (--body-cache-bytes, LRU eviction) and
// skipped for small lists, which are cheaper to render than to look up.
#pragma once
#include <cstdint>
#include <list>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

namespace tickfan::http {

class BodyCache {
 public:
  explicit BodyCache(size_t max_bytes) : max_bytes_(max_bytes) {}
  bool enabled() const { return max_bytes_ > 0; }
  // The entry for `key` if it was rendered at (commit, commit_ns), else null.
  std::shared_ptr<const std::string> find(std::string_view key, uint64_t commit, int64_t commit_ns);
  void insert(std::string_view key, uint64_t commit, int64_t commit_ns, std::string_view body);
  size_t bytes() const { return bytes_; }
  uint64_t hits = 0, misses = 0;

 private:
  struct Entry {
    uint64_t commit;
    int64_t commit_ns;
    std::shared_ptr<const std::string> body;
    std::list<std::string>::iterator lru;
  };
  size_t max_bytes_;
  size_t bytes_ = 0;
  std::list<std::string> lru_;  // most recent first
  std::unordered_map<std::string, Entry> map_;
};

}  // namespace tickfan::http
