// synthetic.h — a built-in market simulator for demos, tests and benchmarks:
// N A-share style symbols (sh600000.., sz000001..) with display names, each a
// random walk from its previous close inside the ±10% daily limit, with
// growing volume/turnover and a plausible five-level book.
//
// Deterministic: the same seed gives the same sequence of quote values (only
// the timestamps, taken from the caller's clock, differ between runs).
#pragma once
#include <cstdint>
#include <vector>

#include "quote.h"

namespace tickfan::apiserver {

class SyntheticMarket {
 public:
  SyntheticMarket(uint32_t symbols, uint64_t seed);
  // Writes the next tick (symbols in round-robin order) into *out with
  // exchange/receive timestamps `now_ns` (kept strictly increasing per symbol).
  void next(Quote* out, int64_t now_ns);
  uint32_t symbols() const { return static_cast<uint32_t>(state_.size()); }
  // The current quote of symbol i (for tests).
  const Quote& quote(uint32_t i) const { return state_[i]; }

 private:
  uint64_t rand();
  std::vector<Quote> state_;
  std::vector<int64_t> limit_up_, limit_down_;
  uint32_t cursor_ = 0;
  uint64_t rng_;
};

}  // namespace tickfan::apiserver
