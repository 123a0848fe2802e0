// e2e_test.cpp — tickfan-record and tickfan-replay as operators run them,
// against real processes: a nats-server on a free loopback port, the real
// apiserver and apiclient binaries.
//
// The headline check: record system A (fed the sample tick file), replay the
// recording into a fresh system B, and the two stores hold the same records.
// Compared per symbol: the whole 288-byte Quote with receive_ts_ns zeroed
// (each apiserver stamps its own receive time, by design), and the rendered
// JSON the HTTP frontend serves (which carries no receive time); plus the
// symbol count. Both are also checked against the last tick of each symbol
// in the sample file, so "equal" cannot mean "equally empty".
#include <doctest/doctest.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <regex>
#include <sstream>
#include <thread>

#include "nats_server.h"
#include "process.h"
#include "store.h"
#include "tick_input.h"

using namespace tickfan;
using namespace tickfan::testing;

namespace {

const std::string kSample = std::string(TICKFAN_SOURCE_DIR) + "/tests/data/ticks-sample.csv";

// Last quote per symbol of the sample, as the apiserver would normalise it.
std::map<std::string, Quote> expected_final() {
  std::string err;
  auto in = tools::TickInput::open(kSample, &err);
  REQUIRE(in);
  std::map<std::string, Quote> out;
  tools::TickEvent ev;
  while (in->next(&ev)) out[std::string(quote_symbol(ev.quote))] = ev.quote;
  return out;
}

Quote without_receive_ts(Quote q) {
  q.mutate_receive_ts_ns(0);
  return q;
}

// True once `path` holds every expected symbol at its final exchange timestamp.
bool store_reached(const std::string& path, const std::map<std::string, Quote>& want) {
  shm::Status st;
  std::string err;
  auto r = shm::StoreReader::open(path, &st, &err);
  if (!r || r->used() != want.size()) return false;
  for (const auto& [sym, q] : want) {
    Quote got;
    if (r->get(sym, &got) != shm::Status::ok || got.exchange_ts_ns() != q.exchange_ts_ns()) return false;
  }
  return true;
}

// Runs a command line through /bin/sh, returning stdout; *status gets the
// exit status. For short-lived tool runs only.
std::string run(const std::string& cmd, int* status) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p);
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  int rc = pclose(p);
  *status = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  return out;
}

std::vector<std::string> lines_of(const std::string& s) {
  std::vector<std::string> out;
  std::istringstream in(s);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

int64_t ts_ns_of(const std::string& jsonl) {
  auto at = jsonl.find("\"ts_ns\":");
  REQUIRE(at != std::string::npos);
  return std::stoll(jsonl.substr(at + 8));
}

const std::string kReplay = binary("tools/tickfan-replay");

}  // namespace

