// schema_bench.cpp — encode and decode (verify + read every field) of a
// 1000-quote batch with the wire's struct Quote vs the same quote as a table
// (quote_table.fbs). Not a test: scripts/bench-schema.sh runs it.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "batch.h"
#include "quote_table_generated.h"

using namespace tickfan;
using Clock = std::chrono::steady_clock;

namespace {
std::vector<Quote> make_quotes(int n) {
  std::vector<Quote> out;
  for (int i = 0; i < n; ++i) {
    Quote q;
    set_symbol(q, "sh" + std::to_string(600000 + i));
    set_name(q, "浦发银行");
    q.mutate_market(Market::SH);
    q.mutate_status(TradingStatus::Trading);
    q.mutate_prev_close(102300 + i);
    q.mutate_open(102500);
    q.mutate_high(105000);
    q.mutate_low(101000);
    q.mutate_last(103300 + i);
    q.mutate_volume(1000 * i);
    q.mutate_turnover(103300LL * 1000 * i);
    q.mutate_exchange_ts_ns(1732200000000000000LL + i);
    q.mutate_receive_ts_ns(1732200000000000000LL + i + 5);
    for (flatbuffers::uoffset_t k = 0; k < 5; ++k) {
      q.mutable_bids()->Mutate(k, Level(103300 - 100 * k, 100 * k));
      q.mutable_asks()->Mutate(k, Level(103400 + 100 * k, 100 * k));
    }
    out.push_back(q);
  }
  return out;
}

template <typename F>
double ns_per_call(F&& f, int iters) {
  auto t0 = Clock::now();
  for (int i = 0; i < iters; ++i) f();
  return std::chrono::duration<double, std::nano>(Clock::now() - t0).count() / iters;
}
}  // namespace

int main() {
  const int kQuotes = 1000, kIters = 2000;
  std::vector<Quote> quotes = make_quotes(kQuotes);
  volatile int64_t sink = 0;

  flatbuffers::FlatBufferBuilder fbb(512 * 1024);
  double struct_encode = ns_per_call(
      [&] {
        encode_batch(fbb, {"bench", 1, 1, wire::BatchKind::Delta, 0}, quotes);
      },
      kIters);
  std::vector<uint8_t> struct_bytes(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
  double struct_decode = ns_per_call(
      [&] {
        const wire::QuoteBatch* b = nullptr;
        verify_batch(struct_bytes.data(), struct_bytes.size(), &b);
        int64_t s = 0;
        for (const Quote* q : *b->quotes()) {
          s += q->last() + q->volume() + q->turnover() + q->high() + q->low() + q->open() + q->prev_close() +
               static_cast<int64_t>(quote_symbol(*q).size() + quote_name(*q).size());
          for (flatbuffers::uoffset_t k = 0; k < 5; ++k) s += q->bids()->Get(k)->price() + q->asks()->Get(k)->volume();
        }
        sink = sink + s;
      },
      kIters);

  flatbuffers::FlatBufferBuilder tb(1024 * 1024);
  auto encode_table = [&] {
    tb.Clear();
    std::vector<flatbuffers::Offset<bench::QuoteT>> offs;
    offs.reserve(quotes.size());
    for (const Quote& q : quotes) {
      auto sym = tb.CreateString(std::string(quote_symbol(q)));
      auto name = tb.CreateString(std::string(quote_name(q)));
      flatbuffers::Offset<bench::LevelT> bl[5], al[5];
      for (flatbuffers::uoffset_t k = 0; k < 5; ++k) {
        bl[k] = bench::CreateLevelT(tb, q.bids()->Get(k)->price(), q.bids()->Get(k)->volume());
        al[k] = bench::CreateLevelT(tb, q.asks()->Get(k)->price(), q.asks()->Get(k)->volume());
      }
      auto bids = tb.CreateVector(bl, 5);
      auto asks = tb.CreateVector(al, 5);
      offs.push_back(bench::CreateQuoteT(tb, sym, name, 1, 2, q.prev_close(), q.open(), q.high(), q.low(), q.last(),
                                         q.volume(), q.turnover(), q.exchange_ts_ns(), q.receive_ts_ns(), bids, asks));
    }
    tb.Finish(bench::CreateQuoteBatchT(tb, tb.CreateVector(offs)));
  };
  double table_encode = ns_per_call(encode_table, kIters);
  std::vector<uint8_t> table_bytes(tb.GetBufferPointer(), tb.GetBufferPointer() + tb.GetSize());
  double table_decode = ns_per_call(
      [&] {
        flatbuffers::Verifier v(table_bytes.data(), table_bytes.size());
        if (!bench::VerifyQuoteBatchTBuffer(v)) std::abort();
        auto* b = bench::GetQuoteBatchT(table_bytes.data());
        int64_t s = 0;
        for (const auto* q : *b->quotes()) {
          s += q->last() + q->volume() + q->turnover() + q->high() + q->low() + q->open() + q->prev_close() +
               static_cast<int64_t>(q->symbol()->size() + q->name()->size());
          for (flatbuffers::uoffset_t k = 0; k < 5; ++k) s += q->bids()->Get(k)->price() + q->asks()->Get(k)->volume();
        }
        sink = sink + s;
      },
      kIters);

  std::printf("| form | bytes / 1000 quotes | encode µs / batch | verify+decode µs / batch |\n|---|---|---|---|\n");
  std::printf("| struct Quote (wire) | %zu | %.1f | %.1f |\n", struct_bytes.size(), struct_encode / 1000,
              struct_decode / 1000);
  std::printf("| table Quote | %zu | %.1f | %.1f |\n", table_bytes.size(), table_encode / 1000, table_decode / 1000);
  std::printf("\nratios table/struct: size %.2f, encode %.2f, verify+decode %.2f\n",
              static_cast<double>(table_bytes.size()) / struct_bytes.size(), table_encode / struct_encode,
              table_decode / struct_decode);
  return 0;
}
