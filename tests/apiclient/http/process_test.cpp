// process_test.cpp — the process model: a killed worker is restarted while
// the others keep serving; the writer gone means stale data still served
// with its age, and /readyz 503.
#include <doctest/doctest.h>
#include <signal.h>

#include <set>
#include <thread>

#include "fixture.h"

using namespace tickfan::testing;

namespace {
int pid_of(const HttpResponse& r) {
  size_t p = r.body.find("\"pid\":");
  return p == std::string::npos ? 0 : std::stoi(r.body.substr(p + 6));
}
// Worker pids seen over fresh connections (SO_REUSEPORT hashes each new
// connection's ports, so a few dozen reach every worker).
std::set<int> worker_pids(int port, size_t want) {
  std::set<int> pids;
  for (int i = 0; i < 200 && pids.size() < want; ++i) {
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
  int victim = *before.begin();
  ::kill(victim, SIGKILL);
  // Meanwhile every request that reaches a live worker is served.
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
  CHECK(f.log().find("killed by signal 9") != std::string::npos);
  CHECK(f.server.running());
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
