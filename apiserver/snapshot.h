// snapshot.h — the snapshot service's pure parts: parsing a request's market
// filter and cutting the state into SnapshotPart batches plus the
// SnapshotEnd marker (protocol in docs/protocol.md).
#pragma once
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "batch.h"

namespace tickfan::apiserver {

// Markets as a bitmask (bit = Market enum value). Empty text = all markets.
// False with *bad naming the first unknown code.
bool parse_market_filter(std::string_view text, uint32_t* mask, std::string* bad);
inline bool market_in(uint32_t mask, Market m) { return (mask >> static_cast<int>(m)) & 1u; }
uint32_t all_markets_mask();

struct SnapshotReply {
  std::string reply;   // the requester's inbox
  std::string filter;  // request payload
};

// Encodes `quotes` as parts of at most `part_size` quotes, then the end
// marker with `marks`, handing each encoded message to `send`. Returns the
// number of parts (the end marker's sequence).
uint64_t build_snapshot(flatbuffers::FlatBufferBuilder& fbb, std::string_view publisher_id, uint64_t epoch,
                        std::span<const Quote> quotes, std::span<const SubjectSequence> marks, size_t part_size,
                        const std::function<void(const uint8_t*, size_t)>& send);

}  // namespace tickfan::apiserver
