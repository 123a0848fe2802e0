// body_cache_test.cpp — the list body cache's bounds, in process: a client
// asking for thousands of distinct lists must not hold more than the byte
// budget (counted in the memfds' whole pages) or more than kMaxEntries file
// descriptors, which would stop a worker accepting connections.
#include "body_cache.h"

#include <dirent.h>
#include <doctest/doctest.h>

#include <string>

using tickfan::http::BodyCache;

namespace {
size_t open_fds() {
  size_t n = 0;
  DIR* d = opendir("/proc/self/fd");
  while (d && readdir(d)) ++n;
  if (d) closedir(d);
  return n;
}
}  // namespace

TEST_CASE("the body cache bounds its pages and its descriptors, not just its body bytes") {
  const size_t budget = 8u << 20;
  BodyCache cache(budget);
  size_t before = open_fds();
  std::string body(300, 'x');  // a small list: one page of memfd each
  for (int i = 0; i < 10000; ++i) {
    std::string key = "symbols=sh" + std::to_string(600000 + i);
    REQUIRE(cache.insert(key, 1, 1, body));
    CHECK(cache.bytes() <= budget);
  }
  CHECK(cache.entries() == BodyCache::kMaxEntries);
  CHECK(open_fds() <= before + BodyCache::kMaxEntries);
  // The newest entries are the ones kept; a hit returns the same bytes.
  auto hit = cache.find("symbols=sh609999", 1, 1);
  REQUIRE(hit);
  std::string back(hit->size, '\0');
  REQUIRE(hit->read_all(back.data()));
  CHECK(back == body);
  CHECK_FALSE(cache.find("symbols=sh600000", 1, 1));
  CHECK_FALSE(cache.find("symbols=sh609999", 2, 1));  // another commit: stale

  // Big bodies: the byte budget binds first, counted in whole pages.
  BodyCache big(budget);
  std::string large(100 * 1024 + 1, 'y');
  for (int i = 0; i < 200; ++i) REQUIRE(big.insert(std::to_string(i) + "k", 1, 1, large));
  CHECK(big.bytes() <= budget);
  CHECK(big.entries() == budget / (104 * 1024 + 4));  // 26 pages + a short key each
}
