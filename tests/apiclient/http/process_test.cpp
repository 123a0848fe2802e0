// process_test.cpp — the process model: a killed worker is restarted while
// the others keep serving; the writer gone means stale data still served
// with its age, and /readyz 503; workers pinned one per CPU serve each
// connection on its client's CPU; per-worker ports.
#include <arpa/inet.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "fixture.h"

using namespace tickfan::testing;

namespace {
int pid_of(const HttpResponse& r) {
  size_t p = r.body.find("\"pid\":");
  return p == std::string::npos ? 0 : std::stoi(r.body.substr(p + 6));
}
int worker_of(const HttpResponse& r) {
  size_t p = r.body.find("\"worker\":");
  return p == std::string::npos ? -1 : std::stoi(r.body.substr(p + 9));
}

// The CPUs this thread may run on; the server's workers inherit the same set.
std::vector<int> allowed_cpus() {
  cpu_set_t set;
  std::vector<int> cpus;
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int i = 0; i < CPU_SETSIZE; ++i)
      if (CPU_ISSET(i, &set)) cpus.push_back(i);
  return cpus;
}

// Runs this thread on `cpu` until destroyed, then on the CPUs it had.
struct OnCpu {
  cpu_set_t saved;
  explicit OnCpu(int cpu) {
    sched_getaffinity(0, sizeof saved, &saved);
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    sched_setaffinity(0, sizeof one, &one);
  }
  ~OnCpu() { sched_setaffinity(0, sizeof saved, &saved); }
};

// Worker pids seen over fresh connections. Each attempt connects from the
// next CPU in turn: with one worker per CPU, a new connection goes to the
// worker of the CPU it comes from (--cpu-affinity auto), otherwise
// SO_REUSEPORT hashes its ports; either way a few dozen reach every worker.
std::set<int> worker_pids(int port, size_t want) {
  std::vector<int> cpus = allowed_cpus();
  std::set<int> pids;
  for (size_t i = 0; i < 200 && pids.size() < want; ++i) {
    OnCpu on(cpus[i % cpus.size()]);
    int pid = pid_of(http_get(port, "/healthz"));
    if (pid) pids.insert(pid);
  }
  return pids;
}
}  // namespace

TEST_CASE("a killed worker is restarted and the other worker keeps serving") {
  HttpFixture f;
  f.expect_worker_deaths = true;
  std::set<int> before;
  // The fixture waited for one worker; the other may still be starting.
  REQUIRE(wait_until([&] { return (before = worker_pids(f.port, 2)).size() == 2; }, 5000));
  // A keep-alive connection to one worker, opened before the kill; the
  // other worker is the victim.
  const std::string healthz = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  std::unique_ptr<RawConn> kept;
  int survivor = 0;
  for (int i = 0; i < 50 && !survivor; ++i) {
    auto c = std::make_unique<RawConn>(f.port);
    if (!c->send(healthz)) continue;
    survivor = pid_of(c->read());
    if (survivor) kept = std::move(c);
  }
  REQUIRE(survivor != 0);
  int victim = survivor == *before.begin() ? *before.rbegin() : *before.begin();
  ::kill(victim, SIGKILL);
  // The survivor's open connection is unaffected: every request on it is
  // answered, by the survivor.
  int kept_served = 0;
  for (int i = 0; i < 20; ++i) {
    if (!kept->send(healthz)) break;
    auto r = kept->read();
    kept_served += r.status == 200 && pid_of(r) == survivor;
  }
  CHECK(kept_served == 20);
  // Meanwhile new connections reach a live worker (the victim's queued
  // ones may be reset).
  int served = 0;
  for (int i = 0; i < 20; ++i) served += http_get(f.port, "/v1/quotes/sh600000").status == 200;
  CHECK(served > 0);
  bool restarted = wait_until(
      [&] {
        auto now = worker_pids(f.port, 2);
        return now.size() == 2 && !now.count(victim);
      },
      10000);
  CHECK(restarted);
  // Once it is back, every new connection is served.
  int after = 0;
  for (int i = 0; i < 20; ++i) after += http_get(f.port, "/v1/quotes/sh600000").status == 200;
  CHECK(after == 20);
  CHECK(f.log().find("killed by signal 9") != std::string::npos);
  CHECK(f.server.running());
}

