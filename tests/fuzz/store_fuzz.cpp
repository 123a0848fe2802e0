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
#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "fuzz_store.h"
#include "layout.h"
#include "log.h"
#include "test_quotes.h"

using namespace tickfan;

namespace {
const char* const kSymbols[] = {"sh600000", "sz000001", "sh600519"};

struct Template {
  std::string path = "/dev/shm/tickfan-fuzz-store-" + std::to_string(::getpid());
  std::vector<char> bytes;
  Template() {
    log_set_level(LogLevel::error);  // repairs log every damaged record
    ::unlink(path.c_str());
    shm::Status st;
    std::string err;
    {
      auto w = shm::StoreWriter::open(path, shm::WriterOptions{4, 0600}, &st, &err);
      if (!w) fuzz::fail("cannot create the template store", err);
      int64_t v = 1;
      for (const char* s : kSymbols) w->upsert(testing::make_quote(s, 100000 + v, v)), ++v;
      w->commit(1, 3);
    }
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  ~Template() { ::unlink(path.c_str()); }
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
  std::string path = tmpl.path + ".case";
  ::unlink(path.c_str());
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) fuzz::fail("cannot write the case file", path);
  if (!file.empty() && ::write(fd, file.data(), file.size()) != static_cast<ssize_t>(file.size()))
    fuzz::fail("short write of the case file", path);
  ::close(fd);

  exercise_reader(path);
  {
    shm::Status st;
    std::string err;
    auto w = shm::StoreWriter::open(path, shm::WriterOptions{4, 0600}, &st, &err);
    if (w) {
      w->upsert(testing::make_quote("sh600000", 123400, 99));
      w->upsert(testing::make_quote("sz300750", 123400, 99));
      w->commit(2, 1);
    }
  }
  exercise_reader(path);
  ::unlink(path.c_str());
  return 0;
}
