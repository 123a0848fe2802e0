// apiserver_e2e_test.cpp — the whole pipe with real processes: the real
// tickfan-apiserver (synthetic market source) publishing to a real nats-server,
// the real tickfan-apiclient writing its store. The apiserver keeps its own
// last values in a --state-file store; at the end the apiclient's store must
// equal it record by record: every tick the apiserver accepted is in the store.
#include <doctest/doctest.h>
#include <signal.h>

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "nats_server.h"
#include "process.h"
#include "store.h"

using namespace tickfan;
using namespace tickfan::testing;

namespace {

ChildProcess start_apiclient(const TempDir& dir, const std::string& url, const std::string& log) {
  return ChildProcess({binary("apiclient/writer/tickfan-apiclient"), "--store", dir.file("client.store"), "--capacity",
                       "8192", "--nats", url, "--heartbeat-ms", "50", "--snapshot-timeout-ms", "500", "--retry-min-ms",
                       "50", "--retry-max-ms", "300"},
                      dir.file(log));
}

ChildProcess start_apiserver(const TempDir& dir, const std::string& url, const std::string& synthetic,
                             const std::string& log) {
  return ChildProcess({binary("apiserver/tickfan-apiserver"), "--source", "synthetic:?" + synthetic, "--nats", url,
                       "--state-file", dir.file("server.store"), "--exit-when-done", "--metrics-port", "0"},
                      dir.file(log));
}

// Empty when the apiclient's store holds exactly the apiserver's last values.
std::string compare_with_server(const TempDir& dir) {
  shm::Status st;
  std::string err;
  auto server = shm::StoreReader::open(dir.file("server.store"), &st, &err);
  if (!server) return "server store: " + err;
  auto client = shm::StoreReader::open(dir.file("client.store"), &st, &err);
  if (!client) return "client store: " + err;
  if (server->used() == 0) return "server store empty";
  std::string diff;
  int bad = 0;
  for (uint32_t slot = 0; slot < server->used(); ++slot) {
    Quote want, got;
    if (server->read_quote(slot, &want) != shm::Status::ok) return "server read failed";
    std::string symbol(quote_symbol(want));
    shm::Status s = client->get(symbol, &got);
    if (s != shm::Status::ok || std::memcmp(&want, &got, sizeof want) != 0) {
      if (bad++ < 3) diff += symbol + (s == shm::Status::ok ? " differs; " : " missing; ");
    }
  }
  if (client->used() != server->used()) {
    diff += "client has " + std::to_string(client->used()) + " symbols, server " + std::to_string(server->used());
  }
  std::string report;
  if (client->verify(&report) != 0) diff += " verify: " + report;
  return diff;
}

shm::StoreState client_state(const TempDir& dir) {
  shm::Status st;
  std::string err;
  auto r = shm::StoreReader::open(dir.file("client.store"), &st, &err);
  return r ? r->state() : shm::StoreState{};
}

}  // namespace

TEST_CASE("real apiserver: every tick it accepted is in the apiclient's store") {
  NatsServer nats;
  TempDir dir;
  ChildProcess client = start_apiclient(dir, nats.url(), "client.log");
  ChildProcess server = start_apiserver(dir, nats.url(), "symbols=2000&rate=40000&seed=1&count=80000", "server.log");
  int status = server.wait(20000);
  REQUIRE_MESSAGE(exited_with(status, 0), read_file(dir.file("server.log")));
  std::string diff;
  bool ok = wait_until([&] { return (diff = compare_with_server(dir)).empty(); }, 10000);
  CHECK_MESSAGE(ok, diff);
  CHECK(client_state(dir).sync_state == shm::SyncState::live);
  CHECK(client.running());
}

TEST_CASE("real apiserver restarted (new epoch): the apiclient resyncs to the new instance") {
  NatsServer nats;
  TempDir dir;
  ChildProcess client = start_apiclient(dir, nats.url(), "client.log");
  {
    ChildProcess server = start_apiserver(dir, nats.url(), "symbols=1000&rate=20000&seed=1&count=20000", "server1.log");
    REQUIRE(exited_with(server.wait(20000), 0));
  }
  std::string diff;
  REQUIRE_MESSAGE(wait_until([&] { return (diff = compare_with_server(dir)).empty(); }, 10000), diff);
  uint64_t epoch1 = client_state(dir).epoch;
  {
    ChildProcess server = start_apiserver(dir, nats.url(), "symbols=1000&rate=20000&seed=2&count=20000", "server2.log");
    REQUIRE(exited_with(server.wait(20000), 0));
  }
  CHECK_MESSAGE(wait_until([&] { return (diff = compare_with_server(dir)).empty(); }, 10000), diff);
  shm::StoreState s = client_state(dir);
  CHECK(s.epoch != epoch1);
  CHECK(s.resyncs >= 1);
  CHECK(read_file(dir.file("client.log")).find("reason=epoch_change") != std::string::npos);
}

TEST_CASE("apiclient SIGKILLed under load from the real apiserver: restarted, resynced, nothing lost") {
  NatsServer nats;
  TempDir dir;
  auto client = std::make_unique<ChildProcess>(start_apiclient(dir, nats.url(), "client1.log"));
  ChildProcess server = start_apiserver(dir, nats.url(), "symbols=2000&rate=20000&seed=3&count=80000", "server.log");
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));
  client->signal(SIGKILL);
  client->wait(5000);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  client = std::make_unique<ChildProcess>(start_apiclient(dir, nats.url(), "client2.log"));
  REQUIRE(exited_with(server.wait(20000), 0));
  std::string diff;
  CHECK_MESSAGE(wait_until([&] { return (diff = compare_with_server(dir)).empty(); }, 10000), diff);
  CHECK(client_state(dir).sync_state == shm::SyncState::live);
}
