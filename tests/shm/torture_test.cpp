// Multi-process torture and crash tests for the store: real processes (fork),
// one writer at full speed, two readers validating every record they read.
//
// Every quote the writer stores carries its own proof of integrity:
//   volume   = a global update counter (never goes backwards per symbol)
//   turnover = check(symbol, volume)         (embedded checksum)
//   last     = 100000 + volume % 5000
// and the record's JSON must be exactly the rendering of that quote. A torn,
// mixed, or other-key value fails at least one of these.
//
// TICKFAN_SOAK_SECONDS=N stretches each phase to N seconds (scripts/soak-store.sh).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "layout.h"
#include "process.h"
#include "store.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::shm;

namespace {

constexpr int kSymbols = 2000;  // seeded; what readers read and validate
constexpr int kExtra = 2000;    // inserted by writers as they run, so some kills land inside an insert

struct Shared {
  std::atomic<uint64_t> next_volume;
  std::atomic<int> next_insert;               // extra symbols claimed so far (kSymbols + n is the next)
  std::atomic<bool> inserted[kExtra];         // set once that extra symbol's upsert returned
  std::atomic<bool> stop;
  std::atomic<uint64_t> reads, retries, undo_reads, bad, not_ok;
  std::atomic<uint64_t> writes;
};

Shared* make_shared_area() {
  void* p = ::mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  REQUIRE(p != MAP_FAILED);
  return new (p) Shared{};
}

std::string symbol_of(int i) { return (i % 2 ? "sz" : "sh") + std::to_string(600000 + i); }

int64_t check_of(std::string_view symbol, int64_t volume) {
  uint64_t h = static_cast<uint64_t>(volume) * 0x9E3779B97F4A7C15ull;
  for (char c : symbol) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return static_cast<int64_t>(h >> 2);
}

Quote test_quote(int i, int64_t volume) {
  std::string sym = symbol_of(i);
  Quote q = tickfan::testing::make_quote(sym, 100000 + volume % 5000, volume);
  q.mutate_turnover(check_of(sym, volume));
  return q;
}

double phase_seconds(double dflt) {
  const char* soak = std::getenv("TICKFAN_SOAK_SECONDS");
  return soak ? std::atof(soak) : dflt;
}

[[noreturn]] void run_writer(const std::string& path, Shared* sh) {
  Status st;
  std::string err;
  auto w = StoreWriter::open(path, WriterOptions{kSymbols + kExtra, 0640}, &st, &err);
  if (!w) {
    std::fprintf(stderr, "writer: %s\n", err.c_str());
    ::_exit(3);
  }
  std::mt19937 rng(static_cast<uint32_t>(::getpid()));
  // Quotes are prepared once and only their counters change, so the writer
  // spends its time inside upsert (where a SIGKILL is most interesting).
  std::vector<Quote> quotes;
  std::vector<std::string> symbols;
  for (int i = 0; i < kSymbols; ++i) {
    quotes.push_back(test_quote(i, 0));
    symbols.push_back(symbol_of(i));
  }
  while (!sh->stop.load(std::memory_order_relaxed)) {
    for (int n = 0; n < 256; ++n) {
      auto v = static_cast<int64_t>(sh->next_volume.fetch_add(1, std::memory_order_relaxed));
      auto i = static_cast<size_t>(rng() % kSymbols);
      Quote& q = quotes[i];
      q.mutate_volume(v);
      q.mutate_last(100000 + v % 5000);
      q.mutate_turnover(check_of(symbols[i], v));
      if (w->upsert(q) != Status::ok) ::_exit(4);
      // One insert per 256 updates: inserts go on across many of the crash
      // test's kills. A writer killed between claiming and inserting leaves
      // that symbol out, which is fine; one whose upsert returned must stay.
      if (n == 0 && sh->next_insert.load(std::memory_order_relaxed) < kExtra) {
        int extra = sh->next_insert.fetch_add(1, std::memory_order_relaxed);
        if (extra < kExtra) {
          if (w->upsert(test_quote(kSymbols + extra, v)) != Status::ok) ::_exit(5);
          sh->inserted[extra].store(true, std::memory_order_release);
        }
      }
    }
    sh->writes.fetch_add(256, std::memory_order_relaxed);
    w->heartbeat();
  }
  w.reset();
  ::_exit(0);
}

[[noreturn]] void run_reader(const std::string& path, Shared* sh, uint32_t seed) {
  Status st;
  std::string err;
  auto r = StoreReader::open(path, &st, &err);
  if (!r) ::_exit(3);
  std::vector<uint64_t> last_version(kSymbols, 0);
  std::vector<int64_t> last_volume(kSymbols, -1);
  std::vector<uint32_t> slot_of(kSymbols, UINT32_MAX);
  std::mt19937 rng(seed);
  char json[kQuoteJsonMax], expect[kQuoteJsonMax];
  uint64_t reads = 0, bad = 0, not_ok = 0, undo_published = 0;
  while (!sh->stop.load(std::memory_order_relaxed)) {
    for (int n = 0; n < 1024; ++n) {
      int i = static_cast<int>(rng() % kSymbols);
      std::string sym = symbol_of(i);
      // Half the reads go through the index, half use a cached slot.
      uint32_t slot = slot_of[i];
      if (slot == UINT32_MAX || (n & 1)) {
        if (r->find(sym, &slot) != Status::ok) {
          ++not_ok;
          continue;
        }
        if (slot_of[i] != UINT32_MAX && slot_of[i] != slot) ++bad;  // a slot never moves
        slot_of[i] = slot;
      }
      Quote q;
      size_t len = 0;
      uint64_t version = 0;
      Status s = r->read(slot, &q, json, &len, &version);
      ++reads;
      if (s != Status::ok) {
        ++not_ok;
        continue;
      }
      bool ok = quote_symbol(q) == sym && q.turnover() == check_of(sym, q.volume()) &&
                q.last() == 100000 + q.volume() % 5000 && version >= last_version[i] && q.volume() >= last_volume[i] &&
                std::string_view(json, len) == std::string_view(expect, render_quote_json(q, expect, sizeof expect));
      if (!ok) {
        if (bad < 5) {
          std::fprintf(
              stderr,
              "BAD READ %s slot %u: symbol %.*s version %llu (last %llu) volume %lld (last %lld) check %d "
              "last %lld json %d\n",
              sym.c_str(), slot, static_cast<int>(quote_symbol(q).size()), quote_symbol(q).data(),
              static_cast<unsigned long long>(version), static_cast<unsigned long long>(last_version[i]),
              static_cast<long long>(q.volume()), static_cast<long long>(last_volume[i]),
              q.turnover() == check_of(sym, q.volume()), static_cast<long long>(q.last()),
              std::string_view(json, len) == std::string_view(expect, render_quote_json(q, expect, sizeof expect)));
        }
        ++bad;
      }
      last_version[i] = version;
      last_volume[i] = q.volume();
    }
    // Published as it grows: the crash test keeps killing until it sees one.
    sh->undo_reads.fetch_add(r->stats().undo_reads - undo_published, std::memory_order_relaxed);
    undo_published = r->stats().undo_reads;
  }
  sh->reads.fetch_add(reads);
  sh->retries.fetch_add(r->stats().retries);
  sh->undo_reads.fetch_add(r->stats().undo_reads - undo_published);
  sh->bad.fetch_add(bad);
  sh->not_ok.fetch_add(not_ok);
  ::_exit(0);
}

pid_t spawn(auto fn) {
  std::fflush(nullptr);  // a child must not inherit (and re-print) buffered output
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) fn();
  return pid;
}

