// snapshot.cpp — see snapshot.h.
#include "snapshot.h"

#include "clock.h"

namespace tickfan::apiserver {

uint32_t all_markets_mask() {
  uint32_t m = 0;
  for (Market k : {Market::SH, Market::SZ, Market::BJ, Market::HK, Market::US}) m |= 1u << static_cast<int>(k);
  return m;
}

bool parse_market_filter(std::string_view text, uint32_t* mask, std::string* bad) {
  while (!text.empty() && (text.back() == ' ' || text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  if (text.empty()) {
    *mask = all_markets_mask();
    return true;
  }
  *mask = 0;
  while (!text.empty()) {
    size_t comma = text.find(',');
    std::string_view code = text.substr(0, comma);
    while (!code.empty() && code.front() == ' ') code.remove_prefix(1);
    while (!code.empty() && code.back() == ' ') code.remove_suffix(1);
    Market m = market_from_code(code);
    if (m == Market::Unknown) {
      *bad = std::string(code.substr(0, 32));
      return false;
    }
    *mask |= 1u << static_cast<int>(m);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
  }
  return true;
}

uint64_t build_snapshot(flatbuffers::FlatBufferBuilder& fbb, std::string_view publisher_id, uint64_t epoch,
                        std::span<const Quote> quotes, std::span<const SubjectSequence> marks, size_t part_size,
                        const std::function<void(const uint8_t*, size_t)>& send) {
  uint64_t parts = 0;
  for (size_t off = 0; off < quotes.size(); off += part_size) {
    size_t n = std::min(part_size, quotes.size() - off);
    BatchHeader h{publisher_id, epoch, ++parts, wire::BatchKind::SnapshotPart, wall_ns()};
    encode_batch(fbb, h, quotes.subspan(off, n));
    send(fbb.GetBufferPointer(), fbb.GetSize());
  }
  BatchHeader end{publisher_id, epoch, parts, wire::BatchKind::SnapshotEnd, wall_ns()};
  encode_batch(fbb, end, {}, marks);
  send(fbb.GetBufferPointer(), fbb.GetSize());
  return parts;
}

}  // namespace tickfan::apiserver
