// store.h — the shared-memory quote store: one writer process, any number of
// lock-free reader processes, one memory-mapped file (on tmpfs or disk).
//
// Writer (apiclient): `StoreWriter::open` creates or reopens the file, takes an
// exclusive lock for its whole life, repairs whatever a killed predecessor left
// mid-update, then upserts quotes and commits batches. Readers (HTTP workers,
// the inspector): `StoreReader::open` maps the file read-only and copies
// records out; they never block the writer and never see a torn record.
//
// The layout and the memory-ordering argument are in shm/layout.h.
//
// CAVEATS (read these; they are how it can fail)
//  - The writer lock is a Linux open-file-description lock (F_OFD_SETLK) on
//    the writer's descriptor: released when that descriptor closes, including
//    at process death. A child forked by the writer without exec would share
//    the descriptor and keep the lock (the descriptor is O_CLOEXEC).
//  - Capacity (number of symbols) is fixed at creation. A full store rejects
//    new symbols with Status::full; to grow, create a bigger store and let the
//    apiclient resync into it (docs/operations.md).
//  - A writer killed in the middle of an update leaves that one record odd
//    (being written). Readers then serve the record's previous value from the
//    undo copy in the header; the next writer restores it on open. Records are
//    never lost, but that record is one update behind until the next writer
//    (or the next update) rewrites it.
//  - On tmpfs the data is gone after a reboot; on disk, `checkpoint()` (and a
//    clean close) msyncs it. Without a checkpoint, a power loss may leave any
//    subset of recent updates on disk; the next writer's repair makes the file
//    consistent and the apiclient's snapshot resync refreshes the values.
//  - A StoreReader is for one thread (its stats are plain counters); give
//    each thread its own, they are cheap (one mapping each).
//  - Readers copy a record, then validate it (seqlock). A reader descheduled
//    while the writer laps the same record retries; retries are counted. A
//    writer descheduled inside an update does not block readers: after a
//    short spin they serve the previous version from the undo copy.
#pragma once
#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "quote.h"

namespace tickfan::shm {

enum class Status : int {
  ok = 0,
  not_found,         // no such symbol (or slot beyond `used`)
  not_ready,         // file exists but its creator has not finished initialising it
  version_mismatch,  // layout version or record size differs from this build
  bad_file,          // not a tickfan store, or truncated
  locked,            // another writer holds the store
  io_error,          // open/mmap/lock/msync failed (errno in the message)
  no_space,          // the filesystem cannot hold a store of that capacity
  full,              // capacity reached: a new symbol cannot be added
  invalid_symbol,    // empty, longer than 16 bytes, or characters outside [A-Za-z0-9._-]
  invalid_value,     // negative price/volume, high < low, name not UTF-8, render too long
  busy,              // a live writer kept the record mid-update beyond the read budget and no undo copy matched
  torn,              // the record is half-written and no undo copy matches (damage from outside the writer)
};
const char* status_name(Status s);

// Replication state the apiclient writes into the header so readers can say
// how trustworthy the data is.
enum class SyncState : uint32_t { unknown = 0, syncing = 1, live = 2, stale = 3 };
const char* sync_state_name(SyncState s);

// A consistent copy of the header's state.
struct StoreState {
  uint32_t layout_version = 0;
  uint32_t capacity = 0;
  uint32_t used = 0;            // symbols stored
  int32_t writer_pid = 0;       // last writer's pid (0 if never written)
  bool writer_alive = false;    // a process holds the writer lock right now
  int64_t writer_start_ns = 0;  // wall clock, when the last writer opened the store
  int64_t heartbeat_ns = 0;     // wall clock, last writer heartbeat
  uint64_t epoch = 0;           // last committed batch's publisher epoch
  uint64_t sequence = 0;        // last committed batch's sequence
  int64_t commit_ns = 0;        // wall clock of the last commit
  uint64_t commit_count = 0;    // commits since the store was created (ETags)
  SyncState sync_state = SyncState::unknown;
  uint64_t gaps = 0;  // as reported by the writer (apiclient)
  uint64_t resyncs = 0;
  uint64_t repairs = 0;   // records restored by writers' open-time repair
  uint64_t rejected = 0;  // upserts refused (full, invalid)
  size_t file_size = 0;
};

struct WriterOptions {
  uint32_t capacity = 8192;  // symbols; only used when creating the file
  mode_t mode = 0640;        // creation mode: writer rw, readers' group r
};

struct WriterStats {
  uint64_t inserts = 0;  // new symbols
  uint64_t updates = 0;  // existing symbols rewritten
  uint64_t rejected_full = 0;
  uint64_t rejected_symbol = 0;
  uint64_t rejected_value = 0;
  uint64_t commits = 0;
  uint64_t repaired_on_open = 0;    // odd records restored from the undo copy
  uint64_t reindexed_on_open = 0;   // slots missing from the index, re-added
  uint64_t rerendered_on_open = 0;  // JSON differing from its quote's rendering, rewritten
  uint64_t damaged_on_open = 0;     // checksum mismatches: logged, kept until the symbol's next update
};

class StoreWriter {
 public:
  // Creates `path` (with opts.capacity) or reopens it, takes the writer lock,
  // verifies and repairs it. On failure returns nullptr, sets *status and
  // writes a one-line message to *error naming the path (and the holder's pid
  // for Status::locked).
  static std::unique_ptr<StoreWriter> open(const std::string& path, const WriterOptions& opts, Status* status,
                                           std::string* error);
  ~StoreWriter();  // checkpoints and releases the lock
  StoreWriter(const StoreWriter&) = delete;
  StoreWriter& operator=(const StoreWriter&) = delete;

