// The store's contract, one process: create/reopen, persistence, refusals
// (second writer, other layout version, not ready, full, bad input, no space)
// and the pre-rendered JSON.
#include "store.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "clock.h"
#include "layout.h"
#include "mapping.h"
#include "process.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::shm;
using tickfan::testing::make_quote;
using tickfan::testing::TempDir;

namespace {
std::unique_ptr<StoreWriter> must_open_writer(const std::string& path, uint32_t capacity = 64) {
  Status st = Status::ok;
  std::string err;
  WriterOptions o;
  o.capacity = capacity;
  auto w = StoreWriter::open(path, o, &st, &err);
  INFO(err);
  REQUIRE(w != nullptr);
  return w;
}
std::unique_ptr<StoreReader> must_open_reader(const std::string& path) {
  Status st = Status::ok;
  std::string err;
  auto r = StoreReader::open(path, &st, &err);
  INFO(err);
  REQUIRE(r != nullptr);
  return r;
}
// Flips one bit of a record (json = false) or of its JSON (json = true) in
// a capacity-64 store file, as damage from outside the writer would.
void flip_bit(const std::string& path, size_t slot, bool json, size_t offset) {
  int fd = ::open(path.c_str(), O_RDWR);
  layout::Geometry g = layout::geometry_for(64);
  off_t at = static_cast<off_t>(json ? g.json_offset + slot * layout::kJsonCap + offset
                                     : g.records_offset + slot * layout::kRecordSize + offset);
  char c = 0;
  REQUIRE(::pread(fd, &c, 1, at) == 1);
  c ^= 0x01;
  REQUIRE(::pwrite(fd, &c, 1, at) == 1);
  ::close(fd);
}

// A store (capacity 64) holding sh600000 (slot 0) and sz000001 (slot 1).
std::string two_quote_store(const TempDir& dir) {
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path);
  REQUIRE(w->upsert(make_quote("sh600000", 103300)) == Status::ok);
  REQUIRE(w->upsert(make_quote("sz000001", 95000)) == Status::ok);
  return path;
}
}  // namespace

TEST_CASE("a created store serves what the writer upserted, by copy, with its JSON") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path);
  Quote q = make_quote("sh600000", 103300, 1000);
  REQUIRE(w->upsert(q) == Status::ok);
  auto r = must_open_reader(path);
  Quote got;
  REQUIRE(r->get("sh600000", &got) == Status::ok);
  CHECK(std::memcmp(&got, &q, sizeof q) == 0);
  std::string json;
  REQUIRE(r->append_json("sh600000", &json) == Status::ok);
  char expect[kQuoteJsonMax];
  CHECK(json == std::string(expect, render_quote_json(q, expect, sizeof expect)));
  CHECK(r->get("sz000001", &got) == Status::not_found);
  CHECK(r->used() == 1);
  // An update replaces in place: same slot, newer version.
  uint32_t slot = 0;
  REQUIRE(r->find("sh600000", &slot) == Status::ok);
  uint64_t v1 = 0, v2 = 0;
  REQUIRE(r->read_quote(slot, &got, &v1) == Status::ok);
  REQUIRE(w->upsert(make_quote("sh600000", 104000, 2000)) == Status::ok);
  REQUIRE(r->read_quote(slot, &got, &v2) == Status::ok);
  CHECK(v2 == v1 + 1);
  CHECK(got.last() == 104000);
  CHECK(r->used() == 1);
}

TEST_CASE("get_many copies many symbols in order with a status each; for_each visits every record") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path, 256);
  std::vector<std::string> stored;
  for (int i = 0; i < 200; ++i) {
    stored.push_back((i % 2 ? "sz" : "sh") + std::to_string(600000 + i));
    REQUIRE(w->upsert(make_quote(stored.back(), 100000 + i, 1000 + i)) == Status::ok);
  }
  auto r = must_open_reader(path);
  std::vector<std::string> asked;
  for (int i = 199; i >= 0; i -= 3) asked.push_back(stored[static_cast<size_t>(i)]);
  asked.insert(asked.begin() + 5, "sh999999");  // unknown
  asked.push_back("bad symbol!");                // invalid
  std::vector<std::string_view> views(asked.begin(), asked.end());
  std::vector<Quote> out(views.size());
  std::vector<Status> status(views.size());
  size_t found = r->get_many(views, out.data(), status.data());
  CHECK(found == views.size() - 2);
  for (size_t i = 0; i < views.size(); ++i) {
    INFO(asked[i]);
    Quote one;
    Status s = r->get(views[i], &one);
    CHECK(status[i] == s);
    if (s == Status::ok) CHECK(std::memcmp(&out[i], &one, sizeof(Quote)) == 0);
  }
  CHECK(status[5] == Status::not_found);
  CHECK(status.back() == Status::invalid_symbol);
  uint32_t slot = 0;
  CHECK(r->find(std::string_view("sh600000\0", 9), &slot) == Status::invalid_symbol);  // not sh600000
  CHECK(r->find("浦发", &slot) == Status::invalid_symbol);

  std::vector<int> seen(256, 0);
  uint32_t visited = r->for_each([&](uint32_t slot, const Quote& q) {
    ++seen[slot];
    CHECK(quote_symbol(q) == stored[slot]);
    CHECK(q.volume() == 1000 + static_cast<int64_t>(slot));
  });
  CHECK(visited == 200);
  CHECK(std::count(seen.begin(), seen.end(), 1) == 200);
}

