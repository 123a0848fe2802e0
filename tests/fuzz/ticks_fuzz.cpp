// ticks_fuzz.cpp — feed lines reaching the apiserver: split on '\n' and
// parsed by one LineParser (CSV headers carry over between lines, as in a
// feed), each tick then checked by validate_tick. Properties, for any bytes:
// no crash, hang or sanitizer report; and a tick the apiserver accepts is one
// every apiclient's store accepts too — a validated quote refused by the store
// would be a valid record lost on every front box. Accepted ticks are written
// to a real store and must read back exactly; the store must verify clean.
#include <cstdint>
#include <string>
#include <string_view>

#include "fuzz_store.h"
#include "parse.h"
#include "validate.h"

using namespace tickfan;
using namespace tickfan::apiserver;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  // A fixed clock (2026-01-01) keeps every run of an input the same.
  constexpr int64_t kNow = 1'767'225'600'000'000'000;
  LineParser parser;
  fuzz::FuzzStore& store = fuzz::FuzzStore::get("ticks");
  bool wrote = false;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    Quote q;
    FieldSet present = 0;
    Reject reason{};
    std::string detail;
    if (parser.parse(line, &q, &present, &reason, &detail) != LineKind::tick) continue;
    if (!validate_tick(&q, present, kNow, ValidateLimits{}, &reason, &detail)) continue;
    store.make_room(1);
    shm::Status st = store.writer().upsert(q);
    if (st != shm::Status::ok) {
      fuzz::fail("the store refuses a tick the apiserver accepted",
                 std::string(shm::status_name(st)) + " for line \"" + std::string(line.substr(0, 200)) + "\"");
    }
    store.check_stored(q);
    wrote = true;
  }
  if (wrote) store.check_verifies();
  return 0;
}
