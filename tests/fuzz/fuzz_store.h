// fuzz_store.h — what the fuzz targets share: fail(), which stops a run on a
// broken property; unnamed files in /dev/shm for the targets that hand a
// file to the code under test (store, recording); and a real store (one
// file per process in /dev/shm, a writer and a reader on it, started over
// when full) for the targets that write one (batch, ticks). check_stored()
// and check_verifies() are their closing properties: whatever the writer
// accepted reads back byte for byte, and the whole store verifies.
//
// No target leaves a file behind, however its process ends: libFuzzer stops
// a run on a crash, a timeout or -rss_limit_mb with _Exit (no destructors,
// no atexit), a run may be SIGKILLed, and scripts/fuzz.sh may run next to
// other fuzz runs (so it cannot clean up by wildcard). Each file's name is
// gone as soon as nothing needs it: FuzzStore's once its writer and reader
// have it open, the others never have one (O_TMPFILE, opened by the code
// under test as /proc/self/fd/N). A name exists only while a store is being
// created (FuzzStore::reset(); store_fuzz.cpp's writer starting a file
// over), input-independent code; an end right there is the one that leaves
// a file, which scripts/fuzz.sh reports. killed_leaves_no_store.sh checks
// every target that has files (all but sync).
#pragma once
#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include "quote.h"
#include "store.h"

namespace tickfan::fuzz {

// Stops the run with a message: libFuzzer records the input as a crash, the
// replay driver fails its test.
[[noreturn]] inline void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz property failed: %s: %s\n", what, detail.c_str());
  std::abort();
}

// A new empty file in /dev/shm with no name (O_TMPFILE): the kernel frees
// it with its last descriptor or mapping, whatever ends the process.
inline int unnamed_file() {
  int fd = ::open("/dev/shm", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
  if (fd < 0) fail("cannot create an unnamed file in /dev/shm (O_TMPFILE)", std::strerror(errno));
  return fd;
}
// A path that opens the file of `fd` (a new open file description, at
// offset 0), for code that takes a path; it names nothing in /dev/shm.
inline std::string fd_path(int fd) { return "/proc/self/fd/" + std::to_string(fd); }

// For killed_leaves_no_store.sh: with TICKFAN_FUZZ_KILL_MIDWAY set in the
// environment, a target SIGKILLs itself in the middle of an input, where its
// files are open by the code under test (as libFuzzer's _Exit on a crash
// or a timeout would end it there). Never set by fuzzing runs.
inline void kill_midway_if_asked() {
  static const bool asked = std::getenv("TICKFAN_FUZZ_KILL_MIDWAY") != nullptr;
  if (asked) ::kill(::getpid(), SIGKILL);
}

class FuzzStore {
 public:
  static FuzzStore& get(const char* name) {
    static FuzzStore store(name);
    return store;
  }
  shm::StoreWriter& writer() { return *writer_; }
  const shm::StoreReader& reader() const { return *reader_; }

  // Room for `n` new symbols, else a fresh store (a full store is a tested
  // outcome of its own, not what these targets look for).
  void make_room(uint32_t n) {
    if (reader_->used() + n <= kCapacity) return;
    reset();
  }

  // `q` was accepted by the writer: it must read back exactly, and the store
  // must verify clean.
  void check_stored(const Quote& q) const {
    Quote got;
    shm::Status st = reader_->get(quote_symbol(q), &got);
    if (st != shm::Status::ok) fail("accepted quote not readable", std::string(quote_symbol(q)));
    if (std::memcmp(&got, &q, sizeof q) != 0) fail("accepted quote reads back different", std::string(quote_symbol(q)));
  }
  void check_verifies() const {
    std::string report;
    if (reader_->verify(&report) != 0) fail("store does not verify", report);
  }

 private:
  static constexpr uint32_t kCapacity = 256;  // small: check_verifies() re-renders every record
  explicit FuzzStore(const char* name)
      : path_("/dev/shm/tickfan-fuzz-" + std::string(name) + "-" + std::to_string(::getpid())) {
    reset();
  }
  void reset() {
    reader_.reset();
    writer_.reset();
    ::unlink(path_.c_str());  // left by an earlier run with this pid, if any
    shm::Status st;
    std::string err;
    writer_ = shm::StoreWriter::open(path_, shm::WriterOptions{kCapacity, 0600}, &st, &err);
    if (!writer_) fail("cannot create the store", err);
    reader_ = shm::StoreReader::open(path_, &st, &err);
    if (!reader_) fail("cannot open the store for reading", err);
    // Nothing opens the store by name after this (the writer keeps its
    // descriptor and mapping, the reader its own; the path is only in their
    // messages), so the name goes now and the kernel frees the file with
    // them, however the process ends. (It used to be unlinked by the
    // destructor only, which neither _Exit nor SIGKILL runs: every crash,
    // timeout or kill of a batch or ticks run left a store in /dev/shm.)
    if (::unlink(path_.c_str()) != 0) fail("cannot unlink the store", path_);
  }

  std::string path_;
  std::unique_ptr<shm::StoreWriter> writer_;
  std::unique_ptr<shm::StoreReader> reader_;
};

}  // namespace tickfan::fuzz
