// reader.cpp — StoreReader (shm/store.h): maps a store read-only and copies
// records out under the seqlock protocol of shm/layout.h, falling back to the
// undo copy when a dead writer left a record mid-update.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include "clock.h"
#include "mapping.h"

namespace tickfan::shm {

using namespace layout;
using namespace detail;

struct StoreReader::Impl {
  Mapping m;
  mutable std::atomic<int64_t> alive_checked_ns{0};
  mutable std::atomic<bool> alive{false};
};

std::unique_ptr<StoreReader> StoreReader::open(const std::string& path, Status* status, std::string* error) {
  std::unique_ptr<StoreReader> r(new StoreReader());
  r->impl_ = std::make_unique<Impl>();
  Mapping& m = r->impl_->m;
  auto fail = [&](Status s) -> std::unique_ptr<StoreReader> {
    *status = s;
    m.close();
    return nullptr;
  };
  // O_NONBLOCK: no effect on a regular file; a FIFO at the path would
  // otherwise block here until something opened it for writing.
  m.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (m.fd < 0) {
    *error = errno_text("open", path);
    return fail(errno == ENOENT ? Status::not_ready : Status::io_error);
  }
  size_t size = 0;
  bool creating = false;
  if (Status s = classify_file(m.fd, path, &size, &creating, error); s != Status::ok) return fail(s);
  if (creating) {
    *error = "store " + path + " is not ready (" + std::to_string(size) + " bytes, its writer is creating it)";
    return fail(Status::not_ready);
  }
  Status s = m.map_existing(size, PROT_READ, path, error);
  if (s != Status::ok) return fail(s);
  *status = Status::ok;
  return r;
}

StoreReader::~StoreReader() {
  if (impl_) impl_->m.close();
}

uint32_t StoreReader::used() const {
  uint32_t u = impl_->m.header()->used.load(std::memory_order_acquire);
  return u < impl_->m.header()->capacity ? u : impl_->m.header()->capacity;
}

uint32_t StoreReader::capacity() const { return impl_->m.header()->capacity; }

Status StoreReader::find(std::string_view symbol, uint32_t* slot) const {
  Key key;
  // Trailing NULs would pack into the same key as the symbol without them
  // (keys are NUL-padded); no other invalid symbol can match a stored one.
  if (!Key::from(symbol, &key) || symbol.back() == '\0') return Status::invalid_symbol;
  int64_t s = probe(impl_->m, key, nullptr, nullptr);
  if (s < 0 || static_cast<uint32_t>(s) >= used()) {
    // Only on a miss: the writer's own rule, so both sides name it alike.
    return valid_symbol(symbol) ? Status::not_found : Status::invalid_symbol;
  }
  *slot = static_cast<uint32_t>(s);
  return Status::ok;
}

bool StoreReader::writer_alive() const {
  int64_t now = mono_ns();
  if (now - impl_->alive_checked_ns.load(std::memory_order_relaxed) < 100'000'000) {
    return impl_->alive.load(std::memory_order_relaxed);
  }
  // OFD locks of different descriptions conflict even within one process,
  // so this also sees a writer living in the reader's own process.
  bool alive = ofd_lock_held_by_other(impl_->m.fd);
  impl_->alive.store(alive, std::memory_order_relaxed);
  impl_->alive_checked_ns.store(now, std::memory_order_relaxed);
  return alive;
}

namespace detail {
// What one read asks for: the record's header words (checksum, json_len and
// flags, updated_ns) always, the quote and the JSON when their pointers are
// set. Copies go straight into the caller's buffers: no staging copy.
struct Want {
  uint64_t* head;  // 3 words
  Quote* quote;
  char* json;  // kJsonCap bytes of room
};
}  // namespace detail

namespace {

// Copies what `want` asks for from `src` (and its JSON `src_json`, may be
// null when no JSON is wanted) under the record's seqlock. Returns the even
// seq read, or 1 if the record stayed mid-update beyond the spin budget.
// A failed attempt may leave partial bytes in the buffers; callers only use
// them after a success.
// Takes the pointers by value, not as a Want: a local whose address escapes
// is reloaded after every store, and its null tests would not fold away.
[[gnu::always_inline]] inline uint64_t seqlock_copy(const Record& src, const Json* src_json, uint64_t* head,
                                                    Quote* quote, char* json, uint64_t* retries) {
  const auto* base = reinterpret_cast<const char*>(&src);
  for (int spin = 0; spin < 256; ++spin) {
    uint64_t s1 = src.seq.load(std::memory_order_acquire);
    if ((s1 & 1) == 0) {
      load_words(head, base + kPayloadOffset, (kQuoteOffset - kPayloadOffset) / 8);
      if (quote) load_words(quote, base + kQuoteOffset, sizeof(Quote) / 8);
      if (json) {
        auto len = static_cast<uint32_t>(head[1]);  // json_len: the low half of the second word
        if (len > kJsonCap) len = kJsonCap;         // torn: the seq check below discards it
        load_words(json, src_json->bytes, json_words(len));
      }
      std::atomic_thread_fence(std::memory_order_acquire);
      if (src.seq.load(std::memory_order_relaxed) == s1) return s1;
    }
    ++*retries;
#if defined(__x86_64__)
    __builtin_ia32_pause();
#endif
  }
  return 1;
}
static_assert(offsetof(Record, json_len) == kPayloadOffset + 8 && offsetof(Record, flags) == kPayloadOffset + 12,
              "Want::head[1] is json_len | flags << 32 (little-endian)");

// The slow path of a read: `slot` stayed odd beyond the spin (its writer is
// descheduled inside the update, or dead). Serves the header's undo copy if
// it is this slot's, complete, and intact (a complete undo copy always
// matches its checksum, so a mismatch is damage from outside and is not
// served). The undo copy holds the quote, not its JSON (layout.h): the JSON
// is rendered here. Out of line, so read()'s hot path keeps a small frame.
[[gnu::cold, gnu::noinline]] bool read_undo(const Header* h, uint32_t slot, const Want& want, uint64_t* version,
                                            uint64_t* retries) {
  uint64_t u1 = h->undo_seq.load(std::memory_order_acquire);
  if ((u1 & 1) != 0 || h->undo_slot.load(std::memory_order_relaxed) != slot) return false;
  alignas(64) Record undo;
  auto* undo_head = reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(&undo) + kPayloadOffset);
  uint64_t useq = seqlock_copy(h->undo, nullptr, undo_head, &undo.quote, nullptr, retries);
  std::atomic_thread_fence(std::memory_order_acquire);
  if ((useq & 1) != 0 || h->undo_seq.load(std::memory_order_relaxed) != u1 || record_checksum(undo) != undo.checksum)
    return false;
  std::memcpy(want.head, undo_head, 3 * sizeof(uint64_t));
  if (version) *version = useq / 2;
  if (want.quote) std::memcpy(static_cast<void*>(want.quote), &undo.quote, sizeof(Quote));
  if (want.json) want.head[1] = render_quote_json(undo.quote, want.json, kJsonCap);
  return true;
}
}  // namespace