TEST_CASE("store file is created with mode 0640 and mapped read-only by readers") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  mode_t old = ::umask(0);
  auto w = must_open_writer(path);
  ::umask(old);
  struct stat st {};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0640);
}

TEST_CASE("commits, heartbeat and sync state are visible in the header") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path);
  std::vector<Quote> batch = {make_quote("sh600000"), make_quote("sz000001"), make_quote("bad symbol!")};
  size_t applied = 0;
  CHECK(w->apply_batch(batch, 42, 7, &applied) == Status::invalid_symbol);
  CHECK(applied == 2);
  w->set_sync_state(SyncState::live, 3, 2);
  auto r = must_open_reader(path);
  StoreState s = r->state();
  CHECK(s.epoch == 42);
  CHECK(s.sequence == 7);
  CHECK(s.commit_count == 1);
  CHECK(s.used == 2);
  CHECK(s.writer_pid == ::getpid());
  CHECK(s.writer_alive);
  CHECK(s.sync_state == SyncState::live);
  CHECK(s.gaps == 3);
  CHECK(s.resyncs == 2);
  CHECK(s.rejected == 1);
  CHECK(s.heartbeat_ns > 0);
  int64_t before = s.heartbeat_ns;
  usleep(2000);
  w->heartbeat();
  CHECK(r->state().heartbeat_ns > before);
}

TEST_CASE("records persist across close and reopen, and a closed writer is not alive") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  {
    auto w = must_open_writer(path, 100);
    for (int i = 0; i < 100; ++i)
      REQUIRE(w->upsert(make_quote("sh" + std::to_string(600000 + i), 100000 + i)) == Status::ok);
    w->commit(1, 100);
  }
  auto r = must_open_reader(path);
  CHECK_FALSE(r->state().writer_alive);
  CHECK(r->used() == 100);
  Quote q;
  REQUIRE(r->get("sh600042", &q) == Status::ok);
  CHECK(q.last() == 100042);
  std::string report;
  CHECK(r->verify(&report) == 0);
  // Capacity is fixed at creation: reopening with another capacity keeps it.
  auto w = must_open_writer(path, 5000);
  CHECK(w->state().capacity == 100);
  CHECK(w->state().sequence == 100);
}

TEST_CASE("a second writer is refused at once, naming the holder's pid") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path);
  Status st = Status::ok;
  std::string err;
  auto w2 = StoreWriter::open(path, WriterOptions{}, &st, &err);
  CHECK(w2 == nullptr);
  CHECK(st == Status::locked);
  CHECK(err.find("pid " + std::to_string(::getpid())) != std::string::npos);
  w.reset();  // released on close: now a new writer may open it
  auto w3 = StoreWriter::open(path, WriterOptions{}, &st, &err);
  CHECK(w3 != nullptr);
}

TEST_CASE("a store of another layout version is refused with both versions named") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  must_open_writer(path).reset();
  int fd = ::open(path.c_str(), O_RDWR);
  uint32_t v = layout::kLayoutVersion + 1;
  REQUIRE(::pwrite(fd, &v, sizeof v, 8) == sizeof v);
  ::close(fd);
  Status st = Status::ok;
  std::string err;
  CHECK(StoreReader::open(path, &st, &err) == nullptr);
  CHECK(st == Status::version_mismatch);
  CHECK(err.find("layout version " + std::to_string(v)) != std::string::npos);
  CHECK(err.find("reads layout version " + std::to_string(layout::kLayoutVersion)) != std::string::npos);
  CHECK(StoreWriter::open(path, WriterOptions{}, &st, &err) == nullptr);
  CHECK(st == Status::version_mismatch);
}

