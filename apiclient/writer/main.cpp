// main.cpp — tickfan-apiclient: parse the configuration, open the store as its
// single writer (a second writer is refused, naming the holder's pid), start
// the /metrics listener, and run the apply loop until SIGTERM/SIGINT, then
// checkpoint the store. Exit codes: 0 clean stop, 1 runtime failure
// (store, NATS configuration), 2 usage error.
#include <signal.h>

#include <atomic>
#include <cstdio>
#include <exception>
#include <thread>

#include "config.h"
#include "daemon.h"
#include "log.h"
#include "metrics_http.h"
#include "signals.h"
#include "store.h"

using namespace tickfan;
using namespace tickfan::apiclient;

#if defined(__SANITIZE_ADDRESS__)
// LeakSanitizer suppression, the one this program needs: libnats 3.4.1 frees
// the control messages of its global delivery pool racily at nats_CloseAndWait
// (one or two ~100-byte natsMsg reported as leaked in about half the runs of a
// 20-line program that only subscribes and closes). The library is not built
// with frame pointers, so the report stops at natsMsg_create and cannot be
// narrowed further. Our own messages are always owned by Inbound::hold (RAII).
extern "C" const char* __lsan_default_suppressions() { return "leak:natsMsg_create\n"; }
#endif

namespace {

// Takes SIGTERM/SIGINT with sigwait and calls daemon.stop(). Joined at scope
// exit, including when an exception unwinds past it: a joinable std::thread
// destroyed during unwinding would call std::terminate (exit 134 instead of
// a message and exit 1).
class SignalThread {
 public:
  SignalThread(const sigset_t& sigs, Daemon& daemon)
      : thread_([this, sigs, &daemon] {
          int sig = 0;
          sigwait(&sigs, &sig);
          if (!leaving_.load()) {
            LOG_INFO("main", "signal %d: stopping", sig);
            daemon.stop();
          }
        }) {}
  ~SignalThread() {
    leaving_.store(true);
    // Wakes the sigwait if no signal came (SIGTERM is blocked in every
    // thread, so only that thread's sigwait takes it).
    pthread_kill(thread_.native_handle(), SIGTERM);
    thread_.join();
  }
  SignalThread(const SignalThread&) = delete;
  SignalThread& operator=(const SignalThread&) = delete;

 private:
  std::atomic<bool> leaving_{false};
  std::thread thread_;
};

}  // namespace

int main(int argc, char** argv) {
  Config config;
  int rc = parse_config(argc, argv, &config);
  if (rc >= 0) return rc;
  LogLevel level;
  if (log_parse_level(config.log_level.c_str(), &level)) log_set_level(level);

  // Signals are taken by one thread with sigwait, so no handler ever runs on
  // the apply thread or inside the NATS library. Block them before any thread starts.
  const sigset_t sigs = block_stop_signals();

  shm::WriterOptions wopts;
  wopts.capacity = config.capacity;
  shm::Status st;
  std::string err;
  std::unique_ptr<shm::StoreWriter> writer = shm::StoreWriter::open(config.store_path, wopts, &st, &err);
  if (!writer) {
    std::fprintf(stderr, "tickfan-apiclient: %s\n", err.c_str());
    return 1;
  }
  shm::StoreState ss = writer->state();
  // The header still says what the previous run left (often `live`): until
  // this run's first snapshot lands the data is not known to be current.
  writer->set_sync_state(shm::SyncState::syncing, 0, 0);
  LOG_INFO("main", "store %s opened: capacity=%u used=%u last_epoch=%llu repaired=%llu", config.store_path.c_str(),
           ss.capacity, ss.used, static_cast<unsigned long long>(ss.epoch),
           static_cast<unsigned long long>(writer->stats().repaired_on_open));

  MetricsRegistry registry;
  int exit_code = 1;
  try {
    Daemon daemon(config, *writer, registry);
    MetricsHttpServer http(registry, [&daemon](std::string* reason) { return daemon.healthy(reason); });
    if (!http.start(config.metrics_host, config.metrics_port, &err)) {
      std::fprintf(stderr, "tickfan-apiclient: metrics listener: %s\n", err.c_str());
      return 1;
    }
    if (http.port() > 0) LOG_INFO("main", "metrics on http://%s:%d/metrics", config.metrics_host.c_str(), http.port());
    SignalThread signals(sigs, daemon);
    exit_code = daemon.run();
    http.stop();
  } catch (const std::exception& e) {
    // Start-up failures (NATS configuration: TLS files, credentials, a
    // refused login): one line, exit 1.
    std::fprintf(stderr, "tickfan-apiclient: %s\n", e.what());
    exit_code = 1;
  }
  writer.reset();  // checkpoints and releases the writer lock
  return exit_code;
}
