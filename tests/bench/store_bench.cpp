// store_bench.cpp — the store against LMDB and against a bare seqlock array,
// same work, same run, real processes (not a test; scripts/bench-store.sh).
//
// For each symbol count and writer rate, one writer process updates random
// symbols while 1 or 2 reader processes do random point reads of a 288-byte
// quote for D seconds per system, in 5 slices taken in turn with the other
// systems (the ratios are the medians of the slices' ratios):
//   tickfan  StoreReader::find(symbol) + read_quote; the writer applies the
//            updates as apiclient does: apply_batch of 64 quotes (each upsert
//            renders the record's JSON), one commit per batch
//   lmdb     mdb_get by symbol in a reset/renewed read txn (LMDB's fastest
//            read mode); writer one put per txn, MDB_WRITEMAP|MDB_NOSYNC
//   array    the limit: seqlock memcpy by array index, no lookup, no JSON
// Every read is validated (embedded checksum); bad reads are counted.
// `store_bench --parts [seconds] [dir]` splits one read by symbol, then one
// update, into their pieces instead (read_parts, write_parts below).
#include <lmdb.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "clock.h"
#include "layout.h"
#include "store.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::shm;

namespace {

struct Shared {
  std::atomic<bool> stop;
  std::atomic<bool> go;
  std::atomic<uint64_t> writes;
  std::atomic<uint64_t> reads[2];
  std::atomic<uint64_t> bad;
};

std::string symbol_of(int i) { return (i % 2 ? "sz" : "sh") + std::to_string(600000 + i); }

// symbol_of(i) written into `buf` (i < 400 000), for the readers: a request
// carries its symbol's text, so the readers make it from i in a register
// instead of loading it from a table of strings, whose own cache miss would
// sit in front of every lookup by symbol (tickfan, LMDB) and not of the
// array's read by index.
std::string_view symbol_text(int i, char* buf) {
  buf[0] = 's';
  buf[1] = i % 2 ? 'z' : 'h';
  unsigned v = 600000u + static_cast<unsigned>(i);
  for (int d = 7; d >= 2; --d, v /= 10) buf[d] = static_cast<char>('0' + v % 10);
  return std::string_view(buf, 8);
}

int64_t check_of(std::string_view symbol, int64_t volume) {
  uint64_t h = static_cast<uint64_t>(volume) * 0x9E3779B97F4A7C15ull;
  for (char c : symbol) h = (h ^ static_cast<uint8_t>(c)) * 0x100000001B3ull;
  return static_cast<int64_t>(h >> 2);
}

// The tests' realistic quote, carrying the embedded checksum every read verifies.
Quote quote_of(const std::string& sym, int64_t volume) {
  Quote q = tickfan::testing::make_quote(sym, 100000 + volume % 5000, volume);
  q.mutate_turnover(check_of(sym, volume));
  return q;
}

bool valid(const Quote& q, std::string_view sym) {
  return quote_symbol(q) == sym && q.turnover() == check_of(sym, q.volume());
}

// --- the three systems ------------------------------------------------------

// Bare reference: an array of seqlocked 288-byte quotes, by index.
struct alignas(64) ArrayRecord {
  std::atomic<uint64_t> seq;
  uint64_t pad[3];
  Quote quote;
};

struct System {
  virtual ~System() = default;
  virtual void create(const std::string& dir, int n) = 0;
  // Runs in the writer process.
  virtual void open_writer() = 0;
  virtual void write(int i, const Quote& q) = 0;
  // The writer loop hands over 64 updates at a time; one write each unless
  // the system has a batch path.
  virtual void write_batch(const int* idx, const Quote* qs, int n) {
    for (int j = 0; j < n; ++j) write(idx[j], qs[j]);
  }
  // Runs in a reader process.
  virtual void open_reader() = 0;
  virtual bool read(int i, std::string_view sym, Quote* out) = 0;
};

struct TickfanSystem : System {
  std::string path;
  std::unique_ptr<StoreWriter> w;
  std::unique_ptr<StoreReader> r;
  void create(const std::string& dir, int n) override {
    path = dir + "/bench.tfstore";
    Status st;
    std::string err;
    auto cw = StoreWriter::open(path, WriterOptions{static_cast<uint32_t>(n), 0640}, &st, &err);
    for (int i = 0; i < n; ++i) cw->upsert(quote_of(symbol_of(i), 0));
  }
  void open_writer() override {
    Status st;
    std::string err;
    w = StoreWriter::open(path, WriterOptions{}, &st, &err);
  }
  void write(int, const Quote& q) override { w->upsert(q); }
  void write_batch(const int*, const Quote* qs, int n) override {
    w->apply_batch(std::span<const Quote>(qs, static_cast<size_t>(n)), 1, ++batches);
  }
  uint64_t batches = 0;
  void open_reader() override {
    Status st;
    std::string err;
    r = StoreReader::open(path, &st, &err);
  }
  bool read(int, std::string_view sym, Quote* out) override {
    uint32_t slot;
    return r->find(sym, &slot) == Status::ok && r->read_quote(slot, out) == Status::ok;
  }
};

struct LmdbSystem : System {
  std::string dir;
  MDB_env* env = nullptr;
  MDB_dbi dbi = 0;
  MDB_txn* rtxn = nullptr;
  void open_env() {
    mdb_env_create(&env);
    mdb_env_set_mapsize(env, size_t{4} << 30);
    mdb_env_set_maxreaders(env, 16);
    int rc = mdb_env_open(env, dir.c_str(), MDB_WRITEMAP | MDB_NOSYNC | MDB_NOTLS, 0644);
    if (rc) {
      std::fprintf(stderr, "lmdb open: %s\n", mdb_strerror(rc));
      std::exit(1);
    }
    MDB_txn* t;
    mdb_txn_begin(env, nullptr, 0, &t);
    mdb_dbi_open(t, nullptr, 0, &dbi);
    mdb_txn_commit(t);
  }
  void put(const std::string& sym, const Quote& q) {
    MDB_txn* t;
    mdb_txn_begin(env, nullptr, 0, &t);
    MDB_val k{sym.size(), const_cast<char*>(sym.data())};
    MDB_val v{sizeof(Quote), const_cast<Quote*>(&q)};
    mdb_put(t, dbi, &k, &v, 0);
    mdb_txn_commit(t);
  }
  void create(const std::string& d, int n) override {
    dir = d + "/lmdb";
    std::filesystem::create_directories(dir);
    open_env();
    MDB_txn* t;
    mdb_txn_begin(env, nullptr, 0, &t);
    for (int i = 0; i < n; ++i) {
      std::string sym = symbol_of(i);
      Quote q = quote_of(sym, 0);
      MDB_val k{sym.size(), sym.data()};
      MDB_val v{sizeof(Quote), &q};
      mdb_put(t, dbi, &k, &v, 0);
    }
    mdb_txn_commit(t);
    mdb_env_close(env);
    env = nullptr;
  }
  void open_writer() override { open_env(); }
  void write(int, const Quote& q) override { put(std::string(quote_symbol(q)), q); }
  void open_reader() override {
    open_env();
    mdb_txn_begin(env, nullptr, MDB_RDONLY, &rtxn);
    mdb_txn_reset(rtxn);
  }
  bool read(int, std::string_view sym, Quote* out) override {
    mdb_txn_renew(rtxn);
    MDB_val k{sym.size(), const_cast<char*>(sym.data())};
    MDB_val v;
    bool ok = mdb_get(rtxn, dbi, &k, &v) == 0 && v.mv_size == sizeof(Quote);
    if (ok) std::memcpy(static_cast<void*>(out), v.mv_data, sizeof(Quote));
    mdb_txn_reset(rtxn);
    return ok;
  }
};

struct ArraySystem : System {
  ArrayRecord* recs = nullptr;
  void create(const std::string&, int n) override {
    // Anonymous shared memory, inherited by the forked writer and readers.
    void* p = mmap(nullptr, sizeof(ArrayRecord) * n, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    recs = static_cast<ArrayRecord*>(p);
    for (int i = 0; i < n; ++i) {
      Quote q = quote_of(symbol_of(i), 0);
      std::memcpy(static_cast<void*>(&recs[i].quote), &q, sizeof q);
    }
  }
  void open_writer() override {}
  void write(int i, const Quote& q) override {
    ArrayRecord& r = recs[i];
    uint64_t s = r.seq.load(std::memory_order_relaxed);
    r.seq.store(s + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    layout::store_words(&r.quote, &q, sizeof(Quote) / 8);
    r.seq.store(s + 2, std::memory_order_release);
  }
  void open_reader() override {}
  bool read(int i, std::string_view, Quote* out) override {
    const ArrayRecord& r = recs[i];
    for (;;) {
      uint64_t s1 = r.seq.load(std::memory_order_acquire);
      if (s1 & 1) continue;
      layout::load_words(out, &r.quote, sizeof(Quote) / 8);
      std::atomic_thread_fence(std::memory_order_acquire);
      if (r.seq.load(std::memory_order_relaxed) == s1) return true;
    }
  }
};

struct Result {
  double reads_per_proc;
  double writes;
  uint64_t bad;
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

// The writer's loop, shared by the runs and --parts: 64 random symbols at a
// time, each a new version of its quote (volume and the embedded checksum
// change), handed to the system as one batch; paced to `rate` updates/s when
// rate > 0. stop(updates done so far) is asked after each batch; returns the
// number of updates done when it said yes.
// Each quote is made from symbol i's text and one of two templates (the
// quotes differ only in symbol and market), in a buffer the loop keeps hot,
// as apiclient's come out of a NATS message it has just read. A table of
// 100 000 quotes to copy from added a cache miss per update that no real
// writer has: the loop alone took 72 ns per update with it at 100 000
// symbols, 25 ns without (2026-11-22).
template <typename Stop>
uint64_t write_loop(System& sys, int n, double rate, Stop stop) {
  const Quote templates[2] = {quote_of(symbol_of(0), 0), quote_of(symbol_of(1), 0)};
  std::mt19937 rng(7);
  int64_t start = mono_ns();
  uint64_t done = 0;
  int64_t volume = 1;
  int idx[64];
  char sym_buf[8];
  std::vector<Quote> batch(64);
  while (!stop(done)) {
    for (int k = 0; k < 64; ++k) {
      int i = static_cast<int>(rng() % n);
      std::string_view sym = symbol_text(i, sym_buf);
      Quote& q = batch[k];
      q = templates[i % 2];
      set_symbol(q, sym);
      q.mutate_volume(volume);
      q.mutate_turnover(check_of(sym, volume));
      ++volume;
      idx[k] = i;
    }
    sys.write_batch(idx, batch.data(), 64);
    done += 64;
    if (rate > 0) {
      // Paced: sleep until this many updates are due.
      int64_t due = start + static_cast<int64_t>(done / rate * 1e9);
      int64_t now = mono_ns();
      if (due > now) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now));
    }
  }
  return done;
}

Result run(System& sys, int n, int readers, double rate, double seconds) {
  auto* sh =
      static_cast<Shared*>(mmap(nullptr, sizeof(Shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  new (sh) Shared{};
  std::vector<pid_t> pids;
  pid_t writer = fork();
  if (writer == 0) {
    sys.open_writer();
    while (!sh->go.load()) {
    }
    write_loop(sys, n, rate, [&](uint64_t done) {
      sh->writes.store(done, std::memory_order_relaxed);
      return sh->stop.load(std::memory_order_relaxed);
    });
    _exit(0);
  }
  for (int r = 0; r < readers; ++r) {
    pid_t pid = fork();
    if (pid == 0) {
      sys.open_reader();
      std::mt19937 rng(100 + r);
      uint64_t reads = 0, bad = 0;
      Quote q;
      char sym_buf[8];
      while (!sh->go.load()) {
      }
      while (!sh->stop.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 256; ++k) {
          int i = static_cast<int>(rng() % n);
          std::string_view sym = symbol_text(i, sym_buf);
          if (!sys.read(i, sym, &q) || !valid(q, sym)) ++bad;
        }
        reads += 256;
        sh->reads[r].store(reads, std::memory_order_relaxed);
      }
      sh->bad += bad;
      _exit(0);
    }
    pids.push_back(pid);
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // let everyone open
  sh->go = true;
  // Counted from 100 ms after the start: each run's processes are new, and
  // their first page faults and cold caches (LMDB's writer grows its file
  // at first) are no part of a steady state, which short slices would
  // otherwise overweight.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  auto reads_now = [&] {
    uint64_t total = 0;
    for (int r = 0; r < readers; ++r) total += sh->reads[r].load();
    return total;
  };
  const uint64_t reads0 = reads_now(), writes0 = sh->writes.load();
  const int64_t t0 = mono_ns();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  const uint64_t reads1 = reads_now(), writes1 = sh->writes.load();
  const double window = static_cast<double>(mono_ns() - t0) / 1e9;
  sh->stop = true;
  waitpid(writer, nullptr, 0);
  for (pid_t p : pids) waitpid(p, nullptr, 0);
  Result res;
  res.reads_per_proc = static_cast<double>(reads1 - reads0) / readers / window;
  res.writes = static_cast<double>(writes1 - writes0) / window;
  res.bad = sh->bad.load();
  munmap(sh, sizeof(Shared));
  return res;
}

// --parts: where a read by symbol's time goes. One process, no writer, the
// readers' loop above with one piece at a time. "find, then read" is the
// real thing (the record's address waits for the index entry); "find beside
// read" reads the same record by its known slot, so the two run in parallel:
// the gap between them is the cost of the dependency, not of the work.
template <typename Read>
double reads_per_s(int n, double seconds, Read read) {
  std::mt19937 rng(100);
  Quote q;
  char sym_buf[8];
  uint64_t reads = 0, bad = 0;
  int64_t start = mono_ns(), end = start + static_cast<int64_t>(seconds * 1e9);
  while (mono_ns() < end) {
    for (int k = 0; k < 256; ++k) {
      int i = static_cast<int>(rng() % n);
      std::string_view sym = symbol_text(i, sym_buf);
      if (!read(i, sym, &q)) ++bad;
    }
    reads += 256;
  }
  if (bad) std::printf("(%llu bad reads)\n", static_cast<unsigned long long>(bad));
  return static_cast<double>(reads) / (static_cast<double>(mono_ns() - start) / 1e9);
}

void read_parts(double seconds, const std::string& base) {
  std::printf("| symbols | array by index | tickfan by slot | find only | find, then read | find beside read |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int n : {5000, 100000}) {
    std::string dir = base + "/tickfan-bench-" + std::to_string(getpid());
    std::filesystem::create_directories(dir);
    TickfanSystem t;
    t.create(dir, n);  // symbol i in slot i
    t.open_reader();
    ArraySystem a;
    a.create(dir, n);
    const StoreReader& r = *t.r;
    double m[5];
    m[0] = reads_per_s(n, seconds,
                       [&](int i, std::string_view sym, Quote* q) { return a.read(i, sym, q) && valid(*q, sym); });
    m[1] = reads_per_s(n, seconds, [&](int i, std::string_view sym, Quote* q) {
      return r.read_quote(static_cast<uint32_t>(i), q) == Status::ok && valid(*q, sym);
    });
    m[2] = reads_per_s(n, seconds, [&](int i, std::string_view sym, Quote*) {
      uint32_t slot;
      return r.find(sym, &slot) == Status::ok && slot == static_cast<uint32_t>(i);
    });
    m[3] = reads_per_s(n, seconds, [&](int, std::string_view sym, Quote* q) {
      uint32_t slot;
      return r.find(sym, &slot) == Status::ok && r.read_quote(slot, q) == Status::ok && valid(*q, sym);
    });
    m[4] = reads_per_s(n, seconds, [&](int i, std::string_view sym, Quote* q) {
      uint32_t slot;
      return r.find(sym, &slot) == Status::ok && r.read_quote(static_cast<uint32_t>(i), q) == Status::ok &&
             valid(*q, sym);
    });
    std::printf("| %d | %.1f M/s | %.1f M/s | %.1f M/s | %.1f M/s (%.2f of the array) | %.1f M/s |\n", n, m[0] / 1e6,
                m[1] / 1e6, m[2] / 1e6, m[3] / 1e6, m[3] / m[0], m[4] / 1e6);
    std::fflush(stdout);
    std::filesystem::remove_all(dir);
  }
}

// The writer's side of --parts: one process, no reader, the writers' loop
// above timed with four "systems": the loop alone (it makes each batch),
// render_quote_json of each quote and nothing else, tickfan's apply_batch,
// LMDB's put per txn. Each one's cost per update is its time minus the
// loop's: how much of an update is the JSON rendering, and what the rest
// costs. LMDB's writer runs several times faster here than beside a reader
// process: the target's ratio is the runs' above, not this one.
struct LoopOnly : System {
  void create(const std::string&, int) override {}
  void open_writer() override {}
  void write(int, const Quote& q) override { sink += q.volume(); }
  void open_reader() override {}
  bool read(int, std::string_view, Quote*) override { return false; }
  int64_t sink = 0;
};
struct RenderOnly : LoopOnly {
  void write(int, const Quote& q) override { sink += static_cast<int64_t>(render_quote_json(q, json, sizeof json)); }
  char json[kQuoteJsonMax];
};

double ns_per_update(System& sys, int n, double seconds) {
  int64_t start = mono_ns(), end = start + static_cast<int64_t>(seconds * 1e9);
  uint64_t done = write_loop(sys, n, 0, [&](uint64_t) { return mono_ns() >= end; });
  return static_cast<double>(mono_ns() - start) / static_cast<double>(done);
}

void write_parts(double seconds, const std::string& base) {
  std::printf(
      "| symbols | loop alone | render only | tickfan update | of it, not render | lmdb put+commit, no reader |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (int n : {5000, 100000}) {
    std::string dir = base + "/tickfan-bench-" + std::to_string(getpid());
    std::filesystem::create_directories(dir);
    LoopOnly loop;
    RenderOnly render;
    TickfanSystem t;
    t.create(dir, n);
    t.open_writer();
    LmdbSystem l;
    l.create(dir, n);
    l.open_writer();
    double base_ns = ns_per_update(loop, n, seconds);
    double render_ns = ns_per_update(render, n, seconds) - base_ns;
    double tickfan_ns = ns_per_update(t, n, seconds) - base_ns;
    double lmdb_ns = ns_per_update(l, n, seconds) - base_ns;
    std::printf("| %d | %.0f ns | %.0f ns | %.0f ns | %.0f ns | %.0f ns |\n", n, base_ns, render_ns, tickfan_ns,
                tickfan_ns - render_ns, lmdb_ns);
    std::fflush(stdout);
    t.w.reset();
    mdb_env_close(l.env);
    std::filesystem::remove_all(dir);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::strcmp(argv[1], "--parts") == 0) {
    read_parts(argc > 2 ? std::atof(argv[2]) : 1.0, argc > 3 ? argv[3] : "/dev/shm");
    std::printf("\n");
    write_parts(argc > 2 ? std::atof(argv[2]) : 1.0, argc > 3 ? argv[3] : "/dev/shm");
    return 0;
  }
  double seconds = argc > 1 ? std::atof(argv[1]) : 2.0;
  std::string base = argc > 2 ? argv[2] : "/dev/shm";
  std::printf("| symbols | writer | readers | system | reads/s per reader | writer updates/s | bad reads |\n");
  std::printf("|---|---|---|---|---|---|---|\n");
  std::vector<std::string> ratios;
  for (int n : {5000, 100000}) {
    for (double rate : {100000.0, 0.0}) {
      for (int readers : {1, 2}) {
        // The three systems take turns in kSlices slices of seconds/kSlices
        // each (tickfan, lmdb, array, tickfan, ...), and each ratio is the
        // median of the slices' own ratios: a busy moment on this shared
        // host then lands on all three, not on whichever ran in it.
        constexpr int kSlices = 5;
        const char* names[3] = {"tickfan", "lmdb", "array"};
        std::unique_ptr<System> systems[3] = {std::make_unique<TickfanSystem>(), std::make_unique<LmdbSystem>(),
                                              std::make_unique<ArraySystem>()};
        std::string dirs[3];
        for (int s = 0; s < 3; ++s) {
          dirs[s] = base + "/tickfan-bench-" + std::to_string(getpid()) + "-" + names[s];
          std::filesystem::remove_all(dirs[s]);
          std::filesystem::create_directories(dirs[s]);
          systems[s]->create(dirs[s], n);
        }
        Result total[3] = {};
        std::vector<double> reads_lmdb, reads_array, writes_lmdb;
        for (int slice = 0; slice < kSlices; ++slice) {
          Result res[3];
          for (int s = 0; s < 3; ++s) {
            res[s] = run(*systems[s], n, readers, rate, seconds / kSlices);
            total[s].reads_per_proc += res[s].reads_per_proc / kSlices;
            total[s].writes += res[s].writes / kSlices;
            total[s].bad += res[s].bad;
          }
          reads_lmdb.push_back(res[0].reads_per_proc / res[1].reads_per_proc);
          reads_array.push_back(res[0].reads_per_proc / res[2].reads_per_proc);
          writes_lmdb.push_back(res[1].writes > 0 ? res[0].writes / res[1].writes : 0.0);
        }
        for (int s = 0; s < 3; ++s) {
          std::filesystem::remove_all(dirs[s]);
          std::printf("| %d | %s | %d | %s | %.0f | %.0f | %llu |\n", n, rate > 0 ? "100k/s" : "full speed", readers,
                      names[s], total[s].reads_per_proc, total[s].writes,
                      static_cast<unsigned long long>(total[s].bad));
        }
        std::fflush(stdout);
        char line[256];
        std::snprintf(line, sizeof line, "| %d | %s | %d | %.2f | %.2f | %.2f |", n, rate > 0 ? "100k/s" : "full speed",
                      readers, median(reads_lmdb), median(reads_array), median(writes_lmdb));
        ratios.push_back(line);
      }
    }
  }
  std::printf("\nRatios, each the median over the cell's alternating slices:\n\n");
  std::printf("| symbols | writer | readers | reads tickfan/lmdb | reads tickfan/array | writes tickfan/lmdb |\n");
  std::printf("|---|---|---|---|---|---|\n");
  for (const auto& l : ratios) std::printf("%s\n", l.c_str());
  return 0;
}
