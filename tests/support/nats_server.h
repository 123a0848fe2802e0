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

// The text of a NATS .creds file holding `jwt` and `seed`, laid out as nsc
// writes it. kTestUserSeed is a well-formed user nkey seed (fixed bytes 1..32,
// CRC16 appended, base32: it signs); kTestUserSeedBadCrc differs in one
// character, so its checksum fails. Neither is anyone's key.
inline constexpr const char* kTestUserSeed = "SUAACAQDAQCQMBYIBEFAWDANBYHRAEISCMKBKFQXDAMRUGY4DUPB6IC5CQ";
inline constexpr const char* kTestUserSeedBadCrc = "SUAACAQDAQCQMBYIBEFAWDANBYHRAEISCMKBKFQXDAMRUGY4DUPB6IC5DQ";
inline std::string creds_file_text(const std::string& jwt, const std::string& seed) {
  return "-----BEGIN NATS USER JWT-----\n" + jwt +
         "\n------END NATS USER JWT------\n\n"
         "************************* IMPORTANT *************************\n"
         "NKEY Seed printed below can be used to sign and prove identity.\n\n"
         "-----BEGIN USER NKEY SEED-----\n" +
         seed + "\n------END USER NKEY SEED------\n";
}

}  // namespace tickfan::testing
