// nats_server.h — a real nats-server for one test: loopback only, a free port
// chosen by the server itself (-p -1, read back from its ports file), its own
// JetStream/store dir, stopped by PID (SIGINT) at scope exit. Never port 4222.
#pragma once
#include <string>

#include "process.h"

namespace tickfan::testing {

class NatsServer {
 public:
  // Starts nats-server and waits until it accepts connections (throws after 10 s).
  // `port` 0 = let the server choose; a fixed port lets a test restart it in place.
  explicit NatsServer(int port = 0, bool jetstream = false);
  ~NatsServer();
  const std::string& url() const { return url_; }
  int port() const { return port_; }
  pid_t pid() const { return proc_.pid(); }
  // Stops (SIGINT) and starts again on the same port; for reconnect tests.
  void stop();
  void start();

 private:
  TempDir dir_;
  ChildProcess proc_;
  int port_ = 0;
  bool jetstream_ = false;
  std::string url_;
};

// A nats-server SIGSTOPped (by PID) for the scope: the kernel still accepts
// connections for it, but its INFO never comes, so a client's connect attempt
// hangs until its timeout (libnats: 2 s). Always resumed on the way out.
// Throws if it cannot be signalled.
class Frozen {
 public:
  explicit Frozen(const NatsServer& server);
  ~Frozen();
  Frozen(const Frozen&) = delete;
  Frozen& operator=(const Frozen&) = delete;
  void thaw();  // resumes it now (throws if it cannot)

 private:
  pid_t pid_;
};

}  // namespace tickfan::testing
