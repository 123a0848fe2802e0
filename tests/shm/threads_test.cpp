// One writer thread and reader threads in one process: the case TSan can
// check (the memory-ordering argument of shm/layout.h, instrumented).
#include <doctest/doctest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "process.h"
#include "store.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::shm;

TEST_CASE("readers racing one writer never see a torn or mixed record (threads, TSan)") {
  tickfan::testing::TempDir dir;
  std::string path = dir.file("s.tfstore");
  Status st;
  std::string err;
  auto w = StoreWriter::open(path, WriterOptions{64, 0640}, &st, &err);
  REQUIRE(w);
  const int kSymbols = 16;
  for (int i = 0; i < kSymbols; ++i) w->upsert(tickfan::testing::make_quote("sh60000" + std::to_string(i), 100000, 0));
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> bad{0}, reads{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&] {
      Status rst;
      std::string rerr;
      auto r = StoreReader::open(path, &rst, &rerr);
      REQUIRE(r);
      std::vector<int64_t> last_volume(kSymbols, -1);
      char json[kQuoteJsonMax], expect[kQuoteJsonMax];
      while (!stop.load(std::memory_order_relaxed)) {
        for (uint32_t slot = 0; slot < kSymbols; ++slot) {
          Quote q;
          size_t len = 0;
          if (r->read(slot, &q, json, &len) != Status::ok) {
            bad.fetch_add(1);
            continue;
          }
          // Writer keeps last == 100000 + volume: any mix of two versions breaks it,
          // and the JSON must be the rendering of exactly this quote.
          bool ok =
              q.last() == 100000 + q.volume() % 1000 && q.volume() >= last_volume[slot] &&
              std::string_view(json, len) == std::string_view(expect, render_quote_json(q, expect, sizeof expect));
          if (!ok) bad.fetch_add(1);
          last_volume[slot] = q.volume();
          reads.fetch_add(1, std::memory_order_relaxed);
        }
      }
    });
  }
  for (int64_t v = 1; v <= 200000; ++v) {
    int i = static_cast<int>(v % kSymbols);
    w->upsert(tickfan::testing::make_quote("sh60000" + std::to_string(i), 100000 + v % 1000, v));
  }
  stop = true;
  for (auto& t : readers) t.join();
  MESSAGE("thread reads: ", reads.load(), ", bad: ", bad.load());
  CHECK(bad.load() == 0);
  CHECK(reads.load() > 0);
}
