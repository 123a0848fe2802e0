// body_cache.cpp — see body_cache.h.
#include "body_cache.h"

#include <cstring>
#include <random>

#include "gzip.h"

namespace tickfan::http {

namespace {
inline uint64_t load64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t mix(uint64_t h, uint64_t v) {
  h = (h ^ v) * 0x9FB21C651E98DF25ULL;
  return h ^ (h >> 29);
}
const uint64_t kSeed = [] {
  std::random_device rd;
  return (static_cast<uint64_t>(rd()) << 32) ^ rd();
}();
}  // namespace

size_t BodyCache::Hash::operator()(std::string_view k) const {
  const char* p = k.data();
  size_t n = k.size();
  uint64_t a = kSeed ^ n, b = kSeed + 0xC2B2AE3D27D4EB4FULL, c = kSeed ^ 0x165667B19E3779F9ULL,
           d = kSeed - 0x27D4EB2F165667C5ULL;
  for (; n >= 32; p += 32, n -= 32) {
    a = mix(a, load64(p));
    b = mix(b, load64(p + 8));
    c = mix(c, load64(p + 16));
    d = mix(d, load64(p + 24));
  }
  for (; n >= 8; p += 8, n -= 8) a = mix(a, load64(p));
  uint64_t last = 0;
  if (n) std::memcpy(&last, p, n);  // n < 8 (p may be null when n == 0)
  a = mix(a, last ^ (static_cast<uint64_t>(n) << 56));
  uint64_t h = mix(mix(mix(a, b), c), d);
  h *= 0xD6E8FEB86659FD93ULL;
  return static_cast<size_t>(h ^ (h >> 32));
}

std::shared_ptr<const CachedBody> BodyCache::find(std::string_view key, uint64_t commit, int64_t commit_ns) {
  auto it = map_.find(key);  // heterogeneous: no copy of a multi-KB key
  if (it == map_.end() || it->second.commit != commit || it->second.commit_ns != commit_ns) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.body;
}

std::shared_ptr<const CachedBody> BodyCache::deflated(std::string_view key,
                                                      const std::shared_ptr<const CachedBody>& body, Gzip& gz,
                                                      std::string* scratch) {
  if (body->deflate_tried) return body->deflated;
  body->deflate_tried = true;
  ++compressions_;
  if (!gz.deflate(body->data(), body->size, scratch)) return nullptr;
  auto d = std::make_shared<const CachedBody>(std::string_view(*scratch));
  body->crc = Gzip::crc32(0, body->data(), body->size);
  body->deflated = d;
  // Charge it to the entry, if the entry is still cached.
  auto it = map_.find(key);
  if (it != map_.end() && it->second.body == body) {
    size_t cost = d->size;
    it->second.cost += cost;
    bytes_ += cost;
    while (bytes_ > max_bytes_ && !lru_.empty()) {
      auto old = map_.find(lru_.back());
      bytes_ -= old->second.cost;
      map_.erase(old);
      lru_.pop_back();
    }
  }
  return d;
}

bool BodyCache::insert(std::string_view key, uint64_t commit, int64_t commit_ns, std::string_view body) {
  const size_t cost = body.size() + key.size();
  if (cost > max_bytes_ / 4) return false;  // one entry may not crowd out the rest
  if (commit != commit_ || commit_ns != commit_ns_) {
    map_.clear();
    lru_.clear();
    bytes_ = 0;
    commit_ = commit;
    commit_ns_ = commit_ns;
  }
  auto b = std::make_shared<const CachedBody>(body);
  std::string k(key);
  auto it = map_.find(k);
  if (it != map_.end()) {
    bytes_ -= it->second.cost;
    lru_.erase(it->second.lru);
    map_.erase(it);
  }
  while ((bytes_ + cost > max_bytes_ || map_.size() >= kMaxEntries) && !lru_.empty()) {
    auto old = map_.find(lru_.back());
    bytes_ -= old->second.cost;
    map_.erase(old);
    lru_.pop_back();
  }
  lru_.push_front(k);
  map_.emplace(std::move(k), Entry{commit, commit_ns, std::move(b), cost, lru_.begin()});
  bytes_ += cost;
  return true;
}

}  // namespace tickfan::http
