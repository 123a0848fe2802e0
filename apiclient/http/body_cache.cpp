// body_cache.cpp — see body_cache.h.
#include "body_cache.h"

namespace tickfan::http {

std::shared_ptr<const std::string> BodyCache::find(std::string_view key, uint64_t commit, int64_t commit_ns) {
  auto it = map_.find(std::string(key));
  if (it == map_.end() || it->second.commit != commit || it->second.commit_ns != commit_ns) {
    ++misses;
    return nullptr;
  }
  ++hits;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.body;
}

void BodyCache::insert(std::string_view key, uint64_t commit, int64_t commit_ns, std::string_view body) {
  if (body.size() + key.size() > max_bytes_ / 4) return;  // one entry may not crowd out the rest
  std::string k(key);
  auto it = map_.find(k);
  if (it != map_.end()) {
    bytes_ -= it->second.body->size() + k.size();
    lru_.erase(it->second.lru);
    map_.erase(it);
  }
  while (bytes_ + body.size() + k.size() > max_bytes_ && !lru_.empty()) {
    auto old = map_.find(lru_.back());
    bytes_ -= old->second.body->size() + old->first.size();
    map_.erase(old);
    lru_.pop_back();
  }
  lru_.push_front(k);
  map_.emplace(std::move(k), Entry{commit, commit_ns, std::make_shared<const std::string>(body), lru_.begin()});
  bytes_ += body.size() + key.size();
}

}  // namespace tickfan::http
