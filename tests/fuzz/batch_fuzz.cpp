// batch_fuzz.cpp — a NATS payload reaching the apiclient: aligned the way the
// daemon aligns it, verified as a QuoteBatch, and, when it verifies, applied
// to a real store with the batch path the apiclient uses (apply_batch).
// Properties, for any bytes: no crash, hang or sanitizer report; a payload
// the verifier rejects is never read further; every quote the store accepts
// reads back byte for byte (the last accepted one of each symbol), and the
// store verifies clean afterwards (checksums, JSON = its quote's rendering).
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "batch.h"
#include "fuzz_store.h"

using namespace tickfan;

namespace {
struct Outcome {
  std::vector<shm::Status> status;
};
void observe(void* context, size_t index, shm::Status status) {
  static_cast<Outcome*>(context)->status[index] = status;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::vector<uint64_t> scratch;
  const void* aligned = aligned_payload(data, size, scratch);
  const wire::QuoteBatch* batch = nullptr;
  if (verify_batch(aligned, size, &batch) != BatchError::ok) return 0;
  const auto* vec = batch->quotes();
  if (vec == nullptr || vec->size() == 0) return 0;
  // Read in place, as the apiclient's applier does (a verified, aligned buffer).
  std::span<const Quote> quotes(reinterpret_cast<const Quote*>(vec->Data()), vec->size());

  fuzz::FuzzStore& store = fuzz::FuzzStore::get("batch");
  store.make_room(static_cast<uint32_t>(quotes.size()));
  Outcome out{std::vector<shm::Status>(quotes.size(), shm::Status::busy)};
  store.writer().apply_batch(quotes, batch->epoch(), batch->sequence(), nullptr, &observe, &out);

  std::unordered_map<std::string, size_t> last_accepted;
  for (size_t i = 0; i < quotes.size(); ++i) {
    if (out.status[i] == shm::Status::busy) fuzz::fail("quote not reported to the observer", std::to_string(i));
    if (out.status[i] == shm::Status::ok) last_accepted[std::string(quote_symbol(quotes[i]))] = i;
  }
  for (const auto& [symbol, i] : last_accepted) store.check_stored(quotes[i]);
  store.check_verifies();
  return 0;
}
