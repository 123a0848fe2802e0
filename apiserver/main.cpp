// main.cpp — tickfan-apiserver: options, signals, metrics listener, and the
// server's core loop on the main thread. SIGTERM/SIGINT stop it cleanly:
// sources stop reading, every tick already accepted is published, the NATS
// buffer is flushed, state is saved (exit 0). A NATS connection that can
// never publish again (closed for good by the library, a login refused at a
// later attempt) stops it the same way, but with exit 1: the supervisor
// (systemd Restart=always) starts a fresh one rather than leaving a process
// that looks alive and publishes nothing.
#include <pthread.h>
#include <signal.h>

#include <cstdio>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "config.h"
#include "log.h"
#include "metrics_http.h"
#include "server.h"
#include "signals.h"

using namespace tickfan;
using namespace tickfan::apiserver;

int main(int argc, char** argv) {
  Options opts;
  int rc = parse_options(argc, argv, &opts);
  if (rc >= 0) return rc;
  LogLevel level;
  if (log_parse_level(opts.log_level.c_str(), &level)) log_set_level(level);

  const sigset_t set = block_stop_signals();  // before NATS and source threads start

  MetricsRegistry metrics;
  Server server(opts.server, metrics);
  // The signal thread is detached (sigwait cannot be interrupted portably);
  // `live` tells it whether `server` may still be touched.
  static std::mutex live_mu;
  static Server* live = &server;
  std::thread([set] {
    int sig = 0;
    while (sigwait(&set, &sig) == 0) {
      std::lock_guard<std::mutex> lock(live_mu);
      if (live == nullptr) return;
      LOG_INFO("apiserver", "signal=%s received, shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
      live->stop();
    }
  }).detach();

  MetricsHttpServer http(metrics, [&server](std::string* why) { return server.healthy(why); });
  std::string err;
  if (!http.start(opts.metrics_addr, opts.metrics_port, &err)) {
    LOG_ERROR("apiserver", "%s", err.c_str());
    return 1;
  }
  try {
    server.start();
  } catch (const std::exception& e) {
    LOG_ERROR("apiserver", "cannot start: %s", e.what());
    return 1;
  }
  server.run();
  http.stop();
  {
    std::lock_guard<std::mutex> lock(live_mu);
    live = nullptr;
  }
  std::string why;
  if (server.failed(&why)) {
    LOG_ERROR("apiserver", "exiting with status 1 so that the supervisor restarts it: %s", why.c_str());
    return 1;
  }
  return 0;  // ~Server closes NATS and waits for its last callback
}
