// End-to-end tests of the other inputs and of restart state: a TCP upstream
// that drops the connection, standard input, the documented example config
// file, and last values surviving an apiserver restart (--state-file).
#include <doctest/doctest.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include "clock.h"
#include "harness.h"

using namespace tickfan;
using namespace tickfan::testing;

namespace {
int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::string lines(int from, int to, int64_t ts) {
  std::string out = "symbol,prev_close,last,ts\n";
  for (int i = from; i < to; ++i) {
    out += "sz" + std::to_string(300000 + i) + ",20.00,20.5," + std::to_string(ts) + "\n";
  }
  return out;
}

// A one-connection-at-a-time upstream on a free loopback port.
class Upstream {
 public:
  Upstream() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    REQUIRE(::listen(fd_, 4) == 0);
    timeval tv{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);  // accept() gives up after 10 s
  }
  ~Upstream() { ::close(fd_); }
  int port() const { return port_; }
  // Accepts one connection, sends `text` in two pieces (a line split across
  // writes), closes it.
  bool serve_once(const std::string& text) {
    int c = ::accept(fd_, nullptr, nullptr);
    if (c < 0) return false;
    size_t half = text.size() / 2;
    bool ok = ::send(c, text.data(), half, 0) == static_cast<ssize_t>(half);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ok = ok && ::send(c, text.data() + half, text.size() - half, 0) == static_cast<ssize_t>(text.size() - half);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    ::close(c);
    return ok;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
};
}  // namespace

TEST_CASE("tcp source: reads an upstream's lines and reconnects after the upstream drops it") {
  std::string host = "127.0.0.1";
  SUBCASE("by address") {}
  SUBCASE("by name, looked up in a helper thread (source_tcp.cpp)") { host = "localhost"; }
  NatsServer nats;
  TempDir dir;
  Upstream up;
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(), {"--source", "tcp://" + host + ":" + std::to_string(up.port()) + "?name=up"});
  int64_t ts = now_ms();
  REQUIRE(up.serve_once(lines(0, 150, ts)));
  REQUIRE(up.serve_once(lines(150, 300, ts)));  // the apiserver came back by itself
  REQUIRE(wait_until([&] { return sub.quote_count() >= 300; }, 10000));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  CHECK(sub.quote_count() == 300);
  std::string log = api.log();
  CHECK(log.find("disconnected source=up") != std::string::npos);
  CHECK(api.metric("tickfan_apiserver_ticks_in_total{source=\"up\"}") == 300);
}

TEST_CASE("tcp source: a name lookup that never answers does not hold up a stop") {
  NatsServer nats;
  TempDir dir;
  // A resolver that never answers (injected: tests/support/slow_resolver.cpp).
  // Old behaviour: SIGTERM waited for getaddrinfo, here 60 s; with glibc's
  // defaults 10 s per name server, and again on every reconnect.
  const char* asan = std::getenv("ASAN_OPTIONS");
  ChildProcess api({"/usr/bin/env", "LD_PRELOAD=" + binary("tests/support/libtickfan_slow_resolver.so"),
                    std::string("ASAN_OPTIONS=") + (asan ? std::string(asan) + ":" : "") + "verify_asan_link_order=0",
                    binary("apiserver/tickfan-apiserver"), "--nats", nats.url(), "--metrics-port", "-1", "--source",
                    "tcp://hang.slow-resolver.test:9000?name=up"},
                   dir.file("hang.log"));
  REQUIRE(
      wait_until([&] { return read_file(dir.file("hang.log")).find("apiserver started") != std::string::npos; }, 5000));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // the lookup is under way
  auto t0 = std::chrono::steady_clock::now();
  api.signal(SIGTERM);
  int status = api.wait(5000);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK_MESSAGE(exited_with(status, 0), read_file(dir.file("hang.log")));
  CHECK(took < 2.5);
  // Given up for the stop, not reported as a failure.
  CHECK(read_file(dir.file("hang.log")).find("connect failed source=up") == std::string::npos);
}

