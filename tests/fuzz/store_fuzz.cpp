// store_fuzz.cpp — a store file damaged on disk or by a stray writer, opened by
// a reader (an HTTP worker) and then by a writer (apiclient's open-time
// check and repair). The input patches a small valid store: the first two
// bytes give a length to cut the file to (0xFFFF: keep it whole), then
// repeated [offset: 2 bytes LE][n: 1 byte][n bytes] patches, so mutations land
// on the header, index, records and JSON alike.
// Properties, for any input: no crash, hang (libFuzzer -timeout) or sanitizer
// report in open, state, get, read by slot, verify, the writer's repair, and
// updates after it — a damaged file is refused with a status or served as
// well as it can be, never trusted blindly.
//
// Files: the template and each damaged copy are unnamed files in /dev/shm
// (O_TMPFILE, fuzz_store.h), which the reader and the writer open as
// /proc/self/fd/N, so a run that crashes, times out or is killed, even in
// the middle of an input, leaves nothing behind. (They used to have names:
// the template's was removed by a static destructor, which libFuzzer's _Exit
// and SIGKILL skip, and a case file stayed wherever an input stopped. A
// private mkdtemp directory removed at exit would be left the same way.)
// One exception, input-independent: a writer that starts a file over
// (empty, or a creator's unpublished header: the template, and cases cut
// that short) checks the free space of the file's directory, which for
// /proc/self/fd is none. Those opens go through a name in /dev/shm linked
// to the same file for the duration of StoreWriter::open only.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "fuzz_store.h"
#include "layout.h"
#include "log.h"
#include "test_quotes.h"

using namespace tickfan;

namespace {
const char* const kSymbols[] = {"sh600000", "sz000001", "sh600519"};

const shm::WriterOptions kWriterOptions{4, 0600};

// StoreWriter::open on the file of `fd`, as a writer that may start the file
// over: through a name in /dev/shm that lasts only as long as the call (see
// the top of this file).
std::unique_ptr<shm::StoreWriter> open_writer_by_name(int fd, shm::Status* st, std::string* err) {
  static const std::string name = "/dev/shm/tickfan-fuzz-store-" + std::to_string(::getpid());
  ::unlink(name.c_str());  // left by an earlier run with this pid, if any
  if (::linkat(AT_FDCWD, fuzz::fd_path(fd).c_str(), AT_FDCWD, name.c_str(), AT_SYMLINK_FOLLOW) != 0)
    fuzz::fail("cannot link the store file into /dev/shm", name + ": " + std::strerror(errno));
  auto w = shm::StoreWriter::open(name, kWriterOptions, st, err);
  ::unlink(name.c_str());
  return w;
}

// The writer on the case file by its /proc/self/fd path; a file the writer
// starts over is refused there with no_space (statvfs of /proc reports no
// room, and the check comes before anything is written), and opened again
// through a name, as the daemon would open it.
std::unique_ptr<shm::StoreWriter> open_writer(int fd, shm::Status* st, std::string* err) {
  auto w = shm::StoreWriter::open(fuzz::fd_path(fd), kWriterOptions, st, err);
  if (!w && *st == shm::Status::no_space) w = open_writer_by_name(fd, st, err);
  return w;
}

struct Template {
  std::vector<char> bytes;
  Template() {
    log_set_level(LogLevel::error);  // repairs log every damaged record
    int fd = fuzz::unnamed_file();
    shm::Status st;
    std::string err;
    {
      auto w = open_writer_by_name(fd, &st, &err);
      if (!w) fuzz::fail("cannot create the template store", err);
      int64_t v = 1;
      for (const char* s : kSymbols) w->upsert(testing::make_quote(s, 100000 + v, v)), ++v;
      w->commit(1, 3);
    }
    struct stat sb {};
    if (::fstat(fd, &sb) != 0) fuzz::fail("cannot stat the template store", std::strerror(errno));
    bytes.resize(static_cast<size_t>(sb.st_size));
    if (::pread(fd, bytes.data(), bytes.size(), 0) != static_cast<ssize_t>(bytes.size()))
      fuzz::fail("short read of the template store", std::to_string(bytes.size()));
    ::close(fd);
  }
};

void exercise_reader(const std::string& path) {
  shm::Status st;
  std::string err;
  auto r = shm::StoreReader::open(path, &st, &err);
  if (!r) return;  // refused with a status: fine
  (void)r->state();
  std::string report;
  r->verify(&report);
  uint32_t max_probe = 0;
  double mean_probe = 0;
  r->probe_lengths(&max_probe, &mean_probe);
  for (const char* s : kSymbols) {
    Quote q;
    r->get(s, &q);
    std::string json;
    r->append_json(s, &json);
  }
  for (uint32_t slot = 0; slot < r->used(); ++slot) {
    Quote q;
    char json[shm::layout::kJsonCap];
    size_t len = 0;
    r->read_quote(slot, &q);
    r->read_json(slot, json, &len);
    if (len > sizeof json) fuzz::fail("read_json length beyond its buffer", std::to_string(len));
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Template tmpl;
  std::vector<char> file = tmpl.bytes;
  size_t i = 0;
  if (size >= 2) {
    size_t cut = data[0] | (size_t{data[1]} << 8);
    if (cut != 0xFFFF && cut * 8 < file.size()) file.resize(cut * 8);
    i = 2;
  }
  while (i + 3 <= size) {
    size_t off = data[i] | (size_t{data[i + 1]} << 8);
    size_t n = data[i + 2];
    i += 3;
    for (size_t k = 0; k < n && i < size; ++k, ++i) {
      // The 16-bit offset spans the whole file, whatever its size.
      if (file.empty()) break;
      size_t at = (off * file.size() / 65536 + k) % file.size();
      file[at] = static_cast<char>(data[i]);
    }
  }
  int fd = fuzz::unnamed_file();
  const std::string path = fuzz::fd_path(fd);
  if (!file.empty() && ::write(fd, file.data(), file.size()) != static_cast<ssize_t>(file.size()))
    fuzz::fail("short write of the case file", std::strerror(errno));

  exercise_reader(path);
  {
    shm::Status st;
    std::string err;
    auto w = open_writer(fd, &st, &err);
    fuzz::kill_midway_if_asked();
    if (w) {
      w->upsert(testing::make_quote("sh600000", 123400, 99));
      w->upsert(testing::make_quote("sz300750", 123400, 99));
      w->commit(2, 1);
    }
  }
  exercise_reader(path);
  ::close(fd);
  return 0;
}
