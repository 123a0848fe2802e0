// test_quotes.h — builds realistic quotes for tests in any folder.
#pragma once
#include <string>

#include "quote.h"

namespace tickfan::testing {

// A quote with every field set to a distinct, symbol-derived value so a test
// can tell records apart and spot a field copied from the wrong place.
inline Quote make_quote(std::string_view symbol, int64_t last = 103300, int64_t volume = 1000) {
  Quote q;
  set_symbol(q, symbol);
  set_name(q, "浦发银行");
  q.mutate_market(market_of_symbol(symbol));
  q.mutate_status(TradingStatus::Trading);
  q.mutate_prev_close(102300);
  q.mutate_open(102500);
  q.mutate_high(last > 105000 ? last : 105000);
  q.mutate_low(last < 101000 ? last : 101000);
  q.mutate_last(last);
  q.mutate_volume(volume);
  q.mutate_turnover(volume * last);
  q.mutate_exchange_ts_ns(1732200000123000000LL);
  q.mutate_receive_ts_ns(1732200000124000000LL);
  for (int i = 0; i < kBookDepth; ++i) {
    auto idx = static_cast<flatbuffers::uoffset_t>(i);
    q.mutable_bids()->Mutate(idx, Level(last - 100 * (i + 1), 100 * (i + 1)));
    q.mutable_asks()->Mutate(idx, Level(last + 100 * (i + 1), 200 * (i + 1)));
  }
  return q;
}

}  // namespace tickfan::testing
