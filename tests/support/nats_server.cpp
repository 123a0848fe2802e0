// nats_server.cpp — see nats_server.h.
#include "nats_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <stdexcept>

namespace tickfan::testing {

namespace {
bool can_connect(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0;
  ::close(fd);
  return ok;
}
std::string find_nats_server() {
  for (const char* p : {"/usr/bin/nats-server", "/usr/sbin/nats-server", "/usr/local/bin/nats-server"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  throw std::runtime_error("nats-server not found (scripts/setup.sh installs it)");
}
}  // namespace

NatsServer::NatsServer(int port, bool jetstream) : port_(port), jetstream_(jetstream) { start(); }

NatsServer::~NatsServer() { stop(); }

void NatsServer::start() {
  std::vector<std::string> argv = {
      find_nats_server(), "-a", "127.0.0.1",          "-p", port_ ? std::to_string(port_) : "-1", "--ports_file_dir",
      dir_.path(),        "-l", dir_.file("nats.log")};
  if (jetstream_) {
    argv.insert(argv.end(), {"-js", "-sd", dir_.file("js")});
  }
  proc_ = ChildProcess(argv);
  if (port_ == 0) {
    std::string ports_file = dir_.file("nats-server_" + std::to_string(proc_.pid()) + ".ports");
    // The ports file is JSON: {"nats":["nats://127.0.0.1:PORT"],...}.
    const std::string marker = "nats://127.0.0.1:";
    bool found = wait_until(
        [&] {
          std::string text = read_file(ports_file);
          size_t at = text.find(marker);
          if (at == std::string::npos) return false;
          port_ = std::atoi(text.c_str() + at + marker.size());
          return port_ > 0;
        },
        10000);
    if (!found)
      throw std::runtime_error("nats-server did not write its ports file; log: " + read_file(dir_.file("nats.log")));
  }
  if (!wait_until([&] { return can_connect(port_); }, 10000)) {
    throw std::runtime_error("nats-server not accepting on port " + std::to_string(port_));
  }
  url_ = "nats://127.0.0.1:" + std::to_string(port_);
}

void NatsServer::stop() {
  if (proc_.pid() > 0) proc_.stop(SIGINT, 5000);
}

Frozen::Frozen(const NatsServer& server) : pid_(server.pid()) {
  if (::kill(pid_, SIGSTOP) != 0) throw std::runtime_error("cannot SIGSTOP nats-server " + std::to_string(pid_));
}

Frozen::~Frozen() { ::kill(pid_, SIGCONT); }

void Frozen::thaw() {
  if (::kill(pid_, SIGCONT) != 0) throw std::runtime_error("cannot SIGCONT nats-server " + std::to_string(pid_));
}

}  // namespace tickfan::testing
