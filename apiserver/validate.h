// validate.h — cross-field rules and normalisation applied to every parsed
// tick before it may reach arbitration. A tick either comes out normalised
// (market filled from the symbol, missing open/high/low taken from last,
// status defaulted to trading) or is refused with one Reject reason.
#pragma once
#include <cstdint>
#include <string>

#include "parse.h"

namespace tickfan::apiserver {

struct ValidateLimits {
  // How far ahead of our wall clock an exchange timestamp may be: clocks of
  // feed handlers drift, but a tick from the future would block every real
  // update of its symbol (stale check) until the clock catches up.
  int64_t max_future_ns = 5'000'000'000;
};

// Returns true when *q is acceptable (and normalises it in place); otherwise
// sets *reason and *detail.
bool validate_tick(Quote* q, FieldSet present, int64_t now_ns, const ValidateLimits& limits, Reject* reason,
                   std::string* detail);

}  // namespace tickfan::apiserver
