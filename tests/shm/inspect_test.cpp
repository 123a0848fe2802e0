// inspect_test.cpp — the store inspector (tickfan-store, shm/inspect.cpp) as
// an operator runs it: the real binary against a real store, its output and
// its exit codes.
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <string>
#include <vector>

#include "process.h"
#include "store.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::shm;
using namespace tickfan::testing;

namespace {
// Runs tickfan-store with `args`; returns the exit status, output in *out.
int inspect(const TempDir& dir, const std::vector<std::string>& args, std::string* out) {
  static int n = 0;
  std::string log = dir.file("inspect" + std::to_string(++n) + ".out");
  std::vector<std::string> argv = {binary("shm/tickfan-store")};
  argv.insert(argv.end(), args.begin(), args.end());
  ChildProcess p(argv, log);
  int status = p.wait(5000);
  *out = read_file(log);
  return status;
}
}  // namespace

TEST_CASE("tickfan-store: stat, get, dump and verify on a store; exit 1 for a missing symbol, 2 for usage errors") {
  TempDir dir;
  const std::string path = dir.file("s.tfstore");
  {
    Status st;
    std::string err;
    auto w = StoreWriter::open(path, WriterOptions{64, 0640}, &st, &err);
    REQUIRE(w);
    REQUIRE(w->upsert(make_quote("sh600000", 123400, 10)) == Status::ok);
    REQUIRE(w->upsert(make_quote("sz000001", 56700, 20)) == Status::ok);
  }
  std::string out;
  CHECK(exited_with(inspect(dir, {"stat", path}, &out), 0));
  CHECK_MESSAGE(out.find("capacity") != std::string::npos, out);
  CHECK(exited_with(inspect(dir, {"get", path, "sh600000"}, &out), 0));
  CHECK_MESSAGE(out.find("\"symbol\":\"sh600000\"") != std::string::npos, out);
  CHECK_MESSAGE(out.find("\"last\":12.34") != std::string::npos, out);
  CHECK(exited_with(inspect(dir, {"dump", path}, &out), 0));
  CHECK_MESSAGE(out.find("sz000001") != std::string::npos, out);
  CHECK(exited_with(inspect(dir, {"verify", path}, &out), 0));
  // Not stored: 1, named.
  CHECK(exited_with(inspect(dir, {"get", path, "sh999999"}, &out), 1));
  CHECK_MESSAGE(out.find("sh999999: not_found") != std::string::npos, out);
  // Usage errors are 2 (they were CLI11's 106 and 109).
  CHECK(exited_with(inspect(dir, {}, &out), 2));
  CHECK(exited_with(inspect(dir, {"dump"}, &out), 2));
  CHECK_MESSAGE(out.find("path is required") != std::string::npos, out);
  // A store that cannot be opened: 2, named; a FIFO is refused, not waited on.
  CHECK(exited_with(inspect(dir, {"stat", dir.file("missing")}, &out), 2));
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  CHECK(exited_with(inspect(dir, {"stat", dir.file("fifo")}, &out), 2));
  CHECK_MESSAGE(out.find("not a regular file") != std::string::npos, out);
}