// The slow path of read(): `slot` stayed odd beyond the spin (its writer is
// descheduled inside the update, or died there). Either way the undo copy
// holds the version before it (layout.h, CRASH SAFETY): serve that rather
// than wait on the writer. Returns the even seq of the copy made, or 1 with
// *status set.
uint64_t StoreReader::read_stalled(uint32_t slot, const Want& want, Status* status) const {
  const Mapping& m = impl_->m;
  const Record& src = m.records()[slot];
  int64_t deadline = 0;
  for (;;) {
    uint64_t undo_version = 0;
    if (read_undo(m.header(), slot, want, &undo_version, &stats_.retries)) {
      ++stats_.undo_reads;
      return undo_version * 2;
    }
    // The undo copy has moved on to another slot (the writer finished this
    // one meanwhile: copy again) or is unusable.
    if (!writer_alive()) {
      if (src.seq.load(std::memory_order_acquire) & 1) {
        // Dead writer, odd record, no undo copy: impossible by protocol
        // unless the file was damaged. Report rather than guess.
        *status = Status::torn;
        return 1;
      }
    } else {
      int64_t now = mono_ns();
      if (deadline == 0) deadline = now + 250'000'000;  // > the 100 ms liveness cache
      if (now > deadline) {
        ++stats_.busy;
        *status = Status::busy;
        return 1;
      }
      std::this_thread::yield();
    }
    uint64_t seq = seqlock_copy(src, &m.json()[slot], want.head, want.quote, want.json, &stats_.retries);
    if ((seq & 1) == 0) return seq;
  }
}

// Always inlined into read_quote / read_json / read / get, so each is
// compiled with its own constant null pointers: the branches on what is
// wanted fold away and the quote copy, of constant size, unrolls (a shared
// out-of-line copy measured 7.8 against 11 M reads/s at 100 000 symbols).
[[gnu::always_inline]] inline Status StoreReader::read_inline(uint32_t slot, Quote* quote, char* json,
                                                              size_t* json_len, uint64_t* version) const {
  const Mapping& m = impl_->m;
  if (slot >= used()) return Status::not_found;
  uint64_t head[3];
  ++stats_.reads;
  uint64_t seq = seqlock_copy(m.records()[slot], &m.json()[slot], head, quote, json, &stats_.retries);
  if (seq & 1) [[unlikely]] {
    Status status = Status::ok;
    seq = read_stalled(slot, Want{head, quote, json}, &status);
    if (status != Status::ok) return status;
  }
  if (version) *version = seq / 2;
  if ((head[1] >> 32) & kRecordDamaged) return Status::torn;  // a repair found it half-written (layout.h)
  if (json) {
    auto len = static_cast<uint32_t>(head[1]);
    *json_len = len <= kJsonCap ? len : kJsonCap;
  }
  return Status::ok;
}

Status StoreReader::read(uint32_t slot, Quote* quote, char* json, size_t* json_len, uint64_t* version) const {
  return read_inline(slot, quote, json, json_len, version);
}

