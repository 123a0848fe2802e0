// subjects.h — the NATS subject scheme shared by apiserver and apiclient.
//
//   deltas:    <prefix>.<market>.<shard>     e.g. tickfan.q.sh.2
//   snapshots: <prefix>-snapshot             request/reply, see docs/protocol.md
//
// A symbol always maps to the same shard (FNV-1a of the symbol modulo the
// shard count), so per-subject sequence numbers order every update of a
// symbol. The snapshot subject is deliberately not under "<prefix>." so a
// front box subscribed to "<prefix>.>" never sees snapshot traffic.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

#include "quote.h"

namespace tickfan {

inline constexpr std::string_view kDefaultSubjectPrefix = "tickfan.q";
inline constexpr uint32_t kDefaultShardsPerMarket = 4;

inline uint32_t shard_of(std::string_view symbol, uint32_t shards) {
  uint32_t h = 2166136261u;
  for (char c : symbol) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return shards ? h % shards : 0;
}

inline std::string delta_subject(std::string_view prefix, Market market, uint32_t shard) {
  std::string s(prefix);
  s += '.';
  s += market_code(market);
  s += '.';
  s += std::to_string(shard);
  return s;
}

inline std::string snapshot_subject(std::string_view prefix) { return std::string(prefix) + "-snapshot"; }

}  // namespace tickfan
