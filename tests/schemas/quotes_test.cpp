// The wire contract: every field survives encode/decode, and the verifier
// turns truncated, bit-flipped and foreign buffers into errors, never crashes.
#include <doctest/doctest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <vector>

#include "../common/test_quotes.h"
#include "batch.h"

using namespace tickfan;

namespace {
std::vector<uint8_t> encode(const std::vector<Quote>& quotes, wire::BatchKind kind = wire::BatchKind::Delta,
                            std::vector<SubjectSequence> marks = {}) {
  flatbuffers::FlatBufferBuilder fbb;
  encode_batch(fbb, {"pub-1", 77, 1234, kind, 1732200000999000000LL}, quotes, marks);
  return {fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize()};
}

// Touches every field of every quote, as a receiver would. Unsigned sums:
// a bit-flipped price may be anything, and signed overflow is UB.
uint64_t read_everything(const wire::QuoteBatch* b) {
  auto u = [](int64_t v) { return static_cast<uint64_t>(v); };
  uint64_t sum = b->epoch() + b->sequence() + u(b->created_ns());
  if (b->publisher_id()) sum += b->publisher_id()->size();
  if (b->quotes()) {
    for (const Quote* q : *b->quotes()) {
      sum += quote_symbol(*q).size() + quote_name(*q).size() + u(q->last()) + u(q->volume());
      for (int i = 0; i < kBookDepth; ++i) sum += u(q->bids()->Get(static_cast<flatbuffers::uoffset_t>(i))->price());
    }
  }
  if (b->marks()) {
    for (const auto* m : *b->marks()) sum += m->sequence() + (m->subject() ? m->subject()->size() : 0);
  }
  return sum;
}
}  // namespace

TEST_CASE("round trip keeps every batch and quote field") {
  Quote a = testing::make_quote("sh600000", 103300, 1000);
  a.mutate_status(TradingStatus::Halted);
  Quote b = testing::make_quote("sz000001", 95000, 0);  // zero volume
  b.mutate_market(Market::SZ);
  std::vector<uint8_t> bytes = encode({a, b});

  const wire::QuoteBatch* batch = nullptr;
  REQUIRE(verify_batch(bytes.data(), bytes.size(), &batch) == BatchError::ok);
  CHECK(batch->schema_version() == kSchemaVersion);
  CHECK(batch->publisher_id()->str() == "pub-1");
  CHECK(batch->epoch() == 77);
  CHECK(batch->sequence() == 1234);
  CHECK(batch->kind() == wire::BatchKind::Delta);
  CHECK(batch->created_ns() == 1732200000999000000LL);
  CHECK(batch->price_decimals() == 4);
  REQUIRE(batch->quotes()->size() == 2);
  const Quote& ra = *batch->quotes()->Get(0);
  CHECK(std::memcmp(&ra, &a, sizeof(Quote)) == 0);  // byte-identical: every field
  CHECK(quote_symbol(ra) == "sh600000");
  CHECK(quote_name(ra) == "浦发银行");
  CHECK(ra.market() == Market::SH);
  CHECK(ra.status() == TradingStatus::Halted);
  CHECK(ra.prev_close() == 102300);
  CHECK(ra.open() == 102500);
  CHECK(ra.high() == 105000);
  CHECK(ra.low() == 101000);
  CHECK(ra.last() == 103300);
  CHECK(ra.volume() == 1000);
  CHECK(ra.turnover() == 1000 * 103300);
  CHECK(ra.exchange_ts_ns() == 1732200000123000000LL);
  CHECK(ra.receive_ts_ns() == 1732200000124000000LL);
  for (flatbuffers::uoffset_t i = 0; i < 5; ++i) {
    CHECK(ra.bids()->Get(i)->price() == 103300 - 100 * (i + 1));
    CHECK(ra.bids()->Get(i)->volume() == 100 * (i + 1));
    CHECK(ra.asks()->Get(i)->price() == 103300 + 100 * (i + 1));
    CHECK(ra.asks()->Get(i)->volume() == 200 * (i + 1));
  }
  const Quote& rb = *batch->quotes()->Get(1);
  CHECK(std::memcmp(&rb, &b, sizeof(Quote)) == 0);
  CHECK(rb.volume() == 0);
  CHECK(batch->marks() == nullptr);
}

TEST_CASE("snapshot end carries per-subject marks") {
  std::vector<uint8_t> bytes =
      encode({}, wire::BatchKind::SnapshotEnd, {{"tickfan.q.sh.0", 41}, {"tickfan.q.sz.3", 9}});
  const wire::QuoteBatch* batch = nullptr;
  REQUIRE(verify_batch(bytes.data(), bytes.size(), &batch) == BatchError::ok);
  CHECK(batch->kind() == wire::BatchKind::SnapshotEnd);
  REQUIRE(batch->marks()->size() == 2);
  CHECK(batch->marks()->Get(0)->subject()->str() == "tickfan.q.sh.0");
  CHECK(batch->marks()->Get(0)->sequence() == 41);
  CHECK(batch->marks()->Get(1)->sequence() == 9);
}