TEST_CASE("replaying a recording into a fresh system reproduces the same store, record for record") {
  TempDir dir;
  const auto want = expected_final();
  REQUIRE(want.size() == 10);
  const std::string rec = dir.file("a.tfr");
  const std::string store_a = dir.file("a.store"), store_b = dir.file("b.store");
  const std::vector<std::string> client_flags = {"--metrics-port", "0",  "--retry-min-ms", "50",
                                                 "--retry-max-ms", "300"};

  // --- system A: apiserver fed by the sample file, recorded ---------------
  {
    NatsServer nats;
    ChildProcess recorder({binary("tools/tickfan-record"), "--nats", nats.url(), "-o", rec, "--progress-s", "0"},
                          dir.file("record.log"));
    REQUIRE(wait_until(
        [&] { return read_file(dir.file("record.log")).find("recording tickfan.q.>") != std::string::npos; }, 10000));
    std::vector<std::string> client = {binary("apiclient/writer/tickfan-apiclient"), "--store", store_a, "--nats",
                                       nats.url()};
    client.insert(client.end(), client_flags.begin(), client_flags.end());
    ChildProcess apiclient(client, dir.file("apiclient-a.log"));
    ChildProcess apiserver({binary("apiserver/tickfan-apiserver"), "--nats", nats.url(), "--source", "file:" + kSample,
                            "--metrics-port", "0"},
                           dir.file("apiserver-a.log"));
    CHECK_MESSAGE(wait_until([&] { return store_reached(store_a, want); }, 20000),
                  read_file(dir.file("apiclient-a.log")), read_file(dir.file("apiserver-a.log")));
    int rs = recorder.stop(SIGINT, 10000);
    std::string log = read_file(dir.file("record.log"));
    CHECK_MESSAGE(exited_with(rs, 0), log);
    CHECK(log.find("0 dropped") != std::string::npos);
    // A clean stop closes the connection itself: no warning of lost messages
    // (every stop used to log "disconnected from NATS: ... not recorded").
    CHECK_MESSAGE(log.find("disconnected from NATS") == std::string::npos, log);
    apiserver.stop();
    apiclient.stop();
  }

  // The recording holds exactly the sample's 300 ticks, in delta batches.
  int status = 0;
  std::string lines = run(kReplay + " " + rec + " --speed max 2>/dev/null", &status);
  CHECK(status == 0);
  CHECK(lines_of(lines).size() == 300);

  // --- system B: a fresh NATS + apiclient, fed by replaying the recording
  // over TCP into a fresh apiserver --------------------------------------------
  {
    NatsServer nats;
    std::vector<std::string> client = {binary("apiclient/writer/tickfan-apiclient"), "--store", store_b, "--nats",
                                       nats.url()};
    client.insert(client.end(), client_flags.begin(), client_flags.end());
    ChildProcess apiclient(client, dir.file("apiclient-b.log"));
    ChildProcess replay({kReplay, rec, "--speed", "max", "--listen", "0"}, dir.file("replay.log"));
    std::smatch m;
    std::string log;
    static const std::regex kListening("listening on 127\\.0\\.0\\.1:([0-9]+)");
    REQUIRE(
        wait_until([&] { return std::regex_search(log = read_file(dir.file("replay.log")), m, kListening); }, 10000));
    ChildProcess apiserver({binary("apiserver/tickfan-apiserver"), "--nats", nats.url(), "--source",
                            "tcp://127.0.0.1:" + m[1].str(), "--metrics-port", "0"},
                           dir.file("apiserver-b.log"));
    CHECK(exited_with(replay.wait(15000), 0));
    CHECK_MESSAGE(wait_until([&] { return store_reached(store_b, want); }, 20000),
                  read_file(dir.file("apiclient-b.log")), read_file(dir.file("apiserver-b.log")));
    apiserver.stop();
    apiclient.stop();
  }

  // --- compare the stores record for record ---------------------------------
  shm::Status st;
  std::string err;
  auto a = shm::StoreReader::open(store_a, &st, &err);
  auto b = shm::StoreReader::open(store_b, &st, &err);
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->used() == b->used());
  CHECK(a->used() == want.size());
  size_t compared = 0;
  for (uint32_t slot = 0; slot < a->used(); ++slot) {
    Quote qa, qb;
    char ja[kQuoteJsonMax], jb[kQuoteJsonMax];
    size_t la = 0, lb = 0;
    REQUIRE(a->read(slot, &qa, ja, &la) == shm::Status::ok);
    std::string sym(quote_symbol(qa));
    CAPTURE(sym);
    uint32_t slot_b = 0;
    REQUIRE(b->find(sym, &slot_b) == shm::Status::ok);
    REQUIRE(b->read(slot_b, &qb, jb, &lb) == shm::Status::ok);
    Quote na = without_receive_ts(qa), nb = without_receive_ts(qb), nw = without_receive_ts(want.at(sym));
    CHECK(std::memcmp(&na, &nb, sizeof(Quote)) == 0);
    CHECK(std::memcmp(&na, &nw, sizeof(Quote)) == 0);
    CHECK(std::string_view(ja, la) == std::string_view(jb, lb));
    ++compared;
  }
  CHECK(compared == 10);
}

