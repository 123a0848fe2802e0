// writer.cpp — StoreWriter (shm/store.h): create or reopen and repair a store,
// then upsert records and commit batches under the protocol of shm/layout.h.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "clock.h"
#include "log.h"
#include "mapping.h"

namespace tickfan::shm {

using namespace layout;
using namespace detail;

struct StoreWriter::Impl {
  Mapping m;
  // Private: the next version of a record and its JSON are built here, then
  // published with one pass of word stores.
  Record staging;
  Json staging_json;
  int64_t batch_now_ns = 0;  // one clock read per batch, not per quote
};

namespace {

Status create_file(Mapping& m, uint32_t capacity, const std::string& path, std::string* error) {
  if (capacity == 0 || capacity > kMaxCapacity) {
    *error = "store " + path + ": capacity " + std::to_string(capacity) + " is out of range (1 .. " +
             std::to_string(kMaxCapacity) + " symbols)";
    return Status::invalid_value;
  }
  Geometry g = geometry_for(capacity);
  size_t slash = path.find_last_of('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) == 0) {
    uint64_t avail = static_cast<uint64_t>(vfs.f_bavail) * vfs.f_frsize;
    if (avail < g.file_size) {
      *error = "store " + path + " needs " + std::to_string(g.file_size >> 20) + " MiB for " +
               std::to_string(capacity) + " symbols but its filesystem has " + std::to_string(avail >> 20) +
               " MiB free (for /dev/shm: remount with a bigger size= or use a smaller --capacity)";
      return Status::no_space;
    }
  }
  if (::ftruncate(m.fd, 0) != 0) {
    *error = errno_text("ftruncate", path);
    return Status::io_error;
  }
  // Reserve every block now: on tmpfs a later page fault past the space
  // would be SIGBUS in every process mapping the file.
  int rc = ::posix_fallocate(m.fd, 0, static_cast<off_t>(g.file_size));
  if (rc == ENOSPC) {
    *error = "store " + path + ": no space for " + std::to_string(g.file_size >> 20) + " MiB (posix_fallocate)";
    ::ftruncate(m.fd, 0);
    return Status::no_space;
  }
  if (rc != 0 && ::ftruncate(m.fd, static_cast<off_t>(g.file_size)) != 0) {
    *error = errno_text("ftruncate", path);
    return Status::io_error;
  }
  m.size = g.file_size;
  m.base = ::mmap(nullptr, m.size, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
  if (m.base == MAP_FAILED) {
    m.base = nullptr;
    *error = errno_text("mmap", path);
    return Status::io_error;
  }
  Header* h = m.header();
  h->magic = kMagic;
  h->record_size = kRecordSize;
  h->capacity = capacity;
  h->index_size = g.index_size;
  h->keys_offset = g.keys_offset;
  h->index_offset = g.index_offset;
  h->records_offset = g.records_offset;
  h->file_size = g.file_size;
  h->created_ns = wall_ns();
  // The version goes last: until now readers see "not ready".
  h->version.store(kLayoutVersion, std::memory_order_release);
  m.bind();
  return Status::ok;
}

}  // namespace

std::unique_ptr<StoreWriter> StoreWriter::open(const std::string& path, const WriterOptions& opts, Status* status,
                                               std::string* error) {
  std::unique_ptr<StoreWriter> w(new StoreWriter());
  w->impl_ = std::make_unique<Impl>();
  w->path_ = path;
  Mapping& m = w->impl_->m;
  auto fail = [&](Status s) -> std::unique_ptr<StoreWriter> {
    *status = s;
    m.close();
    return nullptr;
  };
  // Create only if absent (O_EXCL), so a failure below can remove exactly
  // the file this call made, and nothing that was there before.
  bool created = false;
  m.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (m.fd < 0 && errno == ENOENT) {
    m.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, opts.mode);
    created = m.fd >= 0;
    if (m.fd < 0 && errno == EEXIST) m.fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
  }
  if (m.fd < 0) {
    *error = errno_text("open", path);
    return fail(Status::io_error);
  }
  auto fail_created = [&](Status s) {
    if (created) ::unlink(path.c_str());
    return fail(s);
  };
  // One writer: an open-file-description lock, held until this descriptor
  // closes (process death included). Unlike classic POSIX locks it is not
  // dropped when some other descriptor of the file is closed in this process.
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (::fcntl(m.fd, F_OFD_SETLK, &fl) != 0) {
    int32_t holder = 0;
    struct stat st {};
    if (::fstat(m.fd, &st) == 0 && static_cast<size_t>(st.st_size) >= sizeof(Header)) {
      void* p = ::mmap(nullptr, sizeof(Header), PROT_READ, MAP_SHARED, m.fd, 0);
      if (p != MAP_FAILED) {
        holder = static_cast<Header*>(p)->writer_pid.load(std::memory_order_relaxed);
        ::munmap(p, sizeof(Header));
      }
    }
    *error = "store " + path + " already has a writer (pid " + (holder ? std::to_string(holder) : "unknown") +
             "); only one apiclient may write a store";
    return fail(Status::locked);
  }
  // Empty, or left by a creator that died before publishing its header
  // (classify_file): nothing in it was ever visible, so start it over. Any
  // other file that is not a valid store is refused, never overwritten.
  size_t size = 0;
  bool fresh = false;
  if (Status s = classify_file(m.fd, path, &size, &fresh, error); s != Status::ok) return fail_created(s);
  if (fresh) {
    ::fchmod(m.fd, opts.mode);  // exactly the configured mode, whatever the umask
    Status s = create_file(m, opts.capacity, path, error);
    if (s != Status::ok) return fail_created(s);
  } else {
    Status s = m.map_existing(size, PROT_READ | PROT_WRITE, path, error);
    if (s != Status::ok) return fail(s);
  }
  Header* h = m.header();
  h->writer_pid.store(static_cast<int32_t>(::getpid()), std::memory_order_relaxed);
  h->writer_start_ns.store(wall_ns(), std::memory_order_relaxed);
  h->heartbeat_ns.store(wall_ns(), std::memory_order_release);

