// body_cache_test.cpp — the list body cache's bounds, in process: a client
// asking for thousands of distinct lists must not hold more than the byte
// budget (counted in the memfds' whole pages) or more than kMaxEntries file
// descriptors, which would stop a worker accepting connections.
#include "body_cache.h"

#include <dirent.h>
#include <doctest/doctest.h>
#include <libdeflate.h>

#include <string>

#include "gzip.h"

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

TEST_CASE("gzip of a cached body: compressed once, charged to its entry; header + stored prefix + stream + trailer is "
          "valid gzip") {
  using tickfan::http::Gzip;
  BodyCache cache(1u << 20);
  Gzip gz(1);
  std::string scratch;
  std::string tail = "\"data\":[";
  for (int i = 0; i < 400; ++i) tail += "{\"symbol\":\"sh" + std::to_string(600000 + i) + "\",\"last\":10.5},";
  tail += "{}]}";
  REQUIRE(cache.insert("q", 1, 2, tail));
  size_t plain_bytes = cache.bytes();
  auto e = cache.find("q", 1, 2);
  REQUIRE(e);
  auto d = cache.deflated("q", e, nullptr, gz, &scratch);  // read from the memfd
  REQUIRE(d);
  CHECK(cache.compressions() == 1);
  CHECK(cache.bytes() > plain_bytes);  // charged to the entry
  CHECK(cache.deflated("q", e, tail.data(), gz, &scratch) == d);
  CHECK(cache.compressions() == 1);  // not again
  // Assemble as the server does and decode with libdeflate.
  const std::string prefix = "{\"age_ms\":      17,\"commit\":1,";
  std::string out(Gzip::kHeadLen, '\0');
  Gzip::head(out.data(), prefix.size());
  out += prefix;
  std::string stream(d->size, '\0');
  REQUIRE(d->read_all(stream.data()));
  out += stream;
  uint32_t crc = Gzip::crc32_combine(Gzip::crc32(0, prefix.data(), prefix.size()), e->crc, e->size);
  CHECK(crc == Gzip::crc32(Gzip::crc32(0, prefix.data(), prefix.size()), tail.data(), tail.size()));
  auto isize = static_cast<uint32_t>(prefix.size() + tail.size());
  for (int i = 0; i < 4; ++i) out += static_cast<char>(crc >> (8 * i));
  for (int i = 0; i < 4; ++i) out += static_cast<char>(isize >> (8 * i));
  libdeflate_decompressor* dec = libdeflate_alloc_decompressor();
  std::string back(prefix.size() + tail.size(), '\0');
  size_t got = 0;
  auto r = libdeflate_gzip_decompress(dec, out.data(), out.size(), back.data(), back.size(), &got);
  libdeflate_free_decompressor(dec);
  CHECK(r == LIBDEFLATE_SUCCESS);  // checks the CRC and size too
  CHECK(back == prefix + tail);
  // crc32_combine against the direct CRC for a few lengths.
  for (size_t cut : {size_t{0}, size_t{1}, size_t{7}, size_t{100}, tail.size()}) {
    uint32_t a = Gzip::crc32(0, tail.data(), cut), b = Gzip::crc32(0, tail.data() + cut, tail.size() - cut);
    CHECK(Gzip::crc32_combine(a, b, tail.size() - cut) == Gzip::crc32(0, tail.data(), tail.size()));
  }
}