TEST_CASE("replay of a tick file: window, loops shifted by the period, pace and progress lines") {
  int status = 0;
  // The whole file at full speed: 300 lines, ts_ns as in the file.
  auto all = lines_of(run(kReplay + " " + kSample + " --speed max 2>/dev/null", &status));
  REQUIRE(status == 0);
  REQUIRE(all.size() == 300);
  const int64_t first = ts_ns_of(all.front()), last = ts_ns_of(all.back());
  CHECK(first == 1717378200000000000);

  // --from/--to: relative offsets and absolute UTC select the same window.
  auto rel = lines_of(run(kReplay + " " + kSample + " --speed max --from 10s --to 20s 2>/dev/null", &status));
  auto abs = lines_of(
      run(kReplay + " " + kSample + " --speed max --from 2024-06-03T01:30:10Z --to 2024-06-03T01:30:20Z 2>/dev/null",
          &status));
  CHECK(status == 0);
  CHECK(rel == abs);
  CHECK(rel.size() > 80);
  CHECK(rel.size() < 120);
  for (const auto& l : rel) {
    CHECK(ts_ns_of(l) >= first + 10'000'000'000);
    CHECK(ts_ns_of(l) <= first + 20'000'000'000);
  }

  // Three passes: pass k is pass 0 shifted by k periods, so every symbol's
  // timestamps keep increasing (the apiserver would drop older ones as stale).
  auto looped = lines_of(run(kReplay + " " + kSample + " --speed max --loops 3 2>/dev/null", &status));
  REQUIRE(looped.size() == 900);
  const int64_t period = ts_ns_of(looped[300]) - ts_ns_of(looped[0]);
  CHECK(period > last - first);
  CHECK(period < last - first + 1'000'000'000);
  for (size_t i = 0; i < 300; ++i) {
    CHECK(ts_ns_of(looped[600 + i]) - ts_ns_of(looped[i]) == 2 * period);
    // Apart from the timestamp the lines are identical.
    std::string a = looped[i], c = looped[600 + i];
    a.erase(a.find("\"ts_ns\":"), a.find(",\"bid\"") - a.find("\"ts_ns\":"));
    c.erase(c.find("\"ts_ns\":"), c.find(",\"bid\"") - c.find("\"ts_ns\":"));
    CHECK(a == c);
  }

  // Pace: a 10 s window at 10x takes about a second, with plain progress
  // lines on a non-terminal stderr.
  TempDir dir;
  auto t0 = std::chrono::steady_clock::now();
  auto paced =
      lines_of(run(kReplay + " " + kSample + " --from 5s --to 15s --speed 10 --format csv --progress-s 0.2 2>" +
                       dir.file("progress.txt"),
                   &status));
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(status == 0);
  CHECK(paced.front().rfind("symbol,name,market", 0) == 0);  // CSV header first
  CHECK(paced.size() > 80);
  CHECK(took > 0.9);
  CHECK(took < 4.0);
  std::string progress = read_file(dir.file("progress.txt"));
  CAPTURE(progress);
  CHECK(progress.find("\r") == std::string::npos);
  CHECK(std::regex_search(progress,
                          std::regex("replay: [0-9]+/[0-9]+ ticks \\([0-9.]+%\\), at [0-9:.]+ of 0:[0-9.]+, [0-9]+ "
                                     "ticks/s, ETA [0-9:.]+\n")));
  CHECK(progress.find("(done)") != std::string::npos);
}

TEST_CASE("replay refuses what it cannot do, with a message") {
  int status = 0;
  TempDir dir;
  std::string out = run(kReplay + " " + kSample + " --from 1h 2>&1", &status);
  CHECK(status == 1);
  CHECK(out.find("no ticks between --from and --to") != std::string::npos);
  out = run(kReplay + " " + kSample + " --speed fast 2>&1", &status);
  CHECK(status == 2);
  out = run(kReplay + " " + kSample + " --from yesterday 2>&1", &status);
  CHECK(status == 2);
  CHECK(out.find("'yesterday' is not a time") != std::string::npos);
}

TEST_CASE("record -o a FIFO nobody reads fails at once instead of hanging deaf to SIGTERM") {
  // Old behaviour: fopen() of the FIFO blocked waiting for a reader, after
  // the stop signals were blocked: the recorder hung for good and SIGTERM did
  // nothing (SIGKILL needed).
  TempDir dir;
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  ChildProcess rec({binary("tools/tickfan-record"), "--nats", "nats://127.0.0.1:1", "-o", dir.file("fifo")},
                   dir.file("log"));
  int status = rec.wait(3000);
  if (status == -1) status = rec.stop(SIGTERM, 1000);
  CHECK_MESSAGE(exited_with(status, 1), read_file(dir.file("log")));
  CHECK_MESSAGE(read_file(dir.file("log")).find("(a FIFO with no reader)") != std::string::npos,
                read_file(dir.file("log")));
}

TEST_CASE("the tools' usage errors exit 2 with a message; nonsense numbers are usage errors") {
  // Old behaviour: CLI11's own exit codes (105 for --loops 0, 106 for an
  // unknown option); record --duration nan or -5 recorded until stopped,
  // --count -1 meant no limit, --progress-s 1e300 printed every 100 ms, a
  // --log-level typo was "info"; replay --speed took "5x" as 5, "nan" as max,
  // 1e-300 overflowed the pacing clock; a FIFO as replay input blocked.
  // Every run is bounded by timeout(1): the old code could block or pace for ever.
  TempDir dir;
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  const std::string record =
      "timeout -k 1 5 " + binary("tools/tickfan-record") + " --nats nats://127.0.0.1:1 -o " + dir.file("x.tfr") + " ";
  for (const char* bad : {"--duration nan", "--duration -5", "--count -1", "--progress-s 1e300", "--progress-s nan",
                          "--log-level bogus", "--bogus"}) {
    CAPTURE(bad);
    int status = 0;
    std::string out = run(record + bad + " 2>&1", &status);
    CHECK_MESSAGE(status == 2, out);
  }
  const std::string replay = "timeout -k 1 5 " + kReplay + " ";
  for (std::string bad : {"--speed nan", "--speed 5x", "--speed 1e-300", "--speed inf", "--progress-s nan",
                          "--log-level x", "--loops 0", "--bogus", "--listen 0 --listen-host localhost"}) {
    CAPTURE(bad);
    int status = 0;
    std::string out = run(replay + kSample + " " + bad + " 2>&1 >/dev/null", &status);
    CHECK_MESSAGE(status == 2, out);
  }
  int status = 0;
  std::string out = run(replay + dir.file("fifo") + " 2>&1", &status);
  CHECK(status == 2);
  CHECK_MESSAGE(out.find("Not a regular file") != std::string::npos, out);
  out = run(replay + kSample + " --speed 0 2>/dev/null", &status);  // 0 still means max
  CHECK(status == 0);
  CHECK(lines_of(out).size() == 300);
}

TEST_CASE("replay blocked on a reader that stopped reading still stops on SIGTERM") {
  // Old behaviour: the signal cut a blocked write short (a partial write, not
  // EINTR), write_all wrote the rest and blocked again, for good.
  TempDir dir;
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  int rd = ::open(dir.file("fifo").c_str(), O_RDONLY | O_NONBLOCK);  // a reader that never reads
  REQUIRE(rd >= 0);
  ChildProcess replay(
      {"/bin/sh", "-c", "exec " + kReplay + " " + kSample + " --loop --speed max > " + dir.file("fifo")},
      dir.file("log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(700));  // the pipe is full long before
  replay.signal(SIGTERM);
  int status = replay.wait(2000);
  CHECK_MESSAGE(exited_with(status, 128 + SIGTERM), read_file(dir.file("log")));
  ::close(rd);
  // The stop itself is no error: it used to be logged as "stdout closed (the
  // apiserver exited?)" with a stale errno.
  CHECK_MESSAGE(read_file(dir.file("log")).find("stdout closed") == std::string::npos, read_file(dir.file("log")));
}

TEST_CASE("replay loops stop where shifted timestamps would pass int64 nanoseconds") {
  // Old behaviour: pass k added k loop periods to every timestamp with no
  // bound, so long windows looped often enough wrapped to negative times.
  TempDir dir;
  {
    std::FILE* f = std::fopen(dir.file("day.csv").c_str(), "w");
    REQUIRE(f);
    // Two ticks a day apart: a loop period of two days.
    std::fputs(
        "symbol,name,prev_close,open,high,low,last,volume,turnover,ts\n"
        "sh600000,x,7.12,7.09,7.09,7.07,7.07,1600,11312.00,1717378200000\n"
        "sh600000,x,7.12,7.09,7.09,7.07,7.07,1700,12019.00,1717464600000\n",
        f);
    std::fclose(f);
  }
  // (INT64_MAX - 1717464600000000000) / 172800000000000 = 43 436: shifts of
  // 0 .. 43 436 periods fit, 43 437 passes.
  int status = 0;
  std::string out = run(
      "timeout -k 1 10 " + kReplay + " " + dir.file("day.csv") + " --speed max --loops 43438 2>&1 >/dev/null", &status);
  CHECK_MESSAGE(status == 1, out);
  CHECK_MESSAGE(out.find("at most 43437 passes") != std::string::npos, out);
  auto lines = lines_of(run(
      "timeout -k 1 10 " + kReplay + " " + dir.file("day.csv") + " --speed max --loops 43437 2>/dev/null", &status));
  CHECK(status == 0);
  REQUIRE(lines.size() == 2 * 43437);
  CHECK(ts_ns_of(lines.back()) == 1717464600000000000 + int64_t{43436} * 172800000000000);
  // An endless loop ends there with an error, not with wrapped stamps.
  out = run("timeout -k 1 10 " + kReplay + " " + dir.file("day.csv") + " --speed max --loop 2>&1 >/dev/null", &status);
  CHECK_MESSAGE(status == 1, out);
  CHECK_MESSAGE(out.find("pass 43438 would shift times past what int64 nanoseconds hold") != std::string::npos, out);
}