TEST_CASE("stdin source: a piped file is published completely, then --exit-when-done exits 0") {
  NatsServer nats;
  TempDir dir;
  std::ofstream(dir.file("in.csv")) << lines(0, 250, now_ms());
  Subscriber sub(nats.url(), "tickfan.q.>");
  ChildProcess sh({"/bin/sh", "-c",
                   "exec " + binary("apiserver/tickfan-apiserver") + " --nats " + nats.url() +
                       " --metrics-port 0 --source stdin: --exit-when-done < " + dir.file("in.csv")},
                  dir.file("log"));
  int status = sh.wait(15000);
  INFO(read_file(dir.file("log")));
  CHECK(exited_with(status, 0));
  REQUIRE(wait_until([&] { return sub.quote_count() >= 250; }, 5000));
  CHECK(sub.quote_count() == 250);
}

TEST_CASE("the documented example config file starts a working apiserver") {
  NatsServer nats;
  TempDir dir;
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(), {"--config", std::string(TICKFAN_SOURCE_DIR) + "/apiserver/apiserver.example.toml"});
  REQUIRE(wait_until([&] { return sub.quote_count() >= 500; }, 10000));
  api.proc().signal(SIGTERM);
  CHECK(exited_with(api.proc().wait(10000), 0));
  CHECK(sub.errors() == 0);
}

TEST_CASE("bad command lines fail with exit 2 and say what is wrong") {
  TempDir dir;
  ChildProcess p({binary("apiserver/tickfan-apiserver"), "--source", "gopher://x"}, dir.file("log"));
  CHECK(exited_with(p.wait(5000), 2));
  CHECK(read_file(dir.file("log")).find("unknown scheme") != std::string::npos);
  ChildProcess q({binary("apiserver/tickfan-apiserver"), "--source", "file:" + dir.file("missing.csv"), "--nats",
                  "nats://127.0.0.1:1", "--metrics-port", "0"},
                 dir.file("log2"));
  CHECK(exited_with(q.wait(5000), 1));
  CHECK(read_file(dir.file("log2")).find("missing.csv") != std::string::npos);
  // A reconnect wait of 0 or less would retry a dead server in a tight loop.
  ChildProcess r({binary("apiserver/tickfan-apiserver"), "--nats-reconnect-wait-ms", "-5"}, dir.file("log3"));
  CHECK(exited_with(r.wait(5000), 2));
  CHECK_MESSAGE(read_file(dir.file("log3")).find("--nats-reconnect-wait-ms") != std::string::npos,
                read_file(dir.file("log3")));
  // Synthetic rates that parse as numbers but cannot pace: NaN, infinity, and
  // rates so low the pacing clock overflowed (1e-300 spun a core and ignored
  // SIGTERM for good). And a negative count of symbols, named as such.
  for (const char* bad : {"rate=nan", "rate=inf", "rate=1e-300", "rate=-1", "rate=2e9"}) {
    CAPTURE(bad);
    std::string log = dir.file(std::string("log-") + bad);
    ChildProcess b({binary("apiserver/tickfan-apiserver"), "--source", std::string("synthetic:?") + bad}, log);
    CHECK(exited_with(b.wait(5000), 2));
    CHECK_MESSAGE(read_file(log).find("rate must be 0 (as fast as possible) or 0.001..1e9 ticks/s") !=
                      std::string::npos,
                  read_file(log));
  }
  ChildProcess neg({binary("apiserver/tickfan-apiserver"), "--source", "synthetic:?symbols=-5"}, dir.file("log-neg"));
  CHECK(exited_with(neg.wait(5000), 2));
  CHECK_MESSAGE(read_file(dir.file("log-neg")).find("option symbols=-5 must not be negative") != std::string::npos,
                read_file(dir.file("log-neg")));
  // A config file or credentials file that is a FIFO: reading it would block
  // start-up forever (it did, for the config file).
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  for (const char* flag : {"--config", "--nats-creds", "--nats-tls-ca"}) {
    CAPTURE(flag);
    std::string log = dir.file(std::string("log-") + (flag + 2));
    ChildProcess f({binary("apiserver/tickfan-apiserver"), flag, dir.file("fifo")}, log);
    CHECK(exited_with(f.wait(5000), 2));
    CHECK_MESSAGE(read_file(log).find(std::string(flag) + ": Not a regular file") != std::string::npos, read_file(log));
  }
}

