// fixture.h — a real store written in-process by a test writer (StoreWriter)
// and the real tickfan-http binary serving it on a free loopback port.
#pragma once
#include <doctest/doctest.h>

#include <memory>
#include <string>
#include <vector>

#include "http_client.h"
#include "process.h"
#include "store.h"
#include "test_quotes.h"

namespace tickfan::testing {

struct HttpFixture {
  TempDir dir;
  std::unique_ptr<shm::StoreWriter> writer;
  ChildProcess server;
  int port = 0;
  uint64_t seq = 0;

  // Writes `symbols` quotes: shNNNNNN with volume i*100 and a rising price,
  // szNNNNNN the same; then starts the server with the given extra flags.
  explicit HttpFixture(std::vector<std::string> extra_flags = {}, int symbols = 40, int workers = 2) {
    shm::WriterOptions wo;
    wo.capacity = 1024;
    shm::Status st;
    std::string err;
    writer = shm::StoreWriter::open(dir.file("store"), wo, &st, &err);
    if (!writer) throw std::runtime_error("test writer: " + err);
    for (int i = 0; i < symbols; ++i) writer->upsert(make_quote(symbol(i), 100000 + i * 100, (i + 1) * 100));
    writer->set_sync_state(shm::SyncState::live, 0, 0);
    writer->commit(1, ++seq);
    start(extra_flags, workers);
  }

  static std::string symbol(int i) {
    char b[16];
    snprintf(b, sizeof b, i % 2 ? "sz%06d" : "sh%06d", i % 2 ? i : 600000 + i);
    return b;
  }

  void start(std::vector<std::string> extra, int workers) {
    port = free_port();
    std::vector<std::string> argv = {binary("apiclient/http/tickfan-http"),
                                     "--store",
                                     dir.file("store"),
                                     "--port",
                                     std::to_string(port),
                                     "--workers",
                                     std::to_string(workers),
                                     "--log-level",
                                     "warn"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    server = ChildProcess(argv, dir.file("http.log"));
    if (!wait_until([&] { return http_get(port, "/healthz").status == 200; }, 5000))
      throw std::runtime_error("tickfan-http did not come up: " + read_file(dir.file("http.log")));
  }

  // Every test also checks that no worker died unexpectedly (a crash is
  // otherwise hidden by the supervisor's restart) and, in sanitizer builds,
  // that nothing was reported.
  bool expect_worker_deaths = false;
  ~HttpFixture() {
    std::string l = log();
    CHECK(l.find("AddressSanitizer") == std::string::npos);
    CHECK(l.find("runtime error") == std::string::npos);
    if (!expect_worker_deaths) CHECK(l.find("restarting in") == std::string::npos);
  }

  void commit() { writer->commit(1, ++seq); }
  std::string log() { return read_file(dir.file("http.log")); }
};

}  // namespace tickfan::testing