TEST_CASE("a file still being created is not ready, not garbage") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  Status st = Status::ok;
  std::string err;
  CHECK(StoreReader::open(path, &st, &err) == nullptr);  // missing
  CHECK(st == Status::not_ready);
  must_open_writer(path).reset();
  int fd = ::open(path.c_str(), O_RDWR);
  uint32_t zero = 0;
  REQUIRE(::pwrite(fd, &zero, sizeof zero, 8) == sizeof zero);  // as if the creator died before the version store
  ::close(fd);
  CHECK(StoreReader::open(path, &st, &err) == nullptr);
  CHECK(st == Status::not_ready);
  // The next writer starts such a file over.
  auto w = must_open_writer(path);
  CHECK(w->upsert(make_quote("sh600000")) == Status::ok);
  CHECK(must_open_reader(path)->used() == 1);
}

TEST_CASE("a file that is not a store is refused") {
  TempDir dir;
  std::string path = dir.file("junk");
  std::string junk(8192, 'x');
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(::write(fd, junk.data(), junk.size()) == static_cast<ssize_t>(junk.size()));
  ::close(fd);
  Status st = Status::ok;
  std::string err;
  CHECK(StoreReader::open(path, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
  CHECK(StoreWriter::open(path, WriterOptions{}, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
}

TEST_CASE("a creator killed after sizing the file leaves a not-ready store the next writer starts over") {
  // posix_fallocate done, header not yet written: the file is all zeros.
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0640);
  REQUIRE(::ftruncate(fd, 1 << 20) == 0);
  ::close(fd);
  Status st = Status::ok;
  std::string err;
  CHECK(StoreReader::open(path, &st, &err) == nullptr);
  CHECK(st == Status::not_ready);
  auto w = must_open_writer(path, 16);
  CHECK(w->upsert(make_quote("sh600000")) == Status::ok);
  CHECK(must_open_reader(path)->capacity() == 16);
}

TEST_CASE("a short file that is not a store is refused and left untouched, never overwritten") {
  TempDir dir;
  std::string path = dir.file("config");
  const std::string text = "important config\n";
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT, 0644);
  REQUIRE(::write(fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  Status st = Status::ok;
  std::string err;
  CHECK(StoreWriter::open(path, WriterOptions{}, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
  CHECK(err.find("too short") != std::string::npos);
  CHECK(StoreReader::open(path, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
  char back[64] = {};
  fd = ::open(path.c_str(), O_RDONLY);
  CHECK(::read(fd, back, sizeof back) == static_cast<ssize_t>(text.size()));
  ::close(fd);
  CHECK(std::string(back) == text);
  struct stat sb {};
  REQUIRE(::stat(path.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 0777) == 0644);

  // A store cut below its header is "truncated", for readers and writers.
  std::string store = dir.file("s.tfstore");
  must_open_writer(store).reset();
  REQUIRE(::truncate(store.c_str(), 2000) == 0);
  CHECK(StoreReader::open(store, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
  CHECK(err.find("truncated") != std::string::npos);
  CHECK(StoreWriter::open(store, WriterOptions{}, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);

  // A directory is not a store, and not "not ready" either.
  CHECK(StoreReader::open(dir.path(), &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
  CHECK(err.find("not a regular file") != std::string::npos);

  // Nor is a FIFO, and opening one must not wait for a writer to it (a
  // reader's plain O_RDONLY open did, forever).
  std::string fifo = dir.file("fifo");
  REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
  CHECK(StoreReader::open(fifo, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
  CHECK(err.find("not a regular file") != std::string::npos);
  CHECK(StoreWriter::open(fifo, WriterOptions{}, &st, &err) == nullptr);
  CHECK(st == Status::bad_file);
}

TEST_CASE("a creation refused for its capacity leaves no file behind") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  Status st = Status::ok;
  std::string err;
  for (uint32_t capacity : {0u, layout::kMaxCapacity + 1}) {
    WriterOptions o;
    o.capacity = capacity;
    CHECK(StoreWriter::open(path, o, &st, &err) == nullptr);
    CHECK(st == Status::invalid_value);
    CHECK(::access(path.c_str(), F_OK) != 0);
  }
}

TEST_CASE("a damaged capacity in the header is refused at once, not looped on (fuzzer-found)") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  must_open_writer(path).reset();
  for (uint32_t capacity : {0u, layout::kMaxCapacity + 1, 0x80000000u, 0xFFFFFFFFu}) {
    int fd = ::open(path.c_str(), O_RDWR);
    REQUIRE(::pwrite(fd, &capacity, sizeof capacity, offsetof(layout::Header, capacity)) == sizeof capacity);
    ::close(fd);
    Status st = Status::ok;
    std::string err;
    CHECK(StoreReader::open(path, &st, &err) == nullptr);
    CHECK(st == Status::bad_file);
    CHECK(err.find("capacity") != std::string::npos);
    CHECK(StoreWriter::open(path, WriterOptions{}, &st, &err) == nullptr);
    CHECK(st == Status::bad_file);
  }
}

TEST_CASE("a full store rejects new symbols but keeps updating known ones") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path, 3);
  CHECK(w->upsert(make_quote("sh600000")) == Status::ok);
  CHECK(w->upsert(make_quote("sh600001")) == Status::ok);
  CHECK(w->upsert(make_quote("sh600002")) == Status::ok);
  CHECK(w->upsert(make_quote("sh600003")) == Status::full);
  CHECK(w->upsert(make_quote("sh600001", 120000)) == Status::ok);
  CHECK(w->stats().rejected_full == 1);
  auto r = must_open_reader(path);
  Quote q;
  CHECK(r->get("sh600003", &q) == Status::not_found);
  REQUIRE(r->get("sh600001", &q) == Status::ok);
  CHECK(q.last() == 120000);
  std::string report;
  CHECK(r->verify(&report) == 0);
}

TEST_CASE("invalid symbols and values are refused, counted, and change nothing") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path);
  REQUIRE(w->upsert(make_quote("sh600000", 103300)) == Status::ok);
  CHECK(w->upsert(make_quote("")) == Status::invalid_symbol);
  CHECK(w->upsert(make_quote("sh 600000")) == Status::invalid_symbol);
  Quote neg = make_quote("sh600000", 103300);
  neg.mutate_last(-1);
  CHECK(w->upsert(neg) == Status::invalid_value);
  Quote inverted = make_quote("sh600000");
  inverted.mutate_high(90000);
  inverted.mutate_low(95000);
  CHECK(w->upsert(inverted) == Status::invalid_value);
  Quote bad_name = make_quote("sh600000");
  set_name(bad_name, "\xff\xfe");
  CHECK(w->upsert(bad_name) == Status::invalid_value);
  Quote huge = make_quote("sh600000");
  for (flatbuffers::uoffset_t i = 0; i < 5; ++i) {
    huge.mutable_bids()->Mutate(i, Level(INT64_MAX, INT64_MAX));
    huge.mutable_asks()->Mutate(i, Level(INT64_MAX, INT64_MAX));
  }
  huge.mutate_high(INT64_MAX);
  huge.mutate_turnover(INT64_MAX);
  CHECK(w->upsert(huge) == Status::invalid_value);  // its JSON would not fit the record
  // Bytes after a field's terminator (a broken publisher; found by the fuzzer):
  // in the symbol they would make the record unfindable, in the name invisible.
  Quote junk_symbol = make_quote("sh600000", 103400);
  junk_symbol.mutable_symbol()->Mutate(12, 'X');
  CHECK(w->upsert(junk_symbol) == Status::invalid_symbol);
  Quote junk_name = make_quote("sh600000", 103400);
  set_name(junk_name, "ab");
  junk_name.mutable_name()->Mutate(20, 'X');
  CHECK(w->upsert(junk_name) == Status::invalid_value);
  CHECK(w->stats().rejected_symbol == 3);
  CHECK(w->stats().rejected_value == 5);
  auto r = must_open_reader(path);
  Quote q;
  REQUIRE(r->get("sh600000", &q) == Status::ok);
  CHECK(q.last() == 103300);
  CHECK(r->state().rejected == 8);
  CHECK(r->verify(nullptr) == 0);
}

TEST_CASE("a store too big for its filesystem is refused up front, not SIGBUS later") {
  TempDir dir;  // under /tmp; ask for far more than any test machine has
  Status st = Status::ok;
  std::string err;
  WriterOptions o;
  o.capacity = 60'000'000;  // ~59 GB
  auto shm_dir = std::string("/dev/shm/tickfan-nospace-") + std::to_string(::getpid());
  auto w = StoreWriter::open(shm_dir, o, &st, &err);
  ::unlink(shm_dir.c_str());
  CHECK(w == nullptr);
  CHECK(st == Status::no_space);
  CHECK(err.find("MiB") != std::string::npos);
}

TEST_CASE("footprint stays under 1 KiB per symbol, index and JSON included") {
  layout::Geometry g = layout::geometry_for(100000);
  CHECK(static_cast<double>(g.file_size) / 100000 <= 1024.0);
  g = layout::geometry_for(5000);
  CHECK(static_cast<double>(g.file_size - layout::kHeaderSize) / 5000 <= 1024.0);
}

// Replays, byte for byte, what upsert() does up to the middle of rewriting
// `slot`, then stops as a SIGKILL would: undo filled, record odd, half
// written. `damage_undo` also flips a byte of the undo copy's quote, as
// damage from outside the writer would.
namespace {
void die_mid_update(const std::string& path, uint32_t slot, bool damage_undo = false) {
  int fd = ::open(path.c_str(), O_RDWR);
  struct stat st {};
  ::fstat(fd, &st);
  void* base = ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  REQUIRE(base != MAP_FAILED);
  auto* h = static_cast<layout::Header*>(base);
  auto* recs = reinterpret_cast<layout::Record*>(static_cast<char*>(base) + h->records_offset);
  layout::Record& r = recs[slot];
  uint64_t useq = h->undo_seq.load();
  h->undo_seq.store(useq + 1);
  h->undo_slot.store(slot);
  std::memcpy(reinterpret_cast<char*>(&h->undo) + 8, reinterpret_cast<char*>(&r) + 8, layout::kPayloadWords * 8);
  h->undo.seq.store(r.seq.load());
  if (damage_undo) reinterpret_cast<char*>(&h->undo.quote)[40] ^= 1;
  h->undo_seq.store(useq + 2);
  r.seq.store(r.seq.load() + 1);  // odd: update in progress
  // Half-written: a dying writer rewrites the symbol with the same bytes,
  // so the damage starts after it (name, prices).
  std::memset(reinterpret_cast<char*>(&r.quote) + kSymbolMax, 0x5A, 100);
  char* json = static_cast<char*>(base) + layout::geometry_for(h->capacity).json_offset + slot * layout::kJsonCap;
  std::memset(json, 0x5A, 200);  // the JSON too: the undo copy does not hold it
  ::munmap(base, static_cast<size_t>(st.st_size));
  ::close(fd);
}
}  // namespace

TEST_CASE("a writer that died inside an update: readers serve the previous value, the next writer restores it") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  {
    auto w = must_open_writer(path);
    REQUIRE(w->upsert(make_quote("sh600000", 103300, 1000)) == Status::ok);
    REQUIRE(w->upsert(make_quote("sz000001", 95000, 500)) == Status::ok);
  }
  die_mid_update(path, 1);
  auto r = must_open_reader(path);
  CHECK_FALSE(r->state().writer_alive);
  Quote q;
  REQUIRE(r->get("sz000001", &q) == Status::ok);  // from the undo copy
  CHECK(q.last() == 95000);
  CHECK(quote_symbol(q) == "sz000001");
  CHECK(r->stats().undo_reads == 1);
  // Its JSON is rendered from the undo copy's quote.
  char expected[kQuoteJsonMax], json[kQuoteJsonMax];
  size_t expected_len = render_quote_json(make_quote("sz000001", 95000, 500), expected, sizeof expected);
  size_t len = 0;
  uint32_t slot = 0;
  REQUIRE(r->find("sz000001", &slot) == Status::ok);
  REQUIRE(r->read_json(slot, json, &len) == Status::ok);
  CHECK(std::string_view(json, len) == std::string_view(expected, expected_len));
  REQUIRE(r->get("sh600000", &q) == Status::ok);  // untouched neighbour
  CHECK(q.last() == 103300);
  std::string report;
  CHECK(r->verify(&report) == 1);  // the odd record is reported until repaired
  auto w = must_open_writer(path);
  CHECK(w->stats().repaired_on_open == 1);
  CHECK(r->verify(&report) == 0);
  REQUIRE(r->get("sz000001", &q) == Status::ok);
  CHECK(q.last() == 95000);
  REQUIRE(r->read_json(slot, json, &len) == Status::ok);  // re-rendered into the record by the repair
  CHECK(std::string_view(json, len) == std::string_view(expected, expected_len));
  CHECK(r->stats().undo_reads == 2);  // the two reads before the repair; this one read the record
  CHECK(r->state().repairs == 1);
}

// Maps a capacity-64 store file read-write, as a dying writer left it.
namespace {
struct RawStore {
  int fd = -1;
  size_t size = 0;
  char* base = nullptr;
  explicit RawStore(const std::string& path) {
    fd = ::open(path.c_str(), O_RDWR);
    struct stat st {};
    ::fstat(fd, &st);
    size = static_cast<size_t>(st.st_size);
    base = static_cast<char*>(::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
    REQUIRE(base != MAP_FAILED);
  }
  ~RawStore() {
    ::munmap(base, size);
    ::close(fd);
  }
  layout::Header* header() const { return reinterpret_cast<layout::Header*>(base); }
  layout::Geometry geometry() const { return layout::geometry_for(header()->capacity); }
  std::atomic<uint32_t>* index() const { return reinterpret_cast<std::atomic<uint32_t>*>(base + geometry().index_offset); }
  layout::Record& record(uint32_t slot) const {
    return reinterpret_cast<layout::Record*>(base + geometry().records_offset)[slot];
  }
};
}  // namespace

TEST_CASE("a writer killed between publishing a new slot and its index entry: the next writer indexes it") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  {
    auto w = must_open_writer(path);
    REQUIRE(w->upsert(make_quote("sh600000", 103300)) == Status::ok);
    REQUIRE(w->upsert(make_quote("sz000001", 95000)) == Status::ok);
  }
  {
    RawStore raw(path);  // `used` says 2, the index entry of slot 1 never landed
    int cleared = 0;
    for (uint32_t i = 0; i < raw.header()->index_size; ++i) {
      uint32_t e = raw.index()[i].load();
      if (e != 0 && layout::entry_slot(e) == 1) {
        raw.index()[i].store(0);
        ++cleared;
      }
    }
    REQUIRE(cleared == 1);
  }
  auto r = must_open_reader(path);
  uint32_t slot = 0;
  CHECK(r->find("sz000001", &slot) == Status::not_found);
  auto w = must_open_writer(path);
  CHECK(w->stats().reindexed_on_open == 1);
  REQUIRE(r->find("sz000001", &slot) == Status::ok);
  CHECK(slot == 1);
  Quote q;
  REQUIRE(r->read_quote(slot, &q) == Status::ok);
  CHECK(q.last() == 95000);
  CHECK(r->verify(nullptr) == 0);
}

TEST_CASE("a writer killed while filling a new slot leaves nothing behind, and the slot is reused") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  {
    auto w = must_open_writer(path);
    REQUIRE(w->upsert(make_quote("sh600000", 103300)) == Status::ok);
  }
  {
    RawStore raw(path);  // slot 1 half-filled, odd, `used` and the index not yet raised
    layout::Record& rec = raw.record(1);
    rec.seq.store(1);
    std::memset(reinterpret_cast<char*>(&rec) + 8, 0x5A, 200);
  }
  auto w = must_open_writer(path);
  auto r = must_open_reader(path);
  CHECK(r->used() == 1);
  CHECK(r->verify(nullptr) == 0);
  REQUIRE(w->upsert(make_quote("sz000002", 88000)) == Status::ok);
  uint32_t slot = 0;
  REQUIRE(r->find("sz000002", &slot) == Status::ok);
  CHECK(slot == 1);
  Quote q;
  uint64_t version = 0;
  REQUIRE(r->read_quote(slot, &q, &version) == Status::ok);
  CHECK(q.last() == 88000);
  CHECK(quote_symbol(q) == "sz000002");
  CHECK(r->verify(nullptr) == 0);
}

TEST_CASE("a live writer stalled inside an update does not block readers: they serve the previous version") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path);
  REQUIRE(w->upsert(make_quote("sh600000", 103300, 1000)) == Status::ok);
  REQUIRE(w->upsert(make_quote("sz000001", 95000, 500)) == Status::ok);
  die_mid_update(path, 1);  // the state a writer descheduled mid-rewrite leaves, with its lock still held
  auto r = must_open_reader(path);
  CHECK(r->state().writer_alive);
  Quote q;
  uint64_t version = 0;
  uint32_t slot = 0;
  REQUIRE(r->find("sz000001", &slot) == Status::ok);
  int64_t t0 = tickfan::mono_ns();
  REQUIRE(r->read_quote(slot, &q, &version) == Status::ok);
  int64_t took_ms = (tickfan::mono_ns() - t0) / 1000000;
  CHECK(took_ms < 200);  // was a 250 ms wait, then `busy` (margin for a preempted test thread)
  CHECK(q.last() == 95000);
  CHECK(version == 1);  // the version before the update in progress
  CHECK(r->stats().undo_reads == 1);
  CHECK(r->stats().busy == 0);
}

TEST_CASE("an undo copy damaged from outside is neither served nor restored") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  {
    auto w = must_open_writer(path);
    REQUIRE(w->upsert(make_quote("sh600000", 103300, 1000)) == Status::ok);
    REQUIRE(w->upsert(make_quote("sz000001", 95000, 500)) == Status::ok);
  }
  die_mid_update(path, 1, /*damage_undo=*/true);
  auto r = must_open_reader(path);
  Quote q;
  CHECK(r->get("sz000001", &q) == Status::torn);  // reported, not guessed
  CHECK(r->stats().undo_reads == 0);
  REQUIRE(r->get("sh600000", &q) == Status::ok);
  auto w = must_open_writer(path);
  CHECK(w->stats().damaged_on_open >= 1);
  CHECK(w->stats().repaired_on_open == 0);
  CHECK(r->state().repairs == 0);
  // The repair closed the record but marked it damaged: still torn for
  // readers (an earlier version published half an update as valid).
  CHECK(r->get("sz000001", &q) == Status::torn);
  REQUIRE(r->get("sh600000", &q) == Status::ok);
  REQUIRE(w->upsert(make_quote("sz000001", 96000, 600)) == Status::ok);  // the next update heals it
  REQUIRE(r->get("sz000001", &q) == Status::ok);
  CHECK(q.last() == 96000);
  CHECK(r->verify(nullptr) == 0);
}

TEST_CASE("a writer that died inside the undo copy does not invert the undo seqlock for the next writer") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  must_open_writer(path)->upsert(make_quote("sh600000", 103300));
  auto poke_undo_seq = [&](uint64_t* value, bool write) {
    int fd = ::open(path.c_str(), O_RDWR);
    off_t at = static_cast<off_t>(offsetof(layout::Header, undo_seq));
    if (write) {
      REQUIRE(::pwrite(fd, value, sizeof *value, at) == sizeof *value);
    } else {
      REQUIRE(::pread(fd, value, sizeof *value, at) == sizeof *value);
    }
    ::close(fd);
  };
  uint64_t odd = 41;  // as left by a SIGKILL between the undo's two seq stores
  poke_undo_seq(&odd, true);
  {
    auto w = must_open_writer(path);
    REQUIRE(w->upsert(make_quote("sh600000", 104000)) == Status::ok);
  }
  uint64_t after = 0;
  poke_undo_seq(&after, false);
  CHECK(after % 2 == 0);
  CHECK(after > odd);
}

TEST_CASE("verify finds damage the seqlock cannot: a flipped quote byte, a flipped JSON byte") {
  TempDir dir;
  const std::string path = two_quote_store(dir);
  auto r = must_open_reader(path);
  std::string report;
  REQUIRE(r->verify(&report) == 0);
  flip_bit(path, 0, false, layout::kQuoteOffset + 100);  // inside the quote: the checksum catches it
  CHECK(r->verify(&report) == 1);
  CHECK(report.find("checksum mismatch") != std::string::npos);
  flip_bit(path, 0, false, layout::kQuoteOffset + 100);  // undone
  report.clear();
  flip_bit(path, 1, true, 20);  // inside the JSON: re-rendering catches it
  CHECK(r->verify(&report) == 1);
  CHECK(report.find("sz000001") != std::string::npos);
  CHECK(report.find("JSON differs") != std::string::npos);
}

TEST_CASE("apply_batch calls the observer after each quote, when that quote is already readable") {
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  auto w = must_open_writer(path);
  auto r = must_open_reader(path);
  Quote bad = make_quote("sz000002", 100);
  bad.mutate_volume(-1);  // invalid: skipped, reported to the observer
  std::vector<Quote> batch = {make_quote("sh600000", 103300, 1), bad, make_quote("sz000001", 95000, 2)};
  struct Seen {
    StoreReader* reader;
    const std::vector<Quote>* batch;
    std::vector<std::pair<size_t, Status>> calls;
    int readable = 0;
  } seen{r.get(), &batch, {}, 0};
  auto observe = [](void* ctx, size_t i, Status st) {
    auto* s = static_cast<Seen*>(ctx);
    s->calls.emplace_back(i, st);
    Quote q;
    if (st == Status::ok && s->reader->get(quote_symbol((*s->batch)[i]), &q) == Status::ok &&
        q.last() == (*s->batch)[i].last())
      ++s->readable;
  };
  size_t applied = 0;
  CHECK(w->apply_batch(batch, 7, 1, &applied, observe, &seen) == Status::invalid_value);
  CHECK(applied == 2);
  REQUIRE(seen.calls.size() == 3);
  CHECK(seen.calls[0] == std::pair<size_t, Status>{0, Status::ok});
  CHECK(seen.calls[1] == std::pair<size_t, Status>{1, Status::invalid_value});
  CHECK(seen.calls[2] == std::pair<size_t, Status>{2, Status::ok});
  CHECK(seen.readable == 2);
  CHECK(r->state().sequence == 1);
}

TEST_CASE("the key packs any symbol length exactly like a zero-padded copy") {
  std::mt19937 rng(5);
  for (size_t n = 1; n <= kSymbolMax; ++n) {
    for (int round = 0; round < 50; ++round) {
      std::string s(n + 8, '\0');  // bytes past the symbol must not leak in
      for (char& c : s) c = static_cast<char>(rng());
      std::string_view sym(s.data(), n);
      detail::Key k;
      REQUIRE(detail::Key::from(sym, &k));
      uint64_t expected[2] = {0, 0};
      std::memcpy(expected, sym.data(), n);
      INFO("length ", n);
      CHECK(k.w[0] == expected[0]);
      CHECK(k.w[1] == expected[1]);
    }
  }
  detail::Key k;
  CHECK_FALSE(detail::Key::from("", &k));
  CHECK_FALSE(detail::Key::from("a-symbol-17-long!", &k));
}

TEST_CASE("the index keeps probes short for market-shaped symbols") {
  // 20 000 A-share-like codes plus exchange-suffixed and US-style tickers:
  // the patterns a weak hash would cluster.
  TempDir dir;
  std::string path = dir.file("s.tfstore");
  constexpr uint32_t kSymbols = 20000;
  auto w = must_open_writer(path, kSymbols);
  for (uint32_t i = 0; i < kSymbols; ++i) {
    std::string sym = i % 4 == 0   ? "sh" + std::to_string(600000 + i)
                      : i % 4 == 1 ? "sz" + std::to_string(i)
                      : i % 4 == 2 ? std::to_string(100000 + i) + ".XSHE"
                                   : "us" + std::string(1, static_cast<char>('A' + i % 26)) + std::to_string(i);
    REQUIRE(w->upsert(make_quote(sym)) == Status::ok);
  }
  auto r = must_open_reader(path);
  uint32_t max_probe = 0;
  double mean_probe = 0;
  r->probe_lengths(&max_probe, &mean_probe);
  MESSAGE("probe length mean ", mean_probe, ", max ", max_probe);
  CHECK(mean_probe < 1.5);  // linear probing at load <= 0.5 with a good hash: ~1.5 expected at worst
  CHECK(max_probe < 32);
}

TEST_CASE("reopening writer re-renders a damaged JSON and reports a damaged record until its next update") {
  TempDir dir;
  const std::string path = two_quote_store(dir);
  flip_bit(path, 0, false, layout::kQuoteOffset + 100);  // sh600000's quote: no good copy left
  flip_bit(path, 1, true, 20);                           // sz000001's JSON: derivable from its quote
  auto r = must_open_reader(path);
  std::string report;
  CHECK(r->verify(&report) == 2);
  {
    auto w = must_open_writer(path);
    CHECK(w->stats().rerendered_on_open == 1);
    CHECK(w->stats().damaged_on_open == 1);
    report.clear();
    CHECK(r->verify(&report) == 1);  // the JSON is whole again; the damaged quote stays reported
    CHECK(report.find("sh600000") != std::string::npos);
    REQUIRE(w->upsert(make_quote("sh600000", 104000)) == Status::ok);  // its next update replaces it
    CHECK(r->verify(&report) == 0);
  }
  char json[kQuoteJsonMax], expected[kQuoteJsonMax];
  size_t len = 0;
  uint32_t slot = 0;
  REQUIRE(r->find("sz000001", &slot) == Status::ok);
  REQUIRE(r->read_json(slot, json, &len) == Status::ok);
  size_t expected_len = render_quote_json(make_quote("sz000001", 95000), expected, sizeof expected);
  CHECK(std::string_view(json, len) == std::string_view(expected, expected_len));
}
