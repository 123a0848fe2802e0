// body_cache_test.cpp — the list body cache's bounds, in process: a client
// asking for thousands of distinct lists must not make it hold more than
// the byte budget (bodies and keys) or more than kMaxEntries entries.
#include "body_cache.h"

#include <doctest/doctest.h>
#include <libdeflate.h>

#include <string>

#include "gzip.h"

using tickfan::http::BodyCache;

TEST_CASE("the body cache bounds its bytes (keys included) and its entries") {
  const size_t budget = 8u << 20;
  BodyCache cache(budget);
  std::string body(300, 'x');  // a small list
  for (int i = 0; i < 10000; ++i) {
    std::string key = "symbols=sh" + std::to_string(600000 + i);
    REQUIRE(cache.insert(key, 1, 1, body));
    CHECK(cache.bytes() <= budget);
  }
  CHECK(cache.entries() == BodyCache::kMaxEntries);
  // The newest entries are the ones kept; a hit returns the same bytes.
  auto hit = cache.find("symbols=sh609999", 1, 1);
  REQUIRE(hit);
  CHECK(hit->view() == body);
  CHECK_FALSE(cache.find("symbols=sh600000", 1, 1));
  CHECK_FALSE(cache.find("symbols=sh609999", 2, 1));  // another commit: stale
  // The first entry of a new commit drops the older ones (never served again).
  REQUIRE(cache.insert("symbols=sh600001", 2, 1, body));
  CHECK(cache.entries() == 1);
  CHECK(cache.bytes() == body.size() + std::string("symbols=sh600001").size());
  CHECK_FALSE(cache.find("symbols=sh609999", 1, 1));
  REQUIRE(cache.insert("symbols=sh600002", 2, 2, body));  // same count, another store (commit_ns)
  CHECK(cache.entries() == 1);

  // Big bodies: the byte budget binds first.
  BodyCache big(budget);
  std::string large(100 * 1024 + 1, 'y');
  for (int i = 0; i < 200; ++i) REQUIRE(big.insert(std::to_string(i) + "k", 1, 1, large));
  CHECK(big.bytes() <= budget);
  CHECK(big.entries() == budget / (100 * 1024 + 1 + 4));  // the body + a short key each
  // An evicted entry stays valid for the responses still sending it.
  BodyCache one(4096 * 4);
  REQUIRE(one.insert("a", 1, 1, std::string(4000, 'a')));
  auto held = one.find("a", 1, 1);
  REQUIRE(held);
  for (int i = 0; i < 8; ++i) REQUIRE(one.insert("b" + std::to_string(i), 1, 1, std::string(4000, 'b')));
  CHECK_FALSE(one.find("a", 1, 1));
  CHECK(held->view() == std::string(4000, 'a'));
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
  auto d = cache.deflated("q", e, gz, &scratch);
  REQUIRE(d);
  CHECK(cache.compressions() == 1);
  CHECK(cache.bytes() == plain_bytes + d->size);  // charged to the entry
  CHECK(cache.deflated("q", e, gz, &scratch) == d);
  CHECK(cache.compressions() == 1);  // not again
  // Assemble as the server does and decode with libdeflate.
  const std::string prefix = "{\"age_ms\":      17,\"commit\":1,";
  std::string out(Gzip::kHeadLen, '\0');
  Gzip::head(out.data(), prefix.size());
  out += prefix;
  out += d->view();
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
