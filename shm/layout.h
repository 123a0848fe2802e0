// layout.h — the store file's byte layout and the seqlock protocol that makes
// lock-free reads safe. Internal to shm/; users go through shm/store.h.
//
// FILE
//
//   0        4096               4096+16*cap     (64-aligned)          (page-aligned)         (page-aligned)
//   +--------+------------------+---------------+---------------------+----------------------+
//   | Header | Keys: cap x 16 B | Index: idx x 4 | Records: cap x 320 B | JSON: cap x 640 B    |
//   +--------+------------------+---------------+---------------------+----------------------+
//
//   Keys[slot]   the slot's symbol, NUL-padded. Written once, before the slot
//                is published, never changed (the writer's repair, verify and
//                probe statistics walk it). Lookups compare the same bytes in
//                the record's quote instead: the line a read needs anyway.
//   Index[i]     open addressing, linear probing, idx = pow2 >= 2*cap.
//                u32: 0 = empty, else bits 0..25 slot+1, bits 26..31 a tag
//                (top 6 bits of the symbol's hash) so most mismatching
//                probes never touch a record. Entries are only ever added.
//   Records      one per slot, a seqlock each (below): the quote, hot.
//   JSON[slot]   the record's JSON rendering, under the record's seqlock.
//                Kept apart so the quotes are dense (a quote read touches 5
//                lines of a 320-byte stride: at 5 000 symbols all quotes fit
//                in L2, as a bare array of quotes would) and a JSON read
//                touches the record's first line and the JSON's lines.
//
// Slots are never freed or reused for another symbol, so a reader holding a
// slot number can never read another key's value (the bug that sank the
// store this replaces). Footprint: 320 + 640 + 16 + 2*4 = 984 bytes per symbol.
//
// HEADER (4096 bytes; each group on its own cache line so the writer's
// heartbeat and commit stores do not invalidate readers' hot `used` line)
//
//        0                   8         12        16        20        24
//        +-------------------+---------+---------+---------+---------+
//      0 | magic "TFSTORE\0" | version | rec_size| capacity| idx_size|
//        +-------------------+---------+---------+---------+---------+
//     24 | keys_off u64 | index_off u64 | records_off u64 | file_size u64 | created_ns |
//        +------------------------------------------------------------ pad to 64 ---+
//     64 | writer_pid i32 | pad | writer_start_ns | heartbeat_ns |       pad to 128 |
//    128 | commit_seq | epoch | sequence | commit_ns | commit_count |   pad to 192 |
//    192 | used u32 | sync_state u32 | gaps | resyncs | repairs | rejected | pad 256 |
//    256 | undo_seq u64 | undo_slot u32 | pad |                           pad 320 |
//    320 | undo record (320 B)                                         | pad 4096 |
//        +---------------------------------------------------------------------------+
//
//  `version` (layout version) is stored LAST when a file is created, with
//  release ordering: a reader that sees 0 treats the file as not ready.
//
// RECORD (320 bytes = 5 cache lines, 64-aligned) and its JSON (640 bytes)
//
//    0        8          16        20      24          32          320
//    +--------+----------+---------+-------+-----------+-----------+
//    | seq    | checksum | json_len| flags | updated_ns| Quote 288 |     JSON[slot]: 640 B max
//    +--------+----------+---------+-------+-----------+-----------+
//
//  seq       even: stable; odd: the writer is inside an update. seq/2 counts
//            updates of this slot and never goes backwards.
//  flags     kRecordDamaged: a writer's repair found this record half-written
//            with no undo copy to restore it from (damage from outside the
//            writer); readers answer `torn` until the symbol's next update,
//            which writes flags = 0.
//  checksum  mix64 over bytes [16, 320): the header words and the quote. Lets
//            `verify` and the next writer find damage the seqlock cannot
//            (disk, stray writes).
//  JSON      render_quote_json(quote): a pure function of the quote, kept so
//            a request is a copy. Being derived, it needs no checksum (verify
//            re-renders and compares) and no undo copy (see CRASH SAFETY).
//
// MEMORY ORDERING (why readers never see a torn record; after Boehm, "Can
// seqlocks get along with programming language memory models?", MSPC 2012)
//
//  Writer (one thread, one process):
//     s = seq (even)
//     seq.store(s+1, relaxed)
//     atomic_thread_fence(release)          // (W1)
//     payload words: store(relaxed) ...     // every shared word is atomic;
//     seq.store(s+2, release)               // (W2)   the payload is the record
//                                           // after seq and JSON[slot]
//  Reader:
//     s1 = seq.load(acquire)                // (R1) odd -> retry
//     payload words: load(relaxed) into a private copy
//     atomic_thread_fence(acquire)          // (R2)
//     s2 = seq.load(relaxed)                // equal to s1 -> the copy is valid
//
//  - If R1 reads s+2 (from W2), everything the writer stored before W2 is
//    visible: the copy holds at least that update.
//  - If any relaxed payload load reads a value stored after W1 (a newer,
//    possibly partial update), fence-fence synchronisation (W1 -> R2) makes
//    the writer's seq=s+1 happen-before the reader's s2 load, so s2 >= s+1
//    != s1 and the copy is discarded.
//  - Payload accesses are atomic (relaxed), so concurrent read/write is not a
//    data race and the compiler may not invent or tear them; on x86-64 they
//    compile to plain 8-byte moves.
//  Index entries are published with a release store after the key and the
//  record are written, and read with an acquire load, so a reader that finds
//  an entry sees its key and a complete first version of its record.
//
// CRASH SAFETY (writer SIGKILLed at any instruction)
//
//  Before rewriting an existing record the writer copies bytes [8, 320) of it
//  (checksum, header words, quote: not its JSON, which is derived from the
//  quote) into the header's undo slot under the undo seqlock (undo_seq odd ->
//  copy -> even, with undo_slot = slot). So whenever a record is odd, the undo
//  slot holds its previous complete quote. Readers that find a record odd for
//  longer than a short spin (a writer descheduled inside the update, or
//  dead) serve the undo copy, read under its own seqlock and checked against
//  its checksum, rendering its JSON themselves: it is the version before the
//  update in progress, so a reader never waits on a stalled writer and never
//  sees a slot's versions go backwards. The next
//  writer restores odd records from the undo slot and re-renders their JSON,
//  bumping seq to the next even value (an odd record without its undo copy,
//  possible only after damage from outside, is closed with kRecordDamaged so
//  readers report it instead of serving half an update), re-adds any published slot missing
//  from the index (crash between `used` and the index store), checks every
//  checksum (a mismatch is damage from outside the writer: logged, counted,
//  kept until the symbol's next update) and renders again any JSON that is
//  not its quote's rendering. A new slot becomes part of the store only when `used` passes it,
//  so a crash while filling a new slot leaves nothing behind. Every seqlock
//  word is turned odd with `seq | 1`, never `seq + 1`: a crash can leave one
//  odd, and the next writer must not invert its parity.
//  (The crash test found exactly that bug in an earlier `+ 1` version.)
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "quote.h"

