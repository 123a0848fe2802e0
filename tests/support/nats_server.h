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

}  // namespace tickfan::testing
