// synthetic.cpp — see synthetic.h. Prices move in ticks of 0.01 (100 fixed
// point units) like A-shares; the per-tick work is a few integer ops and one
// 288-byte copy so the simulator can drive the publisher past 1 M ticks/s.
#include "synthetic.h"

#include <cstdio>
#include <cstring>
#include <string>

namespace tickfan::apiserver {

namespace {
constexpr int64_t kTick = 100;  // 0.01 in fixed point (4 decimals)

// Display names: a place/brand syllable pair plus an industry, e.g. 华东医药.
const char* const kHead[] = {"华", "中", "东", "海", "国", "金", "天", "新", "长", "大",
                             "恒", "上", "深", "北", "南", "江", "湘", "川", "鲁", "粤"};
const char* const kTail[] = {"银行", "科技", "电子", "医药", "能源", "证券", "地产", "汽车",
                             "化工", "电力", "钢铁", "食品", "传媒", "建工", "物流", "软件"};
constexpr size_t kHeads = sizeof kHead / sizeof kHead[0];
constexpr size_t kTails = sizeof kTail / sizeof kTail[0];

int64_t round_tick(int64_t v) { return (v + kTick / 2) / kTick * kTick; }
}  // namespace

uint64_t SyntheticMarket::rand() {
  // splitmix64: tiny, fast, good enough for a simulator, and seedable.
  uint64_t z = (rng_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

SyntheticMarket::SyntheticMarket(uint32_t symbols, uint64_t seed) : rng_(seed) {
  state_.resize(symbols);
  limit_up_.resize(symbols);
  limit_down_.resize(symbols);
  uint32_t half = (symbols + 1) / 2;
  for (uint32_t i = 0; i < symbols; ++i) {
    Quote& q = state_[i];
    std::memset(static_cast<void*>(&q), 0, sizeof q);
    char sym[24];
    bool sh = i < half;
    std::snprintf(sym, sizeof sym, sh ? "sh%06u" : "sz%06u", sh ? 600000 + i : 1 + (i - half));
    set_symbol(q, sym);
    std::string name = std::string(kHead[i % kHeads]) + kHead[(i / kHeads) % kHeads] + kTail[(i / 7) % kTails];
    set_name(q, name);
    q.mutate_market(sh ? Market::SH : Market::SZ);
    q.mutate_status(TradingStatus::Trading);
    int64_t prev = round_tick(20000 + static_cast<int64_t>(rand() % 780000));  // 2.00 .. 80.00
    q.mutate_prev_close(prev);
    q.mutate_open(prev);
    q.mutate_high(prev);
    q.mutate_low(prev);
    q.mutate_last(prev);
    limit_up_[i] = round_tick(prev * 11 / 10);
    limit_down_[i] = round_tick(prev * 9 / 10);
  }
}

void SyntheticMarket::next(Quote* out, int64_t now_ns) {
  uint32_t i = cursor_;
  cursor_ = cursor_ + 1 == state_.size() ? 0 : cursor_ + 1;
  Quote& q = state_[i];
  uint64_t r = rand();
  // A step of -2..+2 ticks, clamped to the daily limits.
  int64_t last = q.last() + (static_cast<int64_t>(r % 5) - 2) * kTick;
  if (last > limit_up_[i]) last = limit_up_[i];
  if (last < limit_down_[i]) last = limit_down_[i];
  q.mutate_last(last);
  if (last > q.high()) q.mutate_high(last);
  if (last < q.low()) q.mutate_low(last);
  int64_t lots = 1 + static_cast<int64_t>((r >> 8) % 50);
  q.mutate_volume(q.volume() + lots * 100);
  q.mutate_turnover(q.turnover() + lots * 100 * last);
  auto* bids = q.mutable_bids();
  auto* asks = q.mutable_asks();
  for (int k = 0; k < kBookDepth; ++k) {
    uint64_t v = r >> (16 + 8 * k);
    int64_t bid = last - (k + 1) * kTick;
    int64_t ask = last + (k + 1) * kTick;
    bids->GetMutablePointer(k)->mutate_price(bid < limit_down_[i] ? 0 : bid);
    bids->GetMutablePointer(k)->mutate_volume(100 * static_cast<int64_t>(1 + (v & 0x3F)));
    asks->GetMutablePointer(k)->mutate_price(ask > limit_up_[i] ? 0 : ask);
    asks->GetMutablePointer(k)->mutate_volume(100 * static_cast<int64_t>(1 + ((v >> 4) & 0x3F)));
  }
  int64_t ts = now_ns > q.exchange_ts_ns() ? now_ns : q.exchange_ts_ns() + 1;
  q.mutate_exchange_ts_ns(ts);
  q.mutate_receive_ts_ns(now_ns);
  std::memcpy(static_cast<void*>(out), &q, sizeof q);
}

}  // namespace tickfan::apiserver