namespace tickfan::shm::layout {

inline constexpr uint64_t kMagic = 0x0045524F54534654ull;  // "TFSTORE\0" little-endian
// Bump on any change to the structs below or to what the checksum and the
// undo copy cover, or to the index hash (Key::hash); readers refuse other
// versions. 2: the JSON moved out of the record into its own array; checksum
// and undo copy cover the record only (the JSON is re-rendered instead); a
// shorter index hash.
inline constexpr uint32_t kLayoutVersion = 2;
inline constexpr size_t kHeaderSize = 4096;
inline constexpr size_t kRecordSize = 320;
inline constexpr size_t kKeySize = 16;
inline constexpr size_t kJsonCap = 640;
inline constexpr size_t kPayloadOffset = 8;  // first byte after seq
inline constexpr size_t kChecksumFrom = 16;  // first byte covered by the checksum (to the end of the record)
inline constexpr size_t kQuoteOffset = 32;

inline constexpr uint32_t kRecordDamaged = 1;  // Record::flags

struct alignas(64) Record {
  std::atomic<uint64_t> seq;
  uint64_t checksum;
  uint32_t json_len;
  uint32_t flags;
  int64_t updated_ns;
  Quote quote;
};
static_assert(sizeof(Record) == kRecordSize);
struct Json {
  char bytes[kJsonCap];
};
static_assert(sizeof(Json) == kJsonCap && kJsonCap % 64 == 0, "JSON slots stay line-aligned");
static_assert(offsetof(Record, checksum) == 8);
static_assert(offsetof(Record, json_len) == 16);
static_assert(offsetof(Record, updated_ns) == 24);
static_assert(offsetof(Record, quote) == kQuoteOffset);
static_assert(kJsonCap == kQuoteJsonMax, "the record holds any JSON render_quote_json accepts");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "seqlocks across processes need lock-free atomics");

struct alignas(64) Header {
  // line 0: immutable after creation (but `version`, stored last)
  uint64_t magic;
  std::atomic<uint32_t> version;
  uint32_t record_size;
  uint32_t capacity;
  uint32_t index_size;
  uint64_t keys_offset;
  uint64_t index_offset;
  uint64_t records_offset;
  uint64_t file_size;
  int64_t created_ns;
  // line 1: writer identity and liveness
  alignas(64) std::atomic<int32_t> writer_pid;
  int32_t pad1;
  std::atomic<int64_t> writer_start_ns;
  std::atomic<int64_t> heartbeat_ns;
  // line 2: last commit, under its own seqlock
  alignas(64) std::atomic<uint64_t> commit_seq;
  std::atomic<uint64_t> epoch;
  std::atomic<uint64_t> sequence;
  std::atomic<int64_t> commit_ns;
  std::atomic<uint64_t> commit_count;
  // line 3: occupancy and replication state
  alignas(64) std::atomic<uint32_t> used;
  std::atomic<uint32_t> sync_state;
  std::atomic<uint64_t> gaps;
  std::atomic<uint64_t> resyncs;
  std::atomic<uint64_t> repairs;
  std::atomic<uint64_t> rejected;
  // line 4..: the undo slot (see CRASH SAFETY)
  alignas(64) std::atomic<uint64_t> undo_seq;
  std::atomic<uint32_t> undo_slot;
  uint32_t pad4;
  alignas(64) Record undo;
};
static_assert(offsetof(Header, version) == 8);
static_assert(offsetof(Header, created_ns) == 56);
static_assert(offsetof(Header, writer_pid) == 64);
static_assert(offsetof(Header, commit_seq) == 128);
static_assert(offsetof(Header, used) == 192);
static_assert(offsetof(Header, undo_seq) == 256);
static_assert(offsetof(Header, undo) == 320);
static_assert(sizeof(Header) <= kHeaderSize);
static_assert(std::atomic<uint32_t>::is_always_lock_free);