TEST_CASE("with one worker per CPU, a connection is served by the worker of the CPU its client runs on") {
  std::vector<int> cpus = allowed_cpus();
  if (cpus.size() < 2) {
    MESSAGE("skipped: needs 2 CPUs");
    return;
  }
  // As many workers as CPUs: worker i is pinned to cpus[i].
  HttpFixture f({}, 40, static_cast<int>(cpus.size()));
  std::unique_ptr<RawConn> c;
  auto worker_now = [&] {
    if (!c->send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")) return -2;
    return worker_of(c->read());
  };
  {
    // A new connection lands on the worker of its CPU (SO_INCOMING_CPU
    // listeners; kernels before 6.2 hash it and the hand-over below fixes it).
    OnCpu on(cpus[0]);
    c = std::make_unique<RawConn>(f.port);
    REQUIRE(c->ok());
    CHECK(wait_until([&] { return worker_now() == 0; }, 5000));
  }
  {
    // The client moves to another CPU: within a few sweeps (250 ms) the
    // connection is handed to that CPU's worker, without a request lost.
    OnCpu on(cpus[1]);
    int lost = 0;
    CHECK(wait_until(
        [&] {
          int w = worker_now();
          lost += w < 0;
          return w == 1;
        },
        5000));
    CHECK(lost == 0);
    // It stays there and keeps serving.
    for (int i = 0; i < 5; ++i) CHECK(worker_now() == 1);
  }
  CHECK(f.log().find("SO_INCOMING_CPU") == std::string::npos);  // no warning
}

TEST_CASE("--cpu-affinity off: a connection stays with the worker that accepted it") {
  std::vector<int> cpus = allowed_cpus();
  if (cpus.size() < 2) {
    MESSAGE("skipped: needs 2 CPUs");
    return;
  }
  HttpFixture f({"--cpu-affinity", "off"}, 40, static_cast<int>(cpus.size()));
  RawConn c(f.port);
  REQUIRE(c.ok());
  int first = -1;
  for (int i = 0; i < 8; ++i) {
    OnCpu on(cpus[static_cast<size_t>(i) % 2]);
    REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
    int w = worker_of(c.read());
    if (first < 0) first = w;
    CHECK(w == first);
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
}

TEST_CASE("--worker-port-base: worker i also answers alone on base + i, so each worker's /metrics can be scraped") {
  // Two consecutive free ports.
  int base = 0;
  for (int i = 0; i < 50 && !base; ++i) {
    int p = free_port();
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(p + 1));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (p < 65535 && bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0) base = p;
    close(fd);
  }
  REQUIRE(base > 0);
  HttpFixture f({"--worker-port-base", std::to_string(base)}, 40, 2);
  for (int w = 0; w < 2; ++w) {
    REQUIRE(wait_until([&] { return http_get(base + w, "/healthz").status == 200; }, 5000));
    for (int i = 0; i < 5; ++i) CHECK(worker_of(http_get(base + w, "/healthz")) == w);
    std::string m = http_get(base + w, "/metrics").body;
    CHECK(m.find("tickfan_http_connections{worker=\"" + std::to_string(w) + "\"}") != std::string::npos);
    // A keep-alive connection there stays with its worker, wherever its client runs.
    RawConn c(base + w);
    REQUIRE(c.ok());
    std::vector<int> cpus = allowed_cpus();
    for (size_t i = 0; i < 6; ++i) {
      OnCpu on(cpus[i % cpus.size()]);
      REQUIRE(c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n"));
      CHECK(worker_of(c.read()) == w);
      std::this_thread::sleep_for(std::chrono::milliseconds(150));
    }
  }
  CHECK(http_get(f.port, "/v1/quotes/sh600000").status == 200);  // the shared port as before
}

TEST_CASE("an unknown --tcp-congestion stops the server with the reason") {
  TempDir dir;
  ChildProcess p({binary("apiclient/http/tickfan-http"), "--store", dir.file("store"), "--port",
                  std::to_string(free_port()), "--workers", "1", "--tcp-congestion", "no-such-cc"},
                 dir.file("http.log"));
  int status = p.wait(10000);
  CHECK(exited_with(status, 1));
  CHECK(read_file(dir.file("http.log")).find("--tcp-congestion no-such-cc") != std::string::npos);
}

TEST_CASE("a --config that is a FIFO is a usage error, not a start-up that blocks forever") {
  TempDir dir;
  REQUIRE(::mkfifo(dir.file("fifo.toml").c_str(), 0600) == 0);
  ChildProcess p({binary("apiclient/http/tickfan-http"), "--config", dir.file("fifo.toml")}, dir.file("http.log"));
  int status = p.wait(5000);  // -1: still waiting for a writer to the FIFO (the defect)
  CHECK(exited_with(status, 2));
  CHECK_MESSAGE(read_file(dir.file("http.log")).find("--config: Not a regular file") != std::string::npos,
                read_file(dir.file("http.log")));
}

namespace {
// Runs tickfan-http with `extra` and returns its exit status (-1: still
// running after 5 s) and, in *log, what it printed.
int http_exit(const std::vector<std::string>& extra, std::string* log) {
  TempDir dir;
  std::vector<std::string> argv{binary("apiclient/http/tickfan-http"), "--store", dir.file("store"), "--port",
                                std::to_string(free_port())};
  argv.insert(argv.end(), extra.begin(), extra.end());
  ChildProcess p(argv, dir.file("http.log"));
  int status = p.wait(5000);
  *log = read_file(dir.file("http.log"));
  return status;
}
}  // namespace

TEST_CASE("nonsense limits and origins are usage errors naming the flag, not silently accepted") {
  std::string log;
  // Each of these started and served: the worker ports past 65535 wrapped
  // (worker 1 of base 65535 listened on a random port), --max-connections 0
  // answered every connection 503, --max-rank-limit 0 every limit= 400,
  // --ready-max-age-ms -1 made /readyz 503 for ever, --backlog -5 became
  // the system maximum, a --cors-origin with a space or a trailing slash
  // never matched any request's Origin.
  const std::vector<std::vector<std::string>> bad = {
      {"--workers", "2", "--worker-port-base", "65535"},
      {"--max-connections", "0"},
      {"--max-rank-limit", "0"},
      {"--ready-max-age-ms", "-1"},
      {"--backlog", "-5"},
      {"--sndbuf", "-5"},
      {"--rank-interval-ms", "4294967295"},
      {"--cors-origin", "https://a.example, https://b.example"},
      {"--cors-origin", "https://a.example/"},
      {"--cors-origin", ""},
      {"--host", "localhost"},       // exited 1 from every worker, as a runtime failure
      {"--header-timeout-ms", "0"},  // closed every new connection at the next sweep
      {"--idle-timeout-ms", "0"},
  };
  for (const auto& args : bad) {
    CHECK_MESSAGE(exited_with(http_exit(args, &log), 2), std::string(args[0] + " " + args.back() + ": " + log));
    CHECK_MESSAGE(log.find(args[args.size() - 2]) != std::string::npos, log);
  }
}

TEST_CASE("a --store that can never be a store is a usage error; a missing one is waited for") {
  TempDir dir;
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  auto http = [&](const std::string& store) {
    return ChildProcess({binary("apiclient/http/tickfan-http"), "--store", store, "--port", std::to_string(free_port()),
                         "--workers", "1"},
                        dir.file("http.log"));
  };
  // Each used to start and answer 503 for data for ever, with a warning a
  // minute: a directory or a FIFO never becomes a store, nor does a path
  // through a file or a name longer than the filesystem allows.
  const std::vector<std::pair<std::string, std::string>> never = {
      {dir.path(), "is not a regular file"},
      {dir.file("fifo"), "is not a regular file"},
      {dir.file("fifo") + "/tickfan.store", "can never hold a store"},
      {dir.file(std::string(300, 'a')), "can never hold a store"},
  };
  for (const auto& [store, why] : never) {
    ChildProcess p = http(store);
    CHECK(exited_with(p.wait(5000), 2));
    std::string log = read_file(dir.file("http.log"));
    CHECK_MESSAGE(log.find("--store " + store + " " + why) != std::string::npos, log);
  }
  // A missing store (in a directory that exists or not yet) is waited for.
  for (const std::string& store : {dir.file("later.store"), dir.file("later/tickfan.store")}) {
    ChildProcess p = http(store);
    CHECK(p.wait(500) == -1);
    CHECK(exited_with(p.stop(), 0));
  }
}

TEST_CASE("an unknown key in the config file is a usage error naming it (was silently ignored)") {
  TempDir dir;
  {
    std::FILE* f = std::fopen(dir.file("http.toml").c_str(), "w");
    REQUIRE(f);
    std::fputs("max-conections = 5\n", f);  // typo: the limit stayed at 10 000
    std::fclose(f);
  }
  ChildProcess p({binary("apiclient/http/tickfan-http"), "--config", dir.file("http.toml"), "--store",
                  dir.file("store"), "--port", std::to_string(free_port()), "--workers", "1"},
                 dir.file("http.log"));
  CHECK(exited_with(p.wait(5000), 2));
  CHECK_MESSAGE(read_file(dir.file("http.log")).find("max-conections") != std::string::npos,
                read_file(dir.file("http.log")));
}

TEST_CASE("tickfan-http-fill: out-of-range --rate/--symbols are usage errors; SIGTERM at the top rate is prompt") {
  TempDir dir;
  const std::string fill = binary("apiclient/http/tickfan-http-fill");
  // --rate 4000000000 wrote 400 million quotes per tick and never saw
  // SIGTERM; --symbols 3000000000 spent minutes building its symbol list;
  // a word exited with CLI11's own code (105), not 2.
  for (const auto& [flag, value] : std::vector<std::pair<std::string, std::string>>{
           {"--rate", "4000000000"}, {"--symbols", "3000000000"}, {"--symbols", "abc"}}) {
    ChildProcess p({fill, "--store", dir.file("store"), flag, value}, dir.file("fill.log"));
    int status = p.wait(5000);
    CHECK_MESSAGE(exited_with(status, 2), std::string(flag + " " + value + ": " + read_file(dir.file("fill.log"))));
    CHECK(read_file(dir.file("fill.log")).find(flag) != std::string::npos);
  }
  ChildProcess p({fill, "--store", dir.file("store"), "--symbols", "1000", "--rate", "10000000"}, dir.file("fill.log"));
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  CHECK(exited_with(p.stop(SIGTERM, 1500), 0));
}

TEST_CASE("with the writer gone, quotes are still served with their age and /readyz is 503") {
  HttpFixture f({"--ready-max-age-ms", "60000"});
  REQUIRE(http_get(f.port, "/readyz").status == 200);
  f.writer.reset();  // the writer process is gone: its lock is released
  // Every worker notices (each caches the lock probe for up to 100 ms).
  CHECK(wait_until(
      [&] {
        for (int i = 0; i < 10; ++i) {
          auto r = http_get(f.port, "/readyz");
          if (r.status != 503 || r.body.find("writer not running") == std::string::npos) return false;
        }
        return true;
      },
      3000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto q = http_get(f.port, "/v1/quotes/sh600000");
  CHECK(q.status == 200);
  CHECK(std::stol(q.header("X-Data-Age-Ms")) >= 300);
  CHECK(q.body.find("\"symbol\":\"sh600000\"") != std::string::npos);
}

TEST_CASE("/readyz is 503 when the data is older than --ready-max-age-ms, 200 again after a commit") {
  HttpFixture f({"--ready-max-age-ms", "300"});
  CHECK(wait_until([&] { return http_get(f.port, "/readyz").status == 503; }, 3000));
  CHECK(http_get(f.port, "/readyz").body.find("older than") != std::string::npos);
  f.commit();
  CHECK(http_get(f.port, "/readyz").status == 200);
}

TEST_CASE("the frontend starts without a store and serves once the writer creates it") {
  TempDir dir;
  int port = free_port();
  ChildProcess server({binary("apiclient/http/tickfan-http"), "--store", dir.file("store"), "--port",
                       std::to_string(port), "--workers", "1", "--log-level", "error"},
                      dir.file("http.log"));
  REQUIRE(wait_until([&] { return http_get(port, "/healthz").status == 200; }, 5000));
  CHECK(http_get(port, "/v1/quotes/sh600000").status == 503);
  CHECK(http_get(port, "/readyz").status == 503);
  tickfan::shm::Status st;
  std::string err;
  auto w = tickfan::shm::StoreWriter::open(dir.file("store"), {}, &st, &err);
  REQUIRE(w);
  w->upsert(make_quote("sh600000"));
  w->commit(1, 1);
  CHECK(wait_until([&] { return http_get(port, "/v1/quotes/sh600000").status == 200; }, 5000));
}

TEST_CASE("SIGTERM stops the supervisor and its workers") {
  HttpFixture f;
  std::set<int> pids;
  REQUIRE(wait_until([&] { return (pids = worker_pids(f.port, 2)).size() == 2; }, 5000));
  f.server.signal(SIGTERM);
  int status = f.server.wait(8000);
  CHECK(exited_with(status, 0));
  for (int pid : pids) CHECK(::kill(pid, 0) != 0);
}

TEST_CASE("SIGTERM is graceful: in-flight responses finish, idle connections close, then the workers exit") {
  HttpFixture f({"--sndbuf", "8192"}, 400, 1);
  std::string list;
  for (int i = 0; i < 400; ++i) list += (i ? "," : "") + HttpFixture::symbol(i);
  auto whole = http_get(f.port, "/v1/quotes?symbols=" + list);
  REQUIRE(whole.status == 200);
  RawConn idle(f.port);
  REQUIRE(idle.send("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  REQUIRE(idle.read().status == 200);
  // A 170 KB response the client has not read yet: most of it still in the
  // worker when the signal comes.
  RawConn busy(f.port);
  int small = 4096;
  setsockopt(busy.fd(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  REQUIRE(busy.send("GET /v1/quotes?symbols=" + list + " HTTP/1.1\r\nHost: x\r\n\r\n"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  f.server.signal(SIGTERM);
  CHECK(idle.closed_within(2000));  // the idle keep-alive connection goes at once
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  auto r = busy.read(5000);
  CHECK(r.status == 200);
  CHECK(r.body.size() == whole.body.size());
  CHECK(busy.closed_within(3000));  // then closed: no more requests are taken
  int status = f.server.wait(8000);
  CHECK(exited_with(status, 0));
}
