// fuzz_store.h — what the fuzz targets share: fail(), which stops a run on a
// broken property, and a real store (one file per process in /dev/shm,
// removed at exit, a writer and a reader on it, started over when full) for
// the targets that write one (batch, ticks). check_stored() and
// check_verifies() are their closing properties: whatever the writer accepted
// reads back byte for byte, and the whole store verifies.
#pragma once
#include <unistd.h>

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
  ~FuzzStore() {
    reader_.reset();
    writer_.reset();
    ::unlink(path_.c_str());
  }
  void reset() {
    reader_.reset();
    writer_.reset();
    ::unlink(path_.c_str());
    shm::Status st;
    std::string err;
    writer_ = shm::StoreWriter::open(path_, shm::WriterOptions{kCapacity, 0600}, &st, &err);
    if (!writer_) fail("cannot create the store", err);
    reader_ = shm::StoreReader::open(path_, &st, &err);
    if (!reader_) fail("cannot open the store for reading", err);
  }

  std::string path_;
  std::unique_ptr<shm::StoreWriter> writer_;
  std::unique_ptr<shm::StoreReader> reader_;
};

}  // namespace tickfan::fuzz