int reap(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  return status;
}

// Creates the store with every symbol present (volume counter starts at 1).
void seed_store(const std::string& path, Shared* sh) {
  Status st;
  std::string err;
  auto w = StoreWriter::open(path, WriterOptions{kSymbols + kExtra, 0640}, &st, &err);
  REQUIRE(w);
  for (int i = 0; i < kSymbols; ++i)
    REQUIRE(w->upsert(test_quote(i, static_cast<int64_t>(sh->next_volume.fetch_add(1)))) == Status::ok);
}

}  // namespace

TEST_CASE("one writer at full speed and two reader processes: zero invalid reads") {
  tickfan::testing::TempDir dir;
  std::string path = dir.file("torture.tfstore");
  Shared* sh = make_shared_area();
  sh->next_volume = 1;
  seed_store(path, sh);
  pid_t writer = spawn([&] { run_writer(path, sh); });
  pid_t r1 = spawn([&] { run_reader(path, sh, 1); });
  pid_t r2 = spawn([&] { run_reader(path, sh, 2); });
  std::this_thread::sleep_for(std::chrono::duration<double>(phase_seconds(3.0)));
  sh->stop = true;
  CHECK(tickfan::testing::exited_with(reap(writer), 0));
  CHECK(tickfan::testing::exited_with(reap(r1), 0));
  CHECK(tickfan::testing::exited_with(reap(r2), 0));
  MESSAGE("writes ", sh->writes.load(), ", reads ", sh->reads.load(), ", retries ", sh->retries.load(), ", bad ",
          sh->bad.load(), ", not ok ", sh->not_ok.load());
  // Enough traffic to mean something even in a TSan build (~20x slower).
  CHECK(sh->reads.load() > 20000);
  CHECK(sh->writes.load() > 20000);
  CHECK(sh->bad.load() == 0);
  CHECK(sh->not_ok.load() == 0);
  Status st;
  std::string err, report;
  auto r = StoreReader::open(path, &st, &err);
  REQUIRE(r);
  CHECK(r->verify(&report) == 0);
}

