// batch.h — encode and verify QuoteBatch messages (schemas/quotes.fbs).
//
// Every receiver calls verify_batch() before touching a payload: it runs the
// FlatBuffers verifier (bounds, alignment, nesting) and checks the file
// identifier, schema version and price scale, so a corrupt or foreign message
// is rejected with a reason instead of being read.
#pragma once
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "quote.h"

namespace tickfan {

inline constexpr uint16_t kSchemaVersion = 1;

struct BatchHeader {
  std::string_view publisher_id;
  uint64_t epoch = 0;
  uint64_t sequence = 0;
  wire::BatchKind kind = wire::BatchKind::Delta;
  int64_t created_ns = 0;
};

struct SubjectSequence {
  std::string subject;
  uint64_t sequence = 0;
};

// Builds one batch into `fbb` (cleared first); the bytes are
// fbb.GetBufferPointer() / fbb.GetSize() until the next call.
void encode_batch(flatbuffers::FlatBufferBuilder& fbb, const BatchHeader& header, std::span<const Quote> quotes,
                  std::span<const SubjectSequence> marks = {});

enum class BatchError {
  ok = 0,
  too_small,         // shorter than a FlatBuffer header
  wrong_identifier,  // not a tickfan QuoteBatch ("TQB1")
  malformed,         // the verifier rejected it (truncated, corrupt offsets)
  schema_too_new,    // schema_version newer than this build understands
  bad_scale,         // price_decimals differs from kPriceDecimals
};
const char* batch_error_name(BatchError e);

// Verifies `data` and on success sets *out to the batch (pointing into data).
// `data` must be 8-byte aligned (FlatBuffers reads int64 fields in place);
// pass received bytes through aligned_payload() first.
BatchError verify_batch(const void* data, size_t size, const wire::QuoteBatch** out);

// Returns `data` itself when it is 8-byte aligned, else a copy in `scratch`.
// NATS hands out message bytes at arbitrary alignment.
const void* aligned_payload(const void* data, size_t size, std::vector<uint64_t>& scratch);

}  // namespace tickfan