  // Repair what a killed predecessor may have left (see layout.h).
  Record* recs = m.records();
  uint32_t used = h->used.load(std::memory_order_relaxed);
  if (used > h->capacity) used = h->capacity;
  for (uint32_t slot = 0; slot < used; ++slot) {
    Record& r = recs[slot];
    uint64_t seq = r.seq.load(std::memory_order_relaxed);
    if ((seq & 1) == 0) continue;
    uint64_t useq = h->undo_seq.load(std::memory_order_acquire);
    uint32_t uslot = h->undo_slot.load(std::memory_order_relaxed);
    bool damaged = false;
    if ((useq & 1) == 0 && uslot == slot && record_checksum(h->undo) != h->undo.checksum) {
      // Damaged from outside (the protocol never leaves a complete undo copy
      // failing its checksum): restoring it would publish garbage.
      LOG_ERROR("shm", "store %s: slot %u is mid-update and its undo copy fails its checksum; marked damaged until "
                "its next update", path.c_str(), slot);
      damaged = true;
    } else if ((useq & 1) == 0 && uslot == slot) {
      // The quote comes back from the undo copy; its JSON is rendered again
      // (the undo copy does not hold it: layout.h, CRASH SAFETY).
      store_words(reinterpret_cast<char*>(&r) + kPayloadOffset, reinterpret_cast<char*>(&h->undo) + kPayloadOffset,
                  kPayloadWords);
      Json json;
      size_t len = render_quote_json(r.quote, json.bytes, kJsonCap);
      if (len != r.json_len) {
        LOG_ERROR("shm", "store %s: slot %u: the undo copy renders %zu JSON bytes, its header says %u", path.c_str(),
                  slot, len, r.json_len);
      }
      store_words(m.json()[slot].bytes, json.bytes, pad_json_words(json.bytes, len));
      LOG_WARN("shm", "store %s: restored slot %u (%.16s) from the undo copy: the last writer died mid-update",
               path.c_str(), slot, reinterpret_cast<const char*>(&m.keys()[slot]));
    } else {
      LOG_ERROR("shm", "store %s: slot %u is mid-update but the undo copy is for slot %u (undo seq %llu); "
                "marked damaged until its next update", path.c_str(), slot, uslot, static_cast<unsigned long long>(useq));
      damaged = true;
    }
    if (damaged) {
      // Half an update and nothing to restore it from: publishing it would
      // serve garbage as valid, so readers are told it is torn instead.
      __atomic_store_n(&r.flags, r.flags | kRecordDamaged, __ATOMIC_RELAXED);
      ++w->stats_.damaged_on_open;
    } else {
      ++w->stats_.repaired_on_open;
      h->repairs.fetch_add(1, std::memory_order_relaxed);
    }
    r.seq.store(seq + 1, std::memory_order_release);
  }
  // A writer killed inside commit() leaves the commit group odd; its fields
  // are each valid (the batch was applied), so just close it.
  uint64_t cseq = h->commit_seq.load(std::memory_order_relaxed);
  if (cseq & 1) h->commit_seq.store(cseq + 1, std::memory_order_release);
  // Every slot below `used` must be findable (a crash may fall between
  // raising `used` and publishing the index entry).
  const Key* keys = m.keys();
  for (uint32_t slot = 0; slot < used; ++slot) {
    uint32_t stop = 0;
    int64_t found = probe(m, keys[slot], &stop, nullptr);
    if (found < 0 && stop != UINT32_MAX) {
      m.index()[stop].store(index_entry(slot, keys[slot].hash()), std::memory_order_release);
      ++w->stats_.reindexed_on_open;
    }
  }
  // Damage the seqlock cannot see (disk, stray writes): a record must match
  // its checksum and its JSON must be its quote's rendering. A bad JSON is
  // rendered again; a bad checksum cannot be repaired here (no good copy is
  // left), so it is reported and stays until the symbol's next update.
  for (uint32_t slot = 0; slot < used; ++slot) {
    const Record& r = recs[slot];
    if (r.flags & kRecordDamaged) {
      LOG_ERROR("shm", "store %s: slot %u (%.16s) is marked damaged (half-written, nothing to restore); readers get "
                "'torn' until its next update", path.c_str(), slot, reinterpret_cast<const char*>(&keys[slot]));
      ++w->stats_.damaged_on_open;
      continue;
    }
    if (record_checksum(r) != r.checksum) {
      LOG_ERROR("shm", "store %s: slot %u (%.16s) fails its checksum: damaged outside the writer; kept until updated",
                path.c_str(), slot, reinterpret_cast<const char*>(&keys[slot]));
      ++w->stats_.damaged_on_open;
      continue;
    }
    Json& rendered = w->impl_->staging_json;
    size_t len = render_quote_json(r.quote, rendered.bytes, kJsonCap);
    if (len == r.json_len && std::memcmp(rendered.bytes, m.json()[slot].bytes, len) == 0) continue;
    LOG_WARN("shm", "store %s: slot %u (%.16s): JSON differs from its quote's rendering; rendered again", path.c_str(),
             slot, reinterpret_cast<const char*>(&keys[slot]));
    if (len == 0 || len != r.json_len) {
      ++w->stats_.damaged_on_open;  // the quote renders to another length: the checksum would have to change
      continue;
    }
    // Same record words (checksum included); only the JSON changes.
    std::memcpy(reinterpret_cast<char*>(&w->impl_->staging) + kPayloadOffset,
                reinterpret_cast<const char*>(&r) + kPayloadOffset, kPayloadWords * 8);
    w->rewrite(slot, rendered.bytes, pad_json_words(rendered.bytes, len));
    ++w->stats_.rerendered_on_open;
    h->repairs.fetch_add(1, std::memory_order_relaxed);
  }
  // The slot at `used` may hold half of an insert that never counted.
  *status = Status::ok;
  return w;
}

StoreWriter::~StoreWriter() {
  if (!impl_) return;
  checkpoint();
  impl_->m.close();  // closing the descriptor releases the writer lock
}

namespace {
// `current` is the record being updated (null for a new symbol): a name equal
// to the one already stored was validated when it was stored, so the UTF-8
// check (a visible share of an update) runs only when the name changes.
bool valid_values(const Quote& q, const Record* current) {
  if (q.prev_close() < 0 || q.open() < 0 || q.high() < 0 || q.low() < 0 || q.last() < 0 || q.volume() < 0 ||
      q.turnover() < 0)
    return false;
  if (q.high() > 0 && q.low() > 0 && q.high() < q.low()) return false;
  for (flatbuffers::uoffset_t i = 0; i < kBookDepth; ++i) {
    if (q.bids()->Get(i)->price() < 0 || q.bids()->Get(i)->volume() < 0) return false;
    if (q.asks()->Get(i)->price() < 0 || q.asks()->Get(i)->volume() < 0) return false;
  }
  if (current && std::memcmp(current->quote.name()->Data(), q.name()->Data(), kNameMax) == 0) return true;
  std::string_view name = quote_name(q);
  // Bytes after the name's terminator would be stored but never shown; a
  // publisher that sends them is broken, so the quote is refused.
  const uint8_t* raw = q.name()->Data();
  for (size_t i = name.size(); i < kNameMax; ++i)
    if (raw[i] != 0) return false;
  return valid_display_name(name);
}
}  // namespace

Status StoreWriter::upsert(const Quote& q) {
  Mapping& m = impl_->m;
  Header* h = m.header();
  std::string_view symbol = quote_symbol(q);
  Key key;
  // The raw field must be exactly the zero-padded key: probes compare a
  // record's stored symbol bytes with the key, so junk after the terminator
  // (found by tests/fuzz/batch) would make the symbol unfindable.
  if (!valid_symbol(symbol) || !Key::from(symbol, &key) || std::memcmp(q.symbol()->Data(), key.w, kKeySize) != 0) {
    ++stats_.rejected_symbol;
    h->rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::invalid_symbol;
  }
  uint32_t stop = 0;
  int64_t found = probe(m, key, &stop, nullptr);
  Record* recs = m.records();
  // Build the new version privately: the shared record and JSON are then
  // written in one pass of word stores between the two seq stores.
  Record& st = impl_->staging;
  char* json = impl_->staging_json.bytes;
  if (!valid_values(q, found >= 0 ? &recs[found] : nullptr)) {
    ++stats_.rejected_value;
    h->rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::invalid_value;
  }
  std::memcpy(&st.quote, &q, sizeof(Quote));
  size_t len = render_quote_json(q, json, kJsonCap);
  if (len == 0) {
    ++stats_.rejected_value;
    h->rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::invalid_value;
  }
  st.json_len = static_cast<uint32_t>(len);
  st.flags = 0;
  st.updated_ns = impl_->batch_now_ns ? impl_->batch_now_ns : wall_ns();
  st.checksum = record_checksum(st);
  const char* src = reinterpret_cast<const char*>(&st) + kPayloadOffset;
  const size_t words = pad_json_words(json, len);

  if (found >= 0) {
    rewrite(static_cast<uint32_t>(found), json, words);
    ++stats_.updates;
    return Status::ok;
  }
  uint32_t used = h->used.load(std::memory_order_relaxed);
  if (used >= h->capacity || stop == UINT32_MAX) {
    ++stats_.rejected_full;
    h->rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::full;
  }
  // New slot: nobody can reach it until `used` and the index say so.
  m.keys()[used] = key;
  Record& r = recs[used];
  uint64_t seq = r.seq.load(std::memory_order_relaxed) | 1;  // odd while being filled
  r.seq.store(seq, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  store_words(reinterpret_cast<char*>(&r) + kPayloadOffset, src, kPayloadWords);
  store_words(m.json()[used].bytes, json, words);
  r.seq.store(seq + 1, std::memory_order_release);
  h->used.store(used + 1, std::memory_order_release);
  m.index()[stop].store(index_entry(used, key.hash()), std::memory_order_release);
  ++stats_.inserts;
  return Status::ok;
}

// Publishes the staged record and `json` over an existing slot under the undo
// protocol (layout.h, CRASH SAFETY).
void StoreWriter::rewrite(uint32_t slot, const char* json, size_t words) {
  Mapping& m = impl_->m;
  Header* h = m.header();
  Record& r = m.records()[slot];
  const char* src = reinterpret_cast<const char*>(&impl_->staging) + kPayloadOffset;
  uint64_t seq = r.seq.load(std::memory_order_relaxed);
  // Undo copy first: while r is odd, the undo slot holds its last value.
  // `| 1`: a writer killed inside the undo copy leaves undo_seq odd; the
  // next update must not flip its parity (odd = being written, always).
  uint64_t useq = h->undo_seq.load(std::memory_order_relaxed) | 1;
  h->undo_seq.store(useq, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  h->undo_slot.store(slot, std::memory_order_relaxed);
  store_words(reinterpret_cast<char*>(&h->undo) + kPayloadOffset, reinterpret_cast<const char*>(&r) + kPayloadOffset,
              kPayloadWords);
  h->undo.seq.store(seq, std::memory_order_relaxed);
  h->undo_seq.store(useq + 1, std::memory_order_release);
  // The undo copy must be complete before the record turns odd, for
  // readers (who fall back to it) and for a crash at the next instruction.
  std::atomic_thread_fence(std::memory_order_release);

  r.seq.store(seq + 1, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  store_words(reinterpret_cast<char*>(&r) + kPayloadOffset, src, kPayloadWords);
  store_words(m.json()[slot].bytes, json, words);
  r.seq.store(seq + 2, std::memory_order_release);
}

Status StoreWriter::apply_batch(std::span<const Quote> quotes, uint64_t epoch, uint64_t sequence, size_t* applied,
                                QuoteObserver observe, void* context) {
  size_t n = 0;
  Status first_error = Status::ok;
  impl_->batch_now_ns = wall_ns();
  // One clock read for the batch's updated_ns, not one per quote. A batch
  // names its symbols up front, so the cache misses of later quotes
  // (index line, then the record and its JSON) overlap with the render of the
  // current one instead of stalling it: at 100 000 symbols the records live
  // in DRAM and this is most of the difference between a cold and a warm
  // update (docs/BENCHMARKS.md, store).
  const Mapping& m = impl_->m;
  constexpr size_t kIndexAhead = 4, kRecordAhead = 2;
  uint64_t ahead[kIndexAhead] = {};  // hashes of the next kIndexAhead quotes, at position % kIndexAhead
  for (size_t j = 0; j < kIndexAhead && j < quotes.size(); ++j) {
    ahead[j] = raw_key_hash(quotes[j].symbol()->Data());
    prefetch_index(m, ahead[j]);
  }
  for (size_t j = 0; j < kRecordAhead && j < quotes.size(); ++j) prefetch_record_for_write(m, ahead[j]);
  for (size_t i = 0; i < quotes.size(); ++i) {
    if (i + kIndexAhead < quotes.size()) {
      uint64_t hash = raw_key_hash(quotes[i + kIndexAhead].symbol()->Data());
      ahead[(i + kIndexAhead) % kIndexAhead] = hash;
      prefetch_index(m, hash);
    }
    if (i + kRecordAhead < quotes.size()) prefetch_record_for_write(m, ahead[(i + kRecordAhead) % kIndexAhead]);
    const Quote& q = quotes[i];
    Status s = upsert(q);
    if (observe) observe(context, i, s);
    if (s == Status::ok) {
      ++n;
    } else if (first_error == Status::ok) {
      first_error = s;
    }
  }
  impl_->batch_now_ns = 0;
  commit(epoch, sequence);
  if (applied) *applied = n;
  return first_error;
}

void StoreWriter::commit(uint64_t epoch, uint64_t sequence) {
  Header* h = impl_->m.header();
  uint64_t s = h->commit_seq.load(std::memory_order_relaxed) | 1;  // odd even if a crash left it odd
  h->commit_seq.store(s, std::memory_order_relaxed);
  std::atomic_thread_fence(std::memory_order_release);
  int64_t now = wall_ns();
  h->epoch.store(epoch, std::memory_order_relaxed);
  h->sequence.store(sequence, std::memory_order_relaxed);
  h->commit_ns.store(now, std::memory_order_relaxed);
  h->commit_count.store(h->commit_count.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  h->commit_seq.store(s + 1, std::memory_order_release);
  h->heartbeat_ns.store(now, std::memory_order_relaxed);
  ++stats_.commits;
}

void StoreWriter::heartbeat() { impl_->m.header()->heartbeat_ns.store(wall_ns(), std::memory_order_release); }

void StoreWriter::set_sync_state(SyncState state, uint64_t gaps, uint64_t resyncs) {
  Header* h = impl_->m.header();
  h->gaps.store(gaps, std::memory_order_relaxed);
  h->resyncs.store(resyncs, std::memory_order_relaxed);
  h->sync_state.store(static_cast<uint32_t>(state), std::memory_order_release);
}

Status StoreWriter::checkpoint() {
  if (::msync(impl_->m.base, impl_->m.size, MS_SYNC) != 0) {
    LOG_ERROR("shm", "%s", errno_text("msync", path_).c_str());
    return Status::io_error;
  }
  return Status::ok;
}

StoreState StoreWriter::state() const {
  StoreState s = read_state(impl_->m.header(), impl_->m.size);
  s.writer_alive = true;
  return s;
}

}  // namespace tickfan::shm
