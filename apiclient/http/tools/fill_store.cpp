// fill_store.cpp — tickfan-http-fill: a stand-in writer for benchmarks and
// manual runs of the HTTP frontend without NATS. Creates (or reopens) a store,
// writes N synthetic symbols (sh600000.., sz000001..), commits, then keeps
// updating a few per tick at --rate updates/s until SIGTERM. It is a real
// StoreWriter, so killing it is "the writer died".
#include <CLI/CLI.hpp>
#include <csignal>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "cli_checks.h"
#include "clock.h"
#include "quote.h"
#include "store.h"

namespace {
volatile std::sig_atomic_t g_stop = 0;
void on_signal(int) { g_stop = 1; }

tickfan::Quote make(const std::string& sym, uint32_t i, uint64_t tick) {
  tickfan::Quote q;
  tickfan::set_symbol(q, sym);
  tickfan::set_name(q, i % 2 ? "浦发银行" : "平安银行");
  q.mutate_market(tickfan::market_of_symbol(sym));
  q.mutate_status(tickfan::TradingStatus::Trading);
  int64_t prev = 100000 + static_cast<int64_t>(i % 997) * 37;
  int64_t last = prev + static_cast<int64_t>((i * 7919 + tick * 13) % 2001) - 1000;
  q.mutate_prev_close(prev);
  q.mutate_open(prev + 10);
  q.mutate_high(std::max(last, prev) + 50);
  q.mutate_low(std::min(last, prev) - 50);
  q.mutate_last(last);
  q.mutate_volume(static_cast<int64_t>((i * 104729 + tick) % 10000000));
  q.mutate_turnover(q.volume() * last);
  int64_t now = tickfan::wall_ns();
  q.mutate_exchange_ts_ns(now);
  q.mutate_receive_ts_ns(now);
  for (int k = 0; k < tickfan::kBookDepth; ++k) {
    auto idx = static_cast<flatbuffers::uoffset_t>(k);
    q.mutable_bids()->Mutate(idx, tickfan::Level(last - 10 * (k + 1), 100 * (k + 1)));
    q.mutable_asks()->Mutate(idx, tickfan::Level(last + 10 * (k + 1), 200 * (k + 1)));
  }
  return q;
}
}  // namespace

int main(int argc, char** argv) {
  std::string path;
  uint32_t symbols = 5000;
  uint32_t rate = 1000;
  bool once = false;
  CLI::App app{"tickfan-http-fill: synthetic store writer for benchmarks"};
  app.add_option("--store", path, "store file")->required();
  // Bounded: --rate 4000000000 wrote 400 million quotes per 100 ms tick and
  // so never saw SIGTERM (stop is checked between quotes now too), and
  // --symbols 3000000000 (its capacity, twice that, wrapped in 32 bits) spent
  // minutes building the symbol list, deaf to SIGTERM. A million symbols is
  // a 2-million-record store, about 2 GB of tmpfs.
  app.add_option("--symbols", symbols, "symbols to write (half sh, half sz)")
      ->check(CLI::Range(1u, 1'000'000u))
      ->capture_default_str();
  app.add_option("--rate", rate, "updates per second after the initial fill (0: none)")
      ->check(CLI::Range(0u, 10'000'000u))
      ->capture_default_str();
  app.add_flag("--once", once, "fill, commit and exit");
  if (int rc = tickfan::parse_command_line(app, argc, argv); rc >= 0) return rc;
  std::signal(SIGTERM, on_signal);
  std::signal(SIGINT, on_signal);
  tickfan::shm::WriterOptions wo;
  wo.capacity = std::max<uint32_t>(symbols * 2, 1024);
  tickfan::shm::Status st;
  std::string err;
  auto w = tickfan::shm::StoreWriter::open(path, wo, &st, &err);
  if (!w) {
    fprintf(stderr, "tickfan-http-fill: %s\n", err.c_str());
    return 1;
  }
  std::vector<std::string> syms;
  for (uint32_t i = 0; i < symbols; ++i) {
    char b[16];
    snprintf(b, sizeof b, i % 2 ? "sz%06u" : "sh%06u", i % 2 ? i / 2 + 1 : 600000 + i / 2);
    syms.emplace_back(b);
  }
  uint64_t seq = 1;
  for (uint32_t i = 0; i < symbols && !g_stop; ++i) w->upsert(make(syms[i], i, 0));
  w->set_sync_state(tickfan::shm::SyncState::live, 0, 0);
  w->commit(1, seq++);
  fprintf(stderr, "tickfan-http-fill: %u symbols in %s\n", symbols, path.c_str());
  if (once) return 0;
  uint64_t tick = 1;
  uint32_t cursor = 0;
  while (!g_stop) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    uint32_t n = rate / 10;
    for (uint32_t k = 0; k < n && !g_stop; ++k, cursor = (cursor + 1) % symbols)
      w->upsert(make(syms[cursor], cursor, tick));
    if (n) w->commit(1, seq++);
    w->heartbeat();
    ++tick;
  }
  return 0;
}
