// store.cpp — StoreWriter and StoreReader (shm/store.h) over the layout and
// seqlock protocol described in shm/layout.h.
#include "store.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "clock.h"
#include "layout.h"
#include "log.h"

namespace tickfan::shm {

using namespace layout;

const char* status_name(Status s) {
  switch (s) {
    case Status::ok: return "ok";
    case Status::not_found: return "not_found";
    case Status::not_ready: return "not_ready";
    case Status::version_mismatch: return "version_mismatch";
    case Status::bad_file: return "bad_file";
    case Status::locked: return "locked";
    case Status::io_error: return "io_error";
    case Status::no_space: return "no_space";
    case Status::full: return "full";
    case Status::invalid_symbol: return "invalid_symbol";
    case Status::invalid_value: return "invalid_value";
    case Status::busy: return "busy";
    case Status::torn: return "torn";
  }
  return "unknown";
}

const char* sync_state_name(SyncState s) {
  switch (s) {
    case SyncState::syncing: return "syncing";
    case SyncState::live: return "live";
    case SyncState::stale: return "stale";
    default: return "unknown";
  }
}

uint64_t layout::record_checksum(const Record& r) {
  // Called on private copies only (staging, or a reader's validated copy),
  // so plain loads. Four independent multiply lanes keep the CPU's
  // multipliers busy instead of waiting on one long dependency chain.
  uint32_t len = r.json_len <= kJsonCap ? r.json_len : static_cast<uint32_t>(kJsonCap);
  const auto* w = reinterpret_cast<const uint64_t*>(&r);
  size_t i = kChecksumFrom / 8, end = (kJsonOffset + len + 7) / 8;
  uint64_t a = 0x9E3779B97F4A7C15ull ^ len, b = 0xC2B2AE3D27D4EB4Full, c = 0x165667B19E3779F9ull,
           d = 0x27D4EB2F165667C5ull;
  for (; i + 4 <= end; i += 4) {
    a = (a ^ w[i]) * 0xff51afd7ed558ccdull;
    b = (b ^ w[i + 1]) * 0xc4ceb9fe1a85ec53ull;
    c = (c ^ w[i + 2]) * 0x9E3779B97F4A7C15ull;
    d = (d ^ w[i + 3]) * 0xD6E8FEB86659FD93ull;
  }
  for (; i < end; ++i) a = (a ^ w[i]) * 0xff51afd7ed558ccdull;
  return mix64(a ^ (b << 17 | b >> 47) ^ (c << 31 | c >> 33) ^ (d << 47 | d >> 17));
}

namespace {

std::string errno_text(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

// The symbol as the 16-byte key stored in Keys[] and compared in probes.
struct Key {
  uint64_t w[2] = {0, 0};
  static bool from(std::string_view s, Key* k) {
    if (s.empty() || s.size() > kKeySize) return false;
    std::memcpy(k->w, s.data(), s.size());
    return true;
  }
  uint64_t hash() const { return mix64(w[0] ^ mix64(w[1] + 0x632BE59BD9B4E019ull)); }
};

// A mapped store file; shared by writer and reader.
struct Mapping {
  int fd = -1;
  void* base = nullptr;
  size_t size = 0;
  Header* header() const { return static_cast<Header*>(base); }
  Key* keys() const { return reinterpret_cast<Key*>(static_cast<char*>(base) + header()->keys_offset); }
  std::atomic<uint32_t>* index() const {
    return reinterpret_cast<std::atomic<uint32_t>*>(static_cast<char*>(base) + header()->index_offset);
  }
  Record* records() const { return reinterpret_cast<Record*>(static_cast<char*>(base) + header()->records_offset); }
  void close() {
    if (base) ::munmap(base, size);
    if (fd >= 0) ::close(fd);
    base = nullptr;
    fd = -1;
  }
};

// Probe for `key`: returns the slot or -1, and the index position where the
// probe stopped (an empty entry) for an insert. The entry's tag filters out
// most mismatches without touching a record; a tag match is confirmed
// against the record's own symbol, which sits on the record's first cache
// line: the line the read that follows needs anyway.
int64_t probe(const Mapping& m, const Key& key, uint32_t* stop_at, uint32_t* probes) {
  const Header* h = m.header();
  const uint32_t mask = h->index_size - 1;
  const Record* recs = m.records();
  auto* index = m.index();
  const uint64_t hash = key.hash();
  const uint32_t tag = index_tag(hash);
  uint32_t pos = static_cast<uint32_t>(hash) & mask;
  for (uint32_t n = 1; n <= h->index_size; ++n, pos = (pos + 1) & mask) {
    uint32_t e = index[pos].load(std::memory_order_acquire);
    if (e == 0) {
      if (stop_at) *stop_at = pos;
      if (probes) *probes = n;
      return -1;
    }
    if (entry_tag(e) != tag) continue;
    uint32_t slot = entry_slot(e);
    if (slot >= h->capacity) continue;
    // A slot's symbol never changes once published, but the writer rewrites
    // the same bytes on every update: atomic loads keep that race-free.
    const auto* sym = reinterpret_cast<const uint64_t*>(recs[slot].quote.symbol()->Data());
    if (__atomic_load_n(&sym[0], __ATOMIC_RELAXED) == key.w[0] &&
        __atomic_load_n(&sym[1], __ATOMIC_RELAXED) == key.w[1]) {
      if (probes) *probes = n;
      return slot;
    }
  }
  if (stop_at) *stop_at = UINT32_MAX;
  return -1;
}

// Checks a mapped header against this build; message names both versions.
Status check_header(const Header* h, size_t file_size, const std::string& path, std::string* error) {
  if (h->magic != kMagic) {
    *error = "store " + path + " is not a tickfan store (bad magic)";
    return Status::bad_file;
  }
  uint32_t version = h->version.load(std::memory_order_acquire);
  if (version == 0) {
    *error = "store " + path + " is not ready (its creator has not finished initialising it)";
    return Status::not_ready;
  }
  if (version != kLayoutVersion || h->record_size != kRecordSize) {
    *error = "store " + path + " has layout version " + std::to_string(version) + " (record size " +
             std::to_string(h->record_size) + "), this build reads layout version " + std::to_string(kLayoutVersion) +
             " (record size " + std::to_string(kRecordSize) + ")";
    return Status::version_mismatch;
  }
  Geometry g = geometry_for(h->capacity);
  if (h->index_size != g.index_size || h->keys_offset != g.keys_offset || h->index_offset != g.index_offset ||
      h->records_offset != g.records_offset || h->file_size != g.file_size || file_size < g.file_size) {
    *error = "store " + path + " is truncated or has an inconsistent geometry (file " + std::to_string(file_size) +
             " bytes, header says " + std::to_string(h->file_size) + ")";
    return Status::bad_file;
  }
  return Status::ok;
}

// Stores held open by StoreWriters of this process, by (dev, inode): an OFD
// lock probe from a reader in the same process sees them anyway, this is only
// to answer writer_alive() without a syscall when we are the writer.
std::mutex g_writers_mu;
std::set<std::pair<dev_t, ino_t>> g_writers;

bool ofd_lock_held_by_other(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
  return fl.l_type != F_UNLCK;
}

}  // namespace

// ---------------------------------------------------------------------------
// Writer
// ---------------------------------------------------------------------------

struct StoreWriter::Impl {
  Mapping m;
  std::pair<dev_t, ino_t> id{};
  Record staging;            // private: the next version of a record is built here, then published
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
  std::string dir = path.substr(0, path.find_last_of('/') == std::string::npos ? 0 : path.find_last_of('/'));
  struct statvfs vfs {};
  if (::statvfs(dir.empty() ? "." : dir.c_str(), &vfs) == 0) {
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
  m.fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, opts.mode);
  if (m.fd < 0) {
    *error = errno_text("open", path);
    return fail(Status::io_error);
  }
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
  struct stat st {};
  if (::fstat(m.fd, &st) != 0) {
    *error = errno_text("fstat", path);
    return fail(Status::io_error);
  }
  w->impl_->id = {st.st_dev, st.st_ino};
  bool fresh = static_cast<size_t>(st.st_size) < sizeof(Header);
  if (!fresh) {
    // A file whose version is still 0 was being created when its creator
    // died: nothing in it was ever visible, so start it over.
    void* p = ::mmap(nullptr, sizeof(Header), PROT_READ, MAP_SHARED, m.fd, 0);
    if (p == MAP_FAILED) {
      *error = errno_text("mmap", path);
      return fail(Status::io_error);
    }
    fresh = static_cast<Header*>(p)->magic == kMagic &&
            static_cast<Header*>(p)->version.load(std::memory_order_acquire) == 0;
    ::munmap(p, sizeof(Header));
  }
  if (fresh) {
    ::fchmod(m.fd, opts.mode);  // exactly the configured mode, whatever the umask
    Status s = create_file(m, opts.capacity, path, error);
    if (s != Status::ok) return fail(s);
  } else {
    m.size = static_cast<size_t>(st.st_size);
    m.base = ::mmap(nullptr, m.size, PROT_READ | PROT_WRITE, MAP_SHARED, m.fd, 0);
    if (m.base == MAP_FAILED) {
      m.base = nullptr;
      *error = errno_text("mmap", path);
      return fail(Status::io_error);
    }
    Status s = check_header(m.header(), m.size, path, error);
    if (s != Status::ok) return fail(s);
  }
  Header* h = m.header();
  h->writer_pid.store(static_cast<int32_t>(::getpid()), std::memory_order_relaxed);
  h->writer_start_ns.store(wall_ns(), std::memory_order_relaxed);
  h->heartbeat_ns.store(wall_ns(), std::memory_order_release);
  {
    std::lock_guard<std::mutex> lock(g_writers_mu);
    g_writers.insert(w->impl_->id);
  }

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
    if ((useq & 1) == 0 && uslot == slot) {
      store_words(reinterpret_cast<char*>(&r) + kPayloadOffset, reinterpret_cast<char*>(&h->undo) + kPayloadOffset,
                  (kRecordSize - kPayloadOffset) / 8);
      LOG_WARN("shm", "store %s: restored slot %u (%.16s) from the undo copy: the last writer died mid-update",
               path.c_str(), slot, reinterpret_cast<const char*>(&m.keys()[slot]));
    } else {
      LOG_ERROR("shm", "store %s: slot %u is mid-update but the undo copy is for slot %u (undo seq %llu)", path.c_str(),
                slot, uslot, static_cast<unsigned long long>(useq));
    }
    r.seq.store(seq + 1, std::memory_order_release);
    ++w->stats_.repaired_on_open;
    h->repairs.fetch_add(1, std::memory_order_relaxed);
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
  // The slot at `used` may hold half of an insert that never counted.
  *status = Status::ok;
  return w;
}

StoreWriter::~StoreWriter() {
  if (!impl_) return;
  checkpoint();
  {
    std::lock_guard<std::mutex> lock(g_writers_mu);
    g_writers.erase(impl_->id);
  }
  impl_->m.close();  // closing the descriptor releases the writer lock
}

namespace {
bool valid_values(const Quote& q) {
  if (q.prev_close() < 0 || q.open() < 0 || q.high() < 0 || q.low() < 0 || q.last() < 0 || q.volume() < 0 ||
      q.turnover() < 0)
    return false;
  if (q.high() > 0 && q.low() > 0 && q.high() < q.low()) return false;
  for (flatbuffers::uoffset_t i = 0; i < kBookDepth; ++i) {
    if (q.bids()->Get(i)->price() < 0 || q.bids()->Get(i)->volume() < 0) return false;
    if (q.asks()->Get(i)->price() < 0 || q.asks()->Get(i)->volume() < 0) return false;
  }
  return valid_display_name(quote_name(q));
}
}  // namespace

Status StoreWriter::upsert(const Quote& q) {
  Mapping& m = impl_->m;
  Header* h = m.header();
  std::string_view symbol = quote_symbol(q);
  Key key;
  if (!valid_symbol(symbol) || !Key::from(symbol, &key)) {
    ++stats_.rejected_symbol;
    h->rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::invalid_symbol;
  }
  // Build the new version privately: the shared record is then written in
  // one pass of word stores between the two seq stores.
  Record& st = impl_->staging;
  if (!valid_values(q)) {
    ++stats_.rejected_value;
    h->rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::invalid_value;
  }
  std::memcpy(&st.quote, &q, sizeof(Quote));
  size_t len = render_quote_json(q, st.json, kJsonCap);
  if (len == 0) {
    ++stats_.rejected_value;
    h->rejected.fetch_add(1, std::memory_order_relaxed);
    return Status::invalid_value;
  }
  std::memset(st.json + len, 0, ((len + 7) & ~size_t{7}) - len);  // checksum covers whole words
  st.json_len = static_cast<uint32_t>(len);
  st.flags = 0;
  st.updated_ns = impl_->batch_now_ns ? impl_->batch_now_ns : wall_ns();
  st.checksum = record_checksum(st);
  size_t words = payload_words(st.json_len);
  const char* src = reinterpret_cast<const char*>(&st) + kPayloadOffset;

  uint32_t stop = 0;
  int64_t found = probe(m, key, &stop, nullptr);
  Record* recs = m.records();
  if (found >= 0) {
    Record& r = recs[found];
    uint64_t seq = r.seq.load(std::memory_order_relaxed);
    // Undo copy first: while r is odd, the undo slot holds its last value.
    // `| 1`: a writer killed inside the undo copy leaves undo_seq odd; the
    // next update must not flip its parity (odd = being written, always).
    uint64_t useq = h->undo_seq.load(std::memory_order_relaxed) | 1;
    h->undo_seq.store(useq, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    h->undo_slot.store(static_cast<uint32_t>(found), std::memory_order_relaxed);
    uint32_t old_len = __atomic_load_n(&r.json_len, __ATOMIC_RELAXED);
    store_words(reinterpret_cast<char*>(&h->undo) + kPayloadOffset, reinterpret_cast<const char*>(&r) + kPayloadOffset,
                payload_words(old_len > kJsonCap ? kJsonCap : old_len));
    h->undo.seq.store(seq, std::memory_order_relaxed);
    h->undo_seq.store(useq + 1, std::memory_order_release);
    // The undo copy must be complete before the record turns odd, for
    // readers (who fall back to it) and for a crash at the next instruction.
    std::atomic_thread_fence(std::memory_order_release);

    r.seq.store(seq + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
    store_words(reinterpret_cast<char*>(&r) + kPayloadOffset, src, words);
    r.seq.store(seq + 2, std::memory_order_release);
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
  store_words(reinterpret_cast<char*>(&r) + kPayloadOffset, src, words);
  r.seq.store(seq + 1, std::memory_order_release);
  h->used.store(used + 1, std::memory_order_release);
  m.index()[stop].store(index_entry(used, key.hash()), std::memory_order_release);
  ++stats_.inserts;
  return Status::ok;
}

Status StoreWriter::apply_batch(std::span<const Quote> quotes, uint64_t epoch, uint64_t sequence, size_t* applied) {
  size_t n = 0;
  Status first_error = Status::ok;
  impl_->batch_now_ns = wall_ns();
  for (const Quote& q : quotes) {
    Status s = upsert(q);
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
  if (::msync(impl_->m.base, impl_->m.size, MS_SYNC) != 0) return Status::io_error;
  return Status::ok;
}

namespace {
StoreState read_state(const Header* h, size_t file_size) {
  StoreState s;
  s.layout_version = h->version.load(std::memory_order_acquire);
  s.capacity = h->capacity;
  s.file_size = file_size;
  s.used = h->used.load(std::memory_order_acquire);
  s.writer_pid = h->writer_pid.load(std::memory_order_relaxed);
  s.writer_start_ns = h->writer_start_ns.load(std::memory_order_relaxed);
  s.heartbeat_ns = h->heartbeat_ns.load(std::memory_order_acquire);
  // The commit group is read under its seqlock. If a dead writer left it odd
  // the fields are still individually valid; take them after a short spin.
  for (int attempt = 0;; ++attempt) {
    uint64_t s1 = h->commit_seq.load(std::memory_order_acquire);
    s.epoch = h->epoch.load(std::memory_order_relaxed);
    s.sequence = h->sequence.load(std::memory_order_relaxed);
    s.commit_ns = h->commit_ns.load(std::memory_order_relaxed);
    s.commit_count = h->commit_count.load(std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_acquire);
    uint64_t s2 = h->commit_seq.load(std::memory_order_relaxed);
    if ((s1 == s2 && (s1 & 1) == 0) || attempt > 1000) break;
  }
  s.sync_state = static_cast<SyncState>(h->sync_state.load(std::memory_order_acquire));
  s.gaps = h->gaps.load(std::memory_order_relaxed);
  s.resyncs = h->resyncs.load(std::memory_order_relaxed);
  s.repairs = h->repairs.load(std::memory_order_relaxed);
  s.rejected = h->rejected.load(std::memory_order_relaxed);
  return s;
}
}  // namespace

StoreState StoreWriter::state() const {
  StoreState s = read_state(impl_->m.header(), impl_->m.size);
  s.writer_alive = true;
  return s;
}

// ---------------------------------------------------------------------------
// Reader
// ---------------------------------------------------------------------------

struct StoreReader::Impl {
  Mapping m;
  std::pair<dev_t, ino_t> id{};
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
  m.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (m.fd < 0) {
    *error = errno_text("open", path);
    return fail(errno == ENOENT ? Status::not_ready : Status::io_error);
  }
  struct stat st {};
  if (::fstat(m.fd, &st) != 0) {
    *error = errno_text("fstat", path);
    return fail(Status::io_error);
  }
  r->impl_->id = {st.st_dev, st.st_ino};
  if (static_cast<size_t>(st.st_size) < kHeaderSize) {
    *error = "store " + path + " is not ready (" + std::to_string(st.st_size) + " bytes, still being created?)";
    return fail(Status::not_ready);
  }
  m.size = static_cast<size_t>(st.st_size);
  m.base = ::mmap(nullptr, m.size, PROT_READ, MAP_SHARED, m.fd, 0);
  if (m.base == MAP_FAILED) {
    m.base = nullptr;
    *error = errno_text("mmap", path);
    return fail(Status::io_error);
  }
  Status s = check_header(m.header(), m.size, path, error);
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
  if (!Key::from(symbol, &key)) return Status::invalid_symbol;
  int64_t s = probe(impl_->m, key, nullptr, nullptr);
  if (s < 0 || static_cast<uint32_t>(s) >= used()) return Status::not_found;
  *slot = static_cast<uint32_t>(s);
  return Status::ok;
}

bool StoreReader::writer_alive() const {
  int64_t now = mono_ns();
  if (now - impl_->alive_checked_ns.load(std::memory_order_relaxed) < 100'000'000) {
    return impl_->alive.load(std::memory_order_relaxed);
  }
  bool alive = ofd_lock_held_by_other(impl_->m.fd);
  if (!alive) {
    std::lock_guard<std::mutex> lock(g_writers_mu);
    alive = g_writers.count(impl_->id) != 0;
  }
  impl_->alive.store(alive, std::memory_order_relaxed);
  impl_->alive_checked_ns.store(now, std::memory_order_relaxed);
  return alive;
}

namespace {
// Copies words [kPayloadOffset, kPayloadOffset + 8*words) of `src` under its
// seqlock into `dst`. Returns the even seq read, or an odd value if the record
// stayed mid-update beyond the spin budget.
inline uint64_t seqlock_copy(const Record& src, Record* dst, size_t max_words, bool json_too, uint64_t* retries) {
  for (int spin = 0; spin < 256; ++spin) {
    uint64_t s1 = src.seq.load(std::memory_order_acquire);
    if ((s1 & 1) == 0) {
      // Header words first (they hold json_len), then as much as is needed.
      load_words(reinterpret_cast<char*>(dst) + kPayloadOffset, reinterpret_cast<const char*>(&src) + kPayloadOffset,
                 (kQuoteOffset - kPayloadOffset) / 8);
      size_t words = max_words;
      if (json_too) {
        uint32_t len = dst->json_len <= kJsonCap ? dst->json_len : static_cast<uint32_t>(kJsonCap);
        words = payload_words(len);
      }
      load_words(reinterpret_cast<char*>(dst) + kQuoteOffset, reinterpret_cast<const char*>(&src) + kQuoteOffset,
                 words - (kQuoteOffset - kPayloadOffset) / 8);
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
}  // namespace

Status StoreReader::read(uint32_t slot, Quote* quote, char* json, size_t* json_len, uint64_t* version) const {
  const Mapping& m = impl_->m;
  if (slot >= used()) return Status::not_found;
  const Record& src = m.records()[slot];
  alignas(64) Record copy;
  const bool want_json = json != nullptr;
  const size_t quote_words = (kJsonOffset - kPayloadOffset) / 8;
  ++stats_.reads;
  int64_t deadline = 0;
  for (;;) {
    uint64_t seq = seqlock_copy(src, &copy, quote_words, want_json, &stats_.retries);
    if ((seq & 1) == 0) {
      if (version) *version = seq / 2;
      break;
    }
    // Still odd after the spin: either the writer was descheduled inside the
    // update (wait, bounded) or it died there (serve the undo copy).
    if (!writer_alive()) {
      const Header* h = m.header();
      uint64_t u1 = h->undo_seq.load(std::memory_order_acquire);
      if ((u1 & 1) == 0 && h->undo_slot.load(std::memory_order_relaxed) == slot) {
        uint64_t useq = seqlock_copy(h->undo, &copy, quote_words, want_json, &stats_.retries);
        std::atomic_thread_fence(std::memory_order_acquire);
        if ((useq & 1) == 0 && h->undo_seq.load(std::memory_order_relaxed) == u1) {
          ++stats_.undo_reads;
          if (version) *version = useq / 2;
          break;
        }
      }
      if (src.seq.load(std::memory_order_acquire) & 1) {
        // Dead writer, odd record, no undo copy: impossible by protocol
        // unless the file was damaged. Report rather than guess.
        return Status::torn;
      }
      continue;
    }
    int64_t now = mono_ns();
    if (deadline == 0) deadline = now + 250'000'000;  // > the 100 ms liveness cache
    if (now > deadline) {
      ++stats_.busy;
      return Status::busy;
    }
    std::this_thread::yield();
  }
  if (quote) std::memcpy(static_cast<void*>(quote), &copy.quote, sizeof(Quote));
  if (want_json) {
    size_t len = copy.json_len <= kJsonCap ? copy.json_len : kJsonCap;
    std::memcpy(json, copy.json, len);
    *json_len = len;
  }
  return Status::ok;
}

Status StoreReader::read_quote(uint32_t slot, Quote* out, uint64_t* version) const {
  return read(slot, out, nullptr, nullptr, version);
}

Status StoreReader::read_json(uint32_t slot, char* out, size_t* len, uint64_t* version) const {
  return read(slot, nullptr, out, len, version);
}

Status StoreReader::get(std::string_view symbol, Quote* out) const {
  uint32_t slot = 0;
  Status s = find(symbol, &slot);
  return s == Status::ok ? read_quote(slot, out) : s;
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
    uint64_t retries = 0;
    uint64_t seq = seqlock_copy(impl_->m.records()[slot], &copy, 0, true, &retries);
    std::string problem;
    if (seq & 1) {
      problem = "stays mid-update (odd seq)";
    } else if (copy.json_len > kJsonCap) {
      problem = "json_len " + std::to_string(copy.json_len) + " > " + std::to_string(kJsonCap);
    } else if (record_checksum(copy) != copy.checksum) {
      problem = "checksum mismatch";
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