TEST_CASE("a slow synthetic rate does not hold up SIGTERM") {
  // rate=0.2: one tick every 5 s. The pacing sleep used to be one sleep to
  // the next tick's due time, so a stop waited for it (0.1/s: 10 s).
  NatsServer nats;
  TempDir dir;
  Subscriber sub(nats.url(), "tickfan.q.>");
  Apiserver api(dir, nats.url(), {"--source", "synthetic:?symbols=10&rate=0.2"});
  REQUIRE_MESSAGE(wait_until([&] { return sub.quote_count() >= 1; }, 5000), api.log());  // the first tick
  int64_t t0 = mono_ns();
  api.proc().signal(SIGTERM);
  CHECK_MESSAGE(exited_with(api.proc().wait(5000), 0), api.log());
  CHECK((mono_ns() - t0) / 1'000'000 < 2500);  // measured: ~60 ms; was up to 5 s (the next tick)
}

TEST_CASE("file: source on a FIFO streams a late writer and never holds up SIGTERM; a directory is refused") {
  // Old behaviour: file: opened the path with a blocking open(), so a FIFO
  // with no writer hung start-up and a FIFO whose writer stayed silent hung
  // the source in read(); SIGTERM was logged and never acted on (SIGKILL
  // needed). A directory was accepted and its read failed for ever.
  NatsServer nats;
  TempDir dir;
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  {
    Apiserver api(dir, nats.url(), {"--source", "file:" + dir.file("fifo")});  // nobody ever writes
    REQUIRE_MESSAGE(wait_until([&] { return api.log().find("started epoch=") != std::string::npos; }, 5000), api.log());
    int64_t t0 = mono_ns();
    api.proc().signal(SIGTERM);
    CHECK_MESSAGE(exited_with(api.proc().wait(3000), 0), api.log());
    CHECK((mono_ns() - t0) / 1'000'000 < 2500);  // measured: ~10 ms, ~1.1 s under TSan; was never
  }
  {
    // A writer that connects and stays silent, then a late line: still read,
    // and a stop is still prompt.
    TempDir d2;
    Subscriber sub(nats.url(), "tickfan.q.>");
    Apiserver api(d2, nats.url(), {"--source", "file:" + dir.file("fifo")});
    REQUIRE_MESSAGE(wait_until([&] { return api.log().find("started epoch=") != std::string::npos; }, 5000), api.log());
    int w = ::open(dir.file("fifo").c_str(), O_WRONLY);
    REQUIRE(w >= 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    std::string text = lines(0, 10, now_ms());
    REQUIRE(::write(w, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    CHECK(wait_until([&] { return sub.quote_count() >= 10; }, 5000));
    int64_t t0 = mono_ns();
    api.proc().signal(SIGTERM);  // the writer is still open and silent
    CHECK_MESSAGE(exited_with(api.proc().wait(3000), 0), api.log());
    CHECK((mono_ns() - t0) / 1'000'000 < 2500);  // measured: ~10 ms, ~1.1 s under TSan; was never
    ::close(w);
  }
  ::mkdir(dir.file("adir").c_str(), 0700);
  for (const char* opt : {"", "?follow=1"}) {
    CAPTURE(opt);
    std::string log = dir.file(std::string("log-dir") + opt);
    ChildProcess p({binary("apiserver/tickfan-apiserver"), "--nats", "nats://127.0.0.1:1", "--metrics-port", "0",
                    "--source", "file:" + dir.file("adir") + opt},
                   log);
    CHECK(exited_with(p.wait(5000), 1));
    CHECK_MESSAGE(read_file(log).find("adir: Is a directory") != std::string::npos, read_file(log));
  }
}

TEST_CASE("--state-file: last values survive a restart and are served by the next snapshot") {
  NatsServer nats;
  TempDir dir;
  std::string state = dir.file("apiserver.store");
  std::map<std::string, Quote> last;
  {
    Subscriber sub(nats.url(), "tickfan.q.>");
    Apiserver first(
        dir, nats.url(),
        {"--source", "synthetic:?symbols=800&rate=50000&count=4000", "--state-file", state, "--exit-when-done"});
    CHECK(exited_with(first.proc().wait(20000), 0));
    REQUIRE(wait_until([&] { return sub.quote_count() >= 4000; }, 5000));
    for (const auto& b : sub.batches()) {
      for (const auto& q : b.quotes) last[std::string(quote_symbol(q))] = q;
    }
  }
  REQUIRE(last.size() == 800);
  // Restart with a source that says nothing: the snapshot comes from the file.
  std::ofstream(dir.file("empty.csv")) << "symbol,prev_close,last,ts\n";
  TempDir dir2;
  Apiserver second(dir2, nats.url(),
                   {"--source", "file:" + dir.file("empty.csv") + "?follow=1", "--state-file", state});
  REQUIRE(wait_until([&] { return second.log().find("restored") != std::string::npos; }, 5000));
  std::vector<Received> snap;
  REQUIRE(wait_until(
      [&] {
        snap = request_snapshot(nats.url(), "", "tickfan.q", 1000);
        return !snap.empty() && snap.back().kind == wire::BatchKind::SnapshotEnd;
      },
      10000));
  size_t n = 0;
  for (const auto& r : snap) {
    for (const auto& q : r.quotes) {
      auto it = last.find(std::string(quote_symbol(q)));
      REQUIRE(it != last.end());
      CHECK(it->second.last() == q.last());
      CHECK(it->second.exchange_ts_ns() == q.exchange_ts_ns());
      ++n;
    }
  }
  CHECK(n == 800);
  CHECK(snap.back().epoch != 0);
  for (const auto& m : snap.back().marks) CHECK(m.sequence == 0);  // a new epoch: nothing published yet
}

TEST_CASE("--state-file left empty by a start killed while creating it is started over, not refused for ever") {
  // Old behaviour: exit 1 "state file ...: store ... is not ready (0 bytes,
  // its writer is creating it)" at every start, so a supervisor restarted it
  // in a loop until someone deleted the file.
  TempDir dir;
  std::string state = dir.file("apiserver.store");
  std::ofstream(state).flush();  // 0 bytes
  ChildProcess p({binary("apiserver/tickfan-apiserver"), "--nats", "nats://127.0.0.1:1", "--metrics-port", "0",
                  "--source", "synthetic:?symbols=20&rate=0&count=100", "--state-file", state, "--exit-when-done"},
                 dir.file("log"));
  CHECK_MESSAGE(exited_with(p.wait(10000), 0), read_file(dir.file("log")));
  CHECK(read_file(dir.file("log")).find("was never initialised") != std::string::npos);
  ChildProcess again({binary("apiserver/tickfan-apiserver"), "--nats", "nats://127.0.0.1:1", "--metrics-port", "0",
                      "--source", "synthetic:?symbols=20&rate=0&count=1", "--state-file", state, "--exit-when-done"},
                     dir.file("log2"));
  CHECK_MESSAGE(exited_with(again.wait(10000), 0), read_file(dir.file("log2")));
  CHECK_MESSAGE(read_file(dir.file("log2")).find("restored path=" + state + " symbols=20") != std::string::npos,
                read_file(dir.file("log2")));
}

TEST_CASE("NATS restarted under the apiserver: it reconnects by itself and publishes again, counting it") {
  NatsServer nats;
  TempDir dir;
  Apiserver api(dir, nats.url(), {"--source", "synthetic:?symbols=200&rate=2000"});
  {
    Subscriber sub(nats.url(), "tickfan.q.>");
    REQUIRE(wait_until([&] { return sub.quote_count() >= 100; }, 5000));
  }
  nats.stop();
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  nats.start();
  Subscriber sub(nats.url(), "tickfan.q.>");
  REQUIRE(wait_until([&] { return sub.quote_count() >= 100; }, 10000));
  // The client runs its callbacks on its own thread, possibly after the
  // first publishes already went through.
  CHECK(wait_until([&] { return api.metric("tickfan_apiserver_nats_reconnects_total") >= 1; }, 5000));
  CHECK(api.metric("tickfan_apiserver_nats_disconnects_total") >= 1);
  CHECK(api.metric("tickfan_apiserver_nats_connected") == 1);
  std::string log = api.log();
  CHECK(log.find("nats disconnected") != std::string::npos);
  CHECK(log.find("nats reconnected") != std::string::npos);
}