  // Inserts or replaces one quote (keyed by its symbol). Visible to readers
  // as soon as it returns. Renders the record's JSON once, here.
  Status upsert(const Quote& q);

  // Upserts every quote, then commits (epoch, sequence). An invalid quote is
  // skipped and counted; the rest are applied. *applied gets the count.
  // Faster than upserts one by one: later quotes' index lines and records
  // are prefetched while the current one is rendered. `observe` (optional)
  // is called right after each quote's upsert — the quote is readable then —
  // with its position in the batch and its status, so a caller can time
  // each quote without giving up the batch path.
  using QuoteObserver = void (*)(void* context, size_t index, Status status);
  Status apply_batch(std::span<const Quote> quotes, uint64_t epoch, uint64_t sequence, size_t* applied = nullptr,
                     QuoteObserver observe = nullptr, void* context = nullptr);

  // Records (epoch, sequence, now) as the last commit and bumps commit_count.
  void commit(uint64_t epoch, uint64_t sequence);
  // Advances the liveness heartbeat (call at least every second).
  void heartbeat();
  void set_sync_state(SyncState state, uint64_t gaps, uint64_t resyncs);
  // msync(MS_SYNC) of the whole file.
  Status checkpoint();

  StoreState state() const;
  const WriterStats& stats() const { return stats_; }
  const std::string& path() const { return path_; }

 private:
  struct Impl;
  StoreWriter() = default;
  void rewrite(uint32_t slot, const char* json, size_t json_words);
  std::unique_ptr<Impl> impl_;
  WriterStats stats_;
  std::string path_;
};

struct ReaderStats {
  uint64_t reads = 0;
  uint64_t retries = 0;     // copies discarded because the writer was mid-update
  uint64_t undo_reads = 0;  // served from the undo copy (the writer stalled or died inside that record's update)
  uint64_t busy = 0;
};

namespace detail {
struct Want;  // what one read copies (reader.cpp)
}  // namespace detail

class StoreReader {
 public:
  // Maps `path` read-only. Fails with not_ready (creator still initialising),
  // version_mismatch (message names both versions), bad_file or io_error.
  static std::unique_ptr<StoreReader> open(const std::string& path, Status* status, std::string* error);
  ~StoreReader();
  StoreReader(const StoreReader&) = delete;
  StoreReader& operator=(const StoreReader&) = delete;

  // Slot of `symbol` (slots are permanent: cache them). Lock-free index probe.
  // not_found for a valid symbol that is not stored, invalid_symbol for one
  // the writer would refuse (valid_symbol in common/quote.h).
  Status find(std::string_view symbol, uint32_t* slot) const;
  // Number of slots in use: valid slots are [0, used()).
  uint32_t used() const;
  uint32_t capacity() const;

  // Copies one record out. `version` (optional) is the record's update count,
  // which only grows. Never returns a torn value.
  Status read_quote(uint32_t slot, Quote* out, uint64_t* version = nullptr) const;
  // Copies the record's pre-rendered JSON (see render_quote_json) into `out`
  // and sets *len. `out` needs kQuoteJsonMax bytes of room: whole words are
  // copied, so up to 7 bytes past *len may be overwritten.
  Status read_json(uint32_t slot, char* out, size_t* len, uint64_t* version = nullptr) const;
  // Both at once, from the same version.
  Status read(uint32_t slot, Quote* quote, char* json, size_t* json_len, uint64_t* version = nullptr) const;

  // Convenience: find + read_quote / find + append JSON to *out.
  Status get(std::string_view symbol, Quote* out) const;
  // get() for many symbols at once: out[i] and status[i] (ok, not_found,
  // invalid_symbol, ...) for symbols[i]. Later symbols' index lines and
  // records are prefetched while the current one is copied, so their cache
  // misses overlap (docs/BENCHMARKS.md, store). Returns the number found.
  size_t get_many(std::span<const std::string_view> symbols, Quote* out, Status* status) const;
  // Calls fn(slot, quote) for every record in use, in slot order, each a
  // consistent copy (for rankings and dumps); a record a read refuses
  // (torn, busy) is skipped. Returns the number visited.
  template <typename Fn>
  uint32_t for_each(Fn&& fn) const {
    Quote q;
    uint32_t visited = 0;
    for (uint32_t slot = 0, end = used(); slot < end; ++slot) {
      if (read_quote(slot, &q) != Status::ok) continue;
      fn(slot, static_cast<const Quote&>(q));
      ++visited;
    }
    return visited;
  }
  Status append_json(std::string_view symbol, std::string* out) const;

  // Consistent copy of the header; writer_alive is checked at most every
  // 100 ms (an fcntl F_GETLK) and cached in between.
  StoreState state() const;
  bool writer_alive() const;
  // Checksums every record in use; returns the number of bad records and
  // describes the first few in *report.
  uint32_t verify(std::string* report) const;
  // Longest and mean probe length of the index (for the inspector).
  void probe_lengths(uint32_t* max_probe, double* mean_probe) const;

  const ReaderStats& stats() const { return stats_; }

 private:
  struct Impl;
  StoreReader() = default;
  // read()'s body, inlined into each public read (reader.cpp), and its
  // out-of-line path for a record that stays mid-update.
  Status read_inline(uint32_t slot, Quote* quote, char* json, size_t* json_len, uint64_t* version) const;
  uint64_t read_stalled(uint32_t slot, const detail::Want& want, Status* status) const;
  std::unique_ptr<Impl> impl_;
  mutable ReaderStats stats_;
};

}  // namespace tickfan::shm
