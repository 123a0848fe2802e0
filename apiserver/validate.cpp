// validate.cpp — see validate.h. Checks are ordered from "identity" to
// "values" so the reported reason is the most fundamental one.
#include "validate.h"

namespace tickfan::apiserver {

bool validate_tick(Quote* q, FieldSet present, int64_t now_ns, const ValidateLimits& limits, Reject* reason,
                   std::string* detail) {
  auto fail = [&](Reject r, const char* what) {
    *reason = r;
    *detail = what;
    return false;
  };
  if (!(present & bit(Field::symbol))) return fail(Reject::missing_field, "symbol");
  if (!(present & bit(Field::last))) return fail(Reject::missing_field, "last");
  if (!(present & bit(Field::prev_close))) return fail(Reject::missing_field, "prev_close");
  if (!(present & (bit(Field::ts) | bit(Field::ts_ns)))) return fail(Reject::missing_field, "ts");

  Market implied = market_of_symbol(quote_symbol(*q));
  if (present & bit(Field::market)) {
    if (implied != Market::Unknown && implied != q->market())
      return fail(Reject::bad_market, "market contradicts symbol");
  } else {
    if (implied == Market::Unknown) return fail(Reject::bad_market, "no market and none implied by the symbol");
    q->mutate_market(implied);
  }
  if (!(present & bit(Field::status))) q->mutate_status(TradingStatus::Trading);

  // Normalisation: a feed that only sends last still yields a sane day range.
  if (!(present & bit(Field::open))) q->mutate_open(q->last());
  if (!(present & bit(Field::high))) q->mutate_high(q->last());
  if (!(present & bit(Field::low))) q->mutate_low(q->last());

  if (q->prev_close() < 0 || q->open() < 0 || q->high() < 0 || q->low() < 0 || q->last() < 0) {
    return fail(Reject::negative_price, "price");
  }
  if (q->volume() < 0 || q->turnover() < 0) return fail(Reject::negative_volume, "volume/turnover");
  for (int i = 0; i < kBookDepth; ++i) {
    const Level* b = q->bids()->Get(i);
    const Level* a = q->asks()->Get(i);
    if (b->price() < 0 || a->price() < 0) return fail(Reject::negative_price, "book level");
    if (b->volume() < 0 || a->volume() < 0) return fail(Reject::negative_volume, "book level");
  }
  // A zero price means "no trade yet" (pre-open, suspended); range checks
  // only apply to real prices.
  if (q->high() > 0 && q->low() > 0) {
    if (q->high() < q->low()) return fail(Reject::high_below_low, "high < low");
    if (q->last() > 0 && (q->last() < q->low() || q->last() > q->high())) {
      return fail(Reject::last_out_of_range, "last outside [low, high]");
    }
  }
  if (q->exchange_ts_ns() <= 0) return fail(Reject::bad_timestamp, "ts");
  if (q->exchange_ts_ns() > now_ns + limits.max_future_ns) return fail(Reject::future_timestamp, "ts");
  return true;
}

}  // namespace tickfan::apiserver