Status StoreReader::read_quote(uint32_t slot, Quote* out, uint64_t* version) const {
  return read_inline(slot, out, nullptr, nullptr, version);
}

Status StoreReader::read_json(uint32_t slot, char* out, size_t* len, uint64_t* version) const {
  return read_inline(slot, nullptr, out, len, version);
}

Status StoreReader::get(std::string_view symbol, Quote* out) const {
  uint32_t slot = 0;
  Status s = find(symbol, &slot);
  return s == Status::ok ? read_inline(slot, out, nullptr, nullptr, nullptr) : s;
}

size_t StoreReader::get_many(std::span<const std::string_view> symbols, Quote* out, Status* status) const {
  const Mapping& m = impl_->m;
  // Two stages ahead, as in StoreWriter::apply_batch: the index line of the
  // quote kIndexAhead further on, the record of the one kRecordAhead on (its
  // index line has arrived by then). Each hash is computed once, kept in a
  // ring; 0 marks a symbol that cannot be a key (nothing to prefetch).
  constexpr size_t kIndexAhead = 4, kRecordAhead = 2;
  uint64_t ahead[kIndexAhead] = {};
  auto stage = [&](size_t i) {
    Key k;
    uint64_t hash = Key::from(symbols[i], &k) ? k.hash() : 0;
    ahead[i % kIndexAhead] = hash;
    if (hash) prefetch_index(m, hash);
  };
  for (size_t i = 0; i < kIndexAhead && i < symbols.size(); ++i) stage(i);
  size_t found = 0;
  for (size_t i = 0; i < symbols.size(); ++i) {
    if (i + kRecordAhead < symbols.size() && ahead[(i + kRecordAhead) % kIndexAhead])
      prefetch_record_for_read(m, ahead[(i + kRecordAhead) % kIndexAhead]);
    status[i] = get(symbols[i], &out[i]);
    found += status[i] == Status::ok;
    if (i + kIndexAhead < symbols.size()) stage(i + kIndexAhead);
  }
  return found;
}

Status StoreReader::append_json(std::string_view symbol, std::string* out) const {
  uint32_t slot = 0;
  Status s = find(symbol, &slot);
  if (s != Status::ok) return s;
  char buf[kJsonCap];
  size_t len = 0;
  s = read_json(slot, buf, &len);
  if (s == Status::ok) out->append(buf, len);
  return s;
}

StoreState StoreReader::state() const {
  StoreState s = read_state(impl_->m.header(), impl_->m.size);
  s.writer_alive = writer_alive();
  return s;
}

uint32_t StoreReader::verify(std::string* report) const {
  uint32_t bad = 0, n = used();
  const Key* keys = impl_->m.keys();
  for (uint32_t slot = 0; slot < n; ++slot) {
    alignas(64) Record copy;
    Json copy_json;
    uint64_t retries = 0;
    uint64_t* head = reinterpret_cast<uint64_t*>(reinterpret_cast<char*>(&copy) + kPayloadOffset);
    uint64_t seq =
        seqlock_copy(impl_->m.records()[slot], &impl_->m.json()[slot], head, &copy.quote, copy_json.bytes, &retries);
    alignas(8) char rendered[kJsonCap];
    std::string problem;
    if (seq & 1) {
      problem = "stays mid-update (odd seq)";
    } else if (copy.json_len > kJsonCap) {
      problem = "json_len " + std::to_string(copy.json_len) + " > " + std::to_string(kJsonCap);
    } else if (record_checksum(copy) != copy.checksum) {
      problem = "checksum mismatch";
    } else if (render_quote_json(copy.quote, rendered, kJsonCap) != copy.json_len ||
               std::memcmp(rendered, copy_json.bytes, copy.json_len) != 0) {
      problem = "JSON differs from the rendering of its quote";
    } else if (std::memcmp(keys[slot].w, copy.quote.symbol()->Data(), kKeySize) != 0) {
      problem = "key and record symbol differ";
    } else {
      uint32_t found = 0;
      std::string_view sym = quote_symbol(copy.quote);
      if (find(sym, &found) != Status::ok || found != slot) problem = "not reachable through the index";
    }
    if (!problem.empty()) {
      if (++bad <= 10 && report) {
        *report +=
            "slot " + std::to_string(slot) + " (" + std::string(quote_symbol(copy.quote)) + "): " + problem + "\n";
      }
    }
  }
  return bad;
}

void StoreReader::probe_lengths(uint32_t* max_probe, double* mean_probe) const {
  uint32_t n = used(), worst = 0;
  uint64_t total = 0;
  const Key* keys = impl_->m.keys();
  for (uint32_t slot = 0; slot < n; ++slot) {
    uint32_t probes = 0;
    probe(impl_->m, keys[slot], nullptr, &probes);
    total += probes;
    if (probes > worst) worst = probes;
  }
  *max_probe = worst;
  *mean_probe = n ? static_cast<double>(total) / n : 0;
}

}  // namespace tickfan::shm