TEST_CASE("writer SIGKILLed at random moments: readers stay valid, every reopen repairs and verifies clean") {
  tickfan::testing::TempDir dir;
  std::string path = dir.file("crash.tfstore");
  Shared* sh = make_shared_area();
  sh->next_volume = 1;
  seed_store(path, sh);
  pid_t r1 = spawn([&] { run_reader(path, sh, 3); });
  pid_t r2 = spawn([&] { run_reader(path, sh, 4); });
  std::mt19937 rng(12345);
  // At least kKills kills; more (bounded) until a kill has landed inside an
  // update and a reader has been served from the undo copy, so the test
  // cannot pass without exercising the crash path.
  const int kKills = 25, kMaxKills = 200;
  uint64_t repaired = 0, reindexed = 0, bad_after_repair = 0;
  double per_kill_ms = phase_seconds(0) > 0 ? phase_seconds(0) * 1000 / kKills : 0;
  int k = 0;
  for (; k < kKills || ((repaired == 0 || sh->undo_reads.load() == 0) && k < kMaxKills); ++k) {
    uint64_t writes_before = sh->writes.load();
    pid_t writer = spawn([&] { run_writer(path, sh); });
    // Kill it while it writes, not while it is still opening (slow under
    // the sanitizers): wait for its first updates, then a random moment.
    tickfan::testing::wait_until([&] { return sh->writes.load() > writes_before; }, 5000);
    int run_ms = per_kill_ms > 0 ? static_cast<int>(per_kill_ms) : static_cast<int>(rng() % 60);
    std::this_thread::sleep_for(std::chrono::milliseconds(run_ms));
    ::kill(writer, SIGKILL);
    CHECK(tickfan::testing::killed_by(reap(writer), SIGKILL));
    // Readers keep reading against a dead writer for a moment (undo path).
    std::this_thread::sleep_for(std::chrono::milliseconds(20 + rng() % 30));
    Status st;
    std::string err, report;
    auto w = StoreWriter::open(path, WriterOptions{kSymbols + kExtra, 0640}, &st, &err);
    REQUIRE_MESSAGE(w, err);
    repaired += w->stats().repaired_on_open;
    reindexed += w->stats().reindexed_on_open;
    auto r = StoreReader::open(path, &st, &err);
    REQUIRE(r);
    uint32_t bad = r->verify(&report);
    if (bad) MESSAGE(report);
    bad_after_repair += bad;
    // Every seeded symbol and every extra one whose insert returned is
    // present and findable.
    uint32_t expected = 0;
    for (int i = 0; i < kSymbols + kExtra; ++i) {
      if (i >= kSymbols && !sh->inserted[i - kSymbols].load(std::memory_order_acquire)) continue;
      ++expected;
      uint32_t slot = 0;
      if (r->find(symbol_of(i), &slot) != Status::ok) {
        FAIL_CHECK("symbol ", symbol_of(i), " lost after kill ", k);
        break;
      }
    }
    CHECK(r->used() >= expected);
  }
  sh->stop = true;
  CHECK(tickfan::testing::exited_with(reap(r1), 0));
  CHECK(tickfan::testing::exited_with(reap(r2), 0));
  MESSAGE("kills ", k, ", records repaired from undo ", repaired, ", reindexed ", reindexed, ", extra symbols inserted ",
          std::min(sh->next_insert.load(), kExtra), ", reads ", sh->reads.load(), ", retries ", sh->retries.load(),
          ", undo reads ", sh->undo_reads.load(), ", bad ", sh->bad.load(), ", not ok ", sh->not_ok.load());
  CHECK(repaired > 0);
  CHECK(sh->undo_reads.load() > 0);
  CHECK(sh->next_insert.load() > 0);
  CHECK(bad_after_repair == 0);
  CHECK(sh->bad.load() == 0);
  CHECK(sh->not_ok.load() == 0);
  CHECK(sh->reads.load() > 20000);
}
