// mapping.cpp — see mapping.h; also the status names and the record checksum.
#include "mapping.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

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
  // The JSON is not covered: it is a function of the quote (layout.h).
  const auto* w = reinterpret_cast<const uint64_t*>(&r);
  size_t i = kChecksumFrom / 8, end = kRecordSize / 8;
  uint64_t a = 0x9E3779B97F4A7C15ull, b = 0xC2B2AE3D27D4EB4Full, c = 0x165667B19E3779F9ull, d = 0x27D4EB2F165667C5ull;
  for (; i + 4 <= end; i += 4) {
    a = (a ^ w[i]) * 0xff51afd7ed558ccdull;
    b = (b ^ w[i + 1]) * 0xc4ceb9fe1a85ec53ull;
    c = (c ^ w[i + 2]) * 0x9E3779B97F4A7C15ull;
    d = (d ^ w[i + 3]) * 0xD6E8FEB86659FD93ull;
  }
  for (; i < end; ++i) a = (a ^ w[i]) * 0xff51afd7ed558ccdull;
  return mix64(a ^ (b << 17 | b >> 47) ^ (c << 31 | c >> 33) ^ (d << 47 | d >> 17));
}

namespace detail {

Status Mapping::map_existing(size_t file_size, int prot, const std::string& path, std::string* error) {
  size = file_size;
  base = ::mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    base = nullptr;
    *error = errno_text("mmap", path);
    return Status::io_error;
  }
  Status s = check_header(header(), size, path, error);
  if (s == Status::ok) bind();
  return s;
}

void Mapping::close() {
  if (base) ::munmap(base, size);
  if (fd >= 0) ::close(fd);
  base = nullptr;
  fd = -1;
}

std::string errno_text(const char* what, const std::string& path) {
  return std::string(what) + " " + path + ": " + std::strerror(errno);
}

Status classify_file(int fd, const std::string& path, size_t* size, bool* creating, std::string* error) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    *error = errno_text("fstat", path);
    return Status::io_error;
  }
  if (!S_ISREG(st.st_mode)) {
    *error = "store " + path + " is not a regular file";
    return Status::bad_file;
  }
  *size = static_cast<size_t>(st.st_size);
  *creating = false;
  if (*size == 0) {
    *creating = true;
    return Status::ok;
  }
  Header head{};
  size_t want = std::min(*size, sizeof(Header));
  ssize_t got = ::pread(fd, &head, want, 0);
  if (got != static_cast<ssize_t>(want)) {
    *error = got < 0 ? errno_text("read", path) : "store " + path + ": short read of its header";
    return Status::io_error;
  }
  const auto* bytes = reinterpret_cast<const unsigned char*>(&head);
  bool all_zero = std::all_of(bytes, bytes + want, [](unsigned char b) { return b == 0; });
  if (all_zero || (*size >= sizeof(Header) && head.magic == kMagic && head.version.load() == 0)) {
    *creating = true;
    return Status::ok;
  }
  if (*size < kHeaderSize) {
    *error = "store " + path + " is " + std::to_string(*size) + " bytes: " +
             (head.magic == kMagic ? "truncated" : "too short to be a tickfan store");
    return Status::bad_file;
  }
  return Status::ok;
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
  // Checked before geometry_for: a damaged capacity of 2^31 or more would
  // make its index-size doubling wrap and never end (found by tests/fuzz/store).
  if (h->capacity == 0 || h->capacity > kMaxCapacity) {
    *error = "store " + path + " has a damaged header (capacity " + std::to_string(h->capacity) + ", at most " +
             std::to_string(kMaxCapacity) + ")";
    return Status::bad_file;
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

bool ofd_lock_held_by_other(int fd) {
  struct flock fl {};
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  fl.l_start = 0;
  fl.l_len = 0;
  if (::fcntl(fd, F_OFD_GETLK, &fl) != 0) return false;
  return fl.l_type != F_UNLCK;
}

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

}  // namespace detail
}  // namespace tickfan::shm
