// tick_input.h — what tickfan-replay reads: a recording (tools/recording.h)
// or a CSV/JSONL tick file (the apiserver's input formats, docs/ticks.md),
// as one stream of (event time, Quote).
//
// Event time is what replay paces by and what --from/--to select on: for a
// recording, when the recorder received the message (what the front boxes
// experienced); for a tick file, the tick's exchange timestamp (the only
// clock it has).
//
// Tick files go through the apiserver's own LineParser and validate_tick
// (linked from tickfan_apiserver_lib, never a second parser), so a line the
// apiserver would refuse is refused here too, with its line number, and the
// quotes replayed are exactly the normalised quotes the apiserver would have
// built. Recordings: every message is verified (verify_batch); only Delta
// batches carry ticks, anything else is counted and skipped.
#pragma once
#include <cstdint>
#include <memory>
#include <string>

#include "quote.h"

namespace tickfan::tools {

struct TickEvent {
  int64_t event_ns = 0;
  Quote quote;
};

struct InputStats {
  uint64_t ticks = 0;         // events returned
  uint64_t rejected = 0;      // tick-file lines the apiserver would refuse
  uint64_t bad_messages = 0;  // recording messages that are not a valid QuoteBatch
  uint64_t other_kinds = 0;   // valid batches that are not deltas (snapshot parts)
  bool truncated = false;     // recording ended inside a record
  bool corrupt = false;       // recording has an impossible record prefix
};

class TickInput {
 public:
  virtual ~TickInput() = default;
  // Opens a recording or a tick file (by content: the TFRECORD magic).
  // nullptr with *error when it cannot be read.
  static std::unique_ptr<TickInput> open(const std::string& path, std::string* error);

  // Next event; false at the end (see stats() for how it ended).
  virtual bool next(TickEvent* out) = 0;
  // Back to the first event, stats reset.
  virtual bool rewind() = 0;
  virtual const char* kind() const = 0;  // "recording" or "tick file"
  virtual uint64_t offset() const = 0;   // bytes consumed
  virtual uint64_t size() const = 0;     // file size
  const InputStats& stats() const { return stats_; }

 protected:
  InputStats stats_;
};

}  // namespace tickfan::tools
