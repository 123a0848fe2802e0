// batch.cpp — see batch.h.
#include "batch.h"

#include <cstring>

#include "fixed_point.h"

namespace tickfan {

void encode_batch(flatbuffers::FlatBufferBuilder& fbb, const BatchHeader& h, std::span<const Quote> quotes,
                  std::span<const SubjectSequence> marks) {
  fbb.Clear();
  auto publisher = fbb.CreateString(h.publisher_id.data(), h.publisher_id.size());
  auto quote_vec = fbb.CreateVectorOfStructs(quotes.data(), quotes.size());
  flatbuffers::Offset<flatbuffers::Vector<flatbuffers::Offset<wire::SubjectMark>>> mark_vec = 0;
  if (!marks.empty()) {
    std::vector<flatbuffers::Offset<wire::SubjectMark>> offsets;
    offsets.reserve(marks.size());
    for (const SubjectSequence& m : marks) {
      offsets.push_back(wire::CreateSubjectMark(fbb, fbb.CreateString(m.subject), m.sequence));
    }
    mark_vec = fbb.CreateVector(offsets);
  }
  wire::QuoteBatchBuilder b(fbb);
  b.add_schema_version(kSchemaVersion);
  b.add_publisher_id(publisher);
  b.add_epoch(h.epoch);
  b.add_sequence(h.sequence);
  b.add_kind(h.kind);
  b.add_created_ns(h.created_ns);
  b.add_price_decimals(static_cast<uint8_t>(kPriceDecimals));
  b.add_quotes(quote_vec);
  if (!marks.empty()) b.add_marks(mark_vec);
  // force_defaults is off: schema_version 1 and price_decimals 4 are the
  // defaults and cost no bytes; readers get them back from the accessor.
  wire::FinishQuoteBatchBuffer(fbb, b.Finish());
}

const char* batch_error_name(BatchError e) {
  switch (e) {
    case BatchError::ok: return "ok";
    case BatchError::too_small: return "too_small";
    case BatchError::wrong_identifier: return "wrong_identifier";
    case BatchError::malformed: return "malformed";
    case BatchError::schema_too_new: return "schema_too_new";
    case BatchError::bad_scale: return "bad_scale";
  }
  return "unknown";
}

BatchError verify_batch(const void* data, size_t size, const wire::QuoteBatch** out) {
  if (data == nullptr || size < 8) return BatchError::too_small;
  if (!wire::QuoteBatchBufferHasIdentifier(data)) return BatchError::wrong_identifier;
  flatbuffers::Verifier verifier(static_cast<const uint8_t*>(data), size);
  if (!wire::VerifyQuoteBatchBuffer(verifier)) return BatchError::malformed;
  const wire::QuoteBatch* batch = wire::GetQuoteBatch(data);
  // Receivers read the Quote structs in place. The verifier checks the
  // vector's bounds and its length word's alignment, not its elements': a
  // hand-made buffer can place 8-byte-aligned structs at a 4-byte boundary
  // (found by tests/fuzz/batch), and reading those would be undefined. An
  // empty vector has no elements to read (and the builder does not align it).
  if (batch->quotes() && batch->quotes()->size() > 0 &&
      reinterpret_cast<uintptr_t>(batch->quotes()->Data()) % alignof(Quote) != 0)
    return BatchError::malformed;
  if (batch->schema_version() > kSchemaVersion) return BatchError::schema_too_new;
  if (batch->price_decimals() != kPriceDecimals) return BatchError::bad_scale;
  *out = batch;
  return BatchError::ok;
}

const void* aligned_payload(const void* data, size_t size, std::vector<uint64_t>& scratch) {
  if (reinterpret_cast<uintptr_t>(data) % 8 == 0) return data;
  scratch.resize((size + 7) / 8);
  std::memcpy(scratch.data(), data, size);
  return scratch.data();
}

}  // namespace tickfan