// Index entries (see FILE above).
inline constexpr uint32_t kSlotBits = 26;
inline constexpr uint32_t kMaxCapacity = (1u << kSlotBits) - 2;
inline uint32_t index_tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 58); }
inline uint32_t index_entry(uint32_t slot, uint64_t hash) { return (slot + 1) | (index_tag(hash) << kSlotBits); }
inline uint32_t entry_slot(uint32_t e) { return (e & ((1u << kSlotBits) - 1)) - 1; }
inline uint32_t entry_tag(uint32_t e) { return e >> kSlotBits; }

struct Geometry {
  uint32_t capacity;
  uint32_t index_size;
  uint64_t keys_offset;
  uint64_t index_offset;
  uint64_t records_offset;
  uint64_t json_offset;  // derived from the others, not stored
  uint64_t file_size;
};

inline Geometry geometry_for(uint32_t capacity) {
  Geometry g{};
  g.capacity = capacity;
  uint32_t idx = 16;
  while (idx < 2ull * capacity) idx *= 2;
  g.index_size = idx;
  g.keys_offset = kHeaderSize;
  g.index_offset = (g.keys_offset + uint64_t{kKeySize} * capacity + 63) / 64 * 64;
  g.records_offset = (g.index_offset + uint64_t{4} * idx + 4095) / 4096 * 4096;
  g.json_offset = (g.records_offset + uint64_t{kRecordSize} * capacity + 4095) / 4096 * 4096;
  g.file_size = (g.json_offset + uint64_t{kJsonCap} * capacity + 4095) / 4096 * 4096;
  return g;
}

// --- word-wise atomic copies (the payload accesses of the protocol above) ---
// The shared side is 8-byte aligned; the private side may be any buffer
// (memcpy of one word compiles to a plain move).
//
// Loads leave in pairs, one 16-byte store per two words: a copy of records
// that miss the cache is bounded by the store buffer, not by the loads (each
// store holds an entry until the older, missing loads complete), so half the
// stores lets twice as many reads overlap their misses. Measured on one
// reader process copying 288-byte quotes by slot: 1.4 -> 2.8 M reads/s at
// 100 000 symbols, 10.6 -> 15 M/s at 5 000 (docs/BENCHMARKS.md, store).
inline void load_words(void* dst, const void* src, size_t words) {
  auto* d = static_cast<char*>(dst);
  auto* s = static_cast<const uint64_t*>(src);
  size_t i = 0;
#if defined(__SSE2__)
  for (; i + 2 <= words; i += 2) {
    uint64_t lo = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
    uint64_t hi = __atomic_load_n(&s[i + 1], __ATOMIC_RELAXED);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 8 * i),
                     _mm_set_epi64x(static_cast<long long>(hi), static_cast<long long>(lo)));
  }
#endif
  for (; i < words; ++i) {
    uint64_t v = __atomic_load_n(&s[i], __ATOMIC_RELAXED);
    std::memcpy(d + 8 * i, &v, 8);
  }
}
inline void store_words(void* dst, const void* src, size_t words) {
  auto* d = static_cast<uint64_t*>(dst);
  auto* s = static_cast<const char*>(src);
  for (size_t i = 0; i < words; ++i) {
    uint64_t v;
    std::memcpy(&v, s + 8 * i, 8);
    __atomic_store_n(&d[i], v, __ATOMIC_RELAXED);
  }
}

// Words of a record after seq: what an update writes and the undo copy holds.
inline constexpr size_t kPayloadWords = (kRecordSize - kPayloadOffset) / 8;
// JSON bytes are copied in whole words; kJsonCap is a multiple of 8, so a
// kJsonCap buffer always has room for the rounded-up length.
inline size_t json_words(uint32_t json_len) { return (json_len + 7) / 8; }
// Zeroes a freshly rendered JSON's last word past `len` (whole words are
// published, so no stale bytes follow the text) and returns its word count.
inline size_t pad_json_words(char* json, size_t len) {
  std::memset(json + len, 0, ((len + 7) & ~size_t{7}) - len);
  return json_words(static_cast<uint32_t>(len));
}

// A fast 64-bit checksum over whole words (not cryptographic: it catches
// damage, not malice).
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}
uint64_t record_checksum(const Record& r);

}  // namespace tickfan::shm::layout
