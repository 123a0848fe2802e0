// body_cache.cpp — see body_cache.h.
#include "body_cache.h"

#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

namespace tickfan::http {

CachedBody::~CachedBody() {
  if (fd >= 0) close(fd);
}

bool CachedBody::read_all(char* out) const {
  size_t done = 0;
  while (done < size) {
    ssize_t n = pread(fd, out + done, size - done, static_cast<off_t>(done));
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  return true;
}

std::shared_ptr<const CachedBody> BodyCache::find(std::string_view key, uint64_t commit, int64_t commit_ns) {
  auto it = map_.find(key);  // heterogeneous: no copy of a multi-KB key
  if (it == map_.end() || it->second.commit != commit || it->second.commit_ns != commit_ns) return nullptr;
  lru_.splice(lru_.begin(), lru_, it->second.lru);
  return it->second.body;
}

bool BodyCache::insert(std::string_view key, uint64_t commit, int64_t commit_ns, std::string_view body) {
  if (body.size() + key.size() > max_bytes_ / 4) return false;  // one entry may not crowd out the rest
  auto b = std::make_shared<CachedBody>();
  b->fd = memfd_create("tickfan-body", MFD_CLOEXEC);
  if (b->fd < 0) return false;
  size_t done = 0;
  while (done < body.size()) {
    ssize_t n = write(b->fd, body.data() + done, body.size() - done);
    if (n <= 0) {
      if (n < 0 && errno == EINTR) continue;
      return false;
    }
    done += static_cast<size_t>(n);
  }
  b->size = body.size();
  std::string k(key);
  auto it = map_.find(k);
  if (it != map_.end()) {
    bytes_ -= it->second.body->size + k.size();
    lru_.erase(it->second.lru);
    map_.erase(it);
  }
  while (bytes_ + body.size() + k.size() > max_bytes_ && !lru_.empty()) {
    auto old = map_.find(lru_.back());
    bytes_ -= old->second.body->size + old->first.size();
    map_.erase(old);
    lru_.pop_back();
  }
  lru_.push_front(k);
  map_.emplace(std::move(k), Entry{commit, commit_ns, std::move(b), lru_.begin()});
  bytes_ += body.size() + key.size();
  return true;
}

}  // namespace tickfan::http