TEST_CASE("every truncation is rejected, but for trailing alignment padding") {
  std::vector<uint8_t> bytes = encode({testing::make_quote("sh600000"), testing::make_quote("sh600004")});
  for (size_t len = 0; len < bytes.size(); ++len) {
    std::vector<uint64_t> aligned((len + 7) / 8 + 1);
    std::memcpy(aligned.data(), bytes.data(), len);
    const wire::QuoteBatch* batch = nullptr;
    if (verify_batch(aligned.data(), len, &batch) == BatchError::ok) {
      // Only padding bytes after the last object may go unnoticed; then the
      // batch must still read in bounds (ASan watches).
      CHECK_MESSAGE(len + 8 > bytes.size(), "length ", len);
      CHECK(read_everything(batch) != 0);
    }
  }
}

TEST_CASE("wrong identifier, foreign bytes and a bad scale are rejected with their reason") {
  std::vector<uint8_t> bytes = encode({testing::make_quote("sh600000")});
  std::vector<uint64_t> aligned((bytes.size() + 7) / 8);
  std::memcpy(aligned.data(), bytes.data(), bytes.size());
  auto* raw = reinterpret_cast<uint8_t*>(aligned.data());
  const wire::QuoteBatch* batch = nullptr;
  raw[4] = 'X';  // the identifier lives at bytes 4..7
  CHECK(verify_batch(raw, bytes.size(), &batch) == BatchError::wrong_identifier);
  const char junk[] = "{\"symbol\":\"sh600000\"} not a flatbuffer";
  std::vector<uint64_t> junk_aligned(8);
  std::memcpy(junk_aligned.data(), junk, sizeof junk);
  CHECK(verify_batch(junk_aligned.data(), sizeof junk, &batch) != BatchError::ok);
  CHECK(verify_batch(nullptr, 0, &batch) == BatchError::too_small);

  flatbuffers::FlatBufferBuilder fbb;
  wire::QuoteBatchBuilder b(fbb);
  b.add_price_decimals(2);
  wire::FinishQuoteBatchBuffer(fbb, b.Finish());
  CHECK(verify_batch(fbb.GetBufferPointer(), fbb.GetSize(), &batch) == BatchError::bad_scale);

  flatbuffers::FlatBufferBuilder fbb2;
  wire::QuoteBatchBuilder b2(fbb2);
  b2.add_schema_version(kSchemaVersion + 1);
  wire::FinishQuoteBatchBuffer(fbb2, b2.Finish());
  CHECK(verify_batch(fbb2.GetBufferPointer(), fbb2.GetSize(), &batch) == BatchError::schema_too_new);
}

TEST_CASE("every single-bit flip is either rejected or safe to read") {
  std::vector<uint8_t> bytes =
      encode({testing::make_quote("sh600000")}, wire::BatchKind::SnapshotEnd, {{"tickfan.q.sh.0", 1}});
  std::vector<uint64_t> aligned((bytes.size() + 7) / 8);
  auto* raw = reinterpret_cast<uint8_t*>(aligned.data());
  size_t rejected = 0, accepted = 0;
  volatile uint64_t sink = 0;
  for (size_t bit = 0; bit < bytes.size() * 8; ++bit) {
    std::memcpy(raw, bytes.data(), bytes.size());
    raw[bit / 8] ^= static_cast<uint8_t>(1u << (bit % 8));
    const wire::QuoteBatch* batch = nullptr;
    if (verify_batch(raw, bytes.size(), &batch) == BatchError::ok) {
      // Accepted flips land in data (a price, a name byte): reading must stay
      // in bounds, which ASan checks.
      sink = sink + read_everything(batch);
      ++accepted;
    } else {
      ++rejected;
    }
  }
  // Flips in the root offset, identifier, vtable and vector lengths are caught.
  CHECK(rejected > 32);
  CHECK(rejected + accepted == bytes.size() * 8);
  MESSAGE("bit flips rejected: ", rejected, " of ", bytes.size() * 8);
}

TEST_CASE("a quote vector placed off its 8-byte alignment is rejected (fuzzer-found input)") {
  // A libFuzzer input (tests/fuzz/corpus/batch/): the FlatBuffers verifier
  // accepts it, but its Quote structs start at a 4-byte boundary.
  std::ifstream in(TICKFAN_SOURCE_DIR "/tests/fuzz/corpus/batch/crash-misaligned-quotes.bin", std::ios::binary);
  REQUIRE(in);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::vector<uint64_t> aligned((bytes.size() + 7) / 8);
  std::memcpy(aligned.data(), bytes.data(), bytes.size());
  flatbuffers::Verifier verifier(reinterpret_cast<const uint8_t*>(aligned.data()), bytes.size());
  REQUIRE(wire::VerifyQuoteBatchBuffer(verifier));  // what the library alone says
  const wire::QuoteBatch* batch = nullptr;
  CHECK(verify_batch(aligned.data(), bytes.size(), &batch) == BatchError::malformed);
}
