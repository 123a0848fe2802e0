// source_tcp.cpp — tcp://HOST:PORT: connect to an upstream that streams tick
// lines; on any failure reconnect with capped exponential backoff plus jitter
// (100 ms doubling to 5 s), so a restarting upstream is not hammered and
// redundant apiservers do not reconnect in lock-step.
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <system_error>
#include <thread>
#include <vector>

#include "source.h"

namespace tickfan::apiserver {

namespace {

constexpr int kBackoffMinMs = 100;
constexpr int kBackoffMaxMs = 5000;

// A blocking connect() to a black-holed address can hang for minutes and
// would delay shutdown: connect non-blocking, wait in short polls that notice
// a stop request, give up after kConnectTimeoutMs.
constexpr int kConnectTimeoutMs = 3000;

// A name lookup can wait out a resolver that never answers (glibc: 5 s per
// try, per server) and getaddrinfo cannot be interrupted, so a stop request
// (SIGTERM) waited with it. The lookup runs in a helper thread instead,
// waited on in short steps that notice a stop; a lookup given up on finishes
// on its own and frees what it owns (Lookup below).
constexpr int kLookupTimeoutMs = 10000;

struct Lookup {
  std::mutex m;
  std::condition_variable cv;
  bool done = false;
  int rc = 0;
  addrinfo* res = nullptr;
  ~Lookup() {
    if (res) ::freeaddrinfo(res);
  }
};

addrinfo stream_hints(int flags) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = flags;
  return hints;
}

// Throws std::system_error if no thread can be started.
std::shared_ptr<Lookup> start_lookup(const std::string& host, const std::string& port) {
  auto lookup = std::make_shared<Lookup>();
  std::thread([lookup, host, port] {
    const addrinfo hints = stream_hints(0);
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
    std::lock_guard<std::mutex> lock(lookup->m);
    lookup->rc = rc;
    lookup->res = res;
    lookup->done = true;
    lookup->cv.notify_all();
  }).detach();
  return lookup;
}

class TcpSource final : public Source {
 public:
  using Source::Source;
  ~TcpSource() override {
    request_stop();
    join();
  }

 protected:
  void run() override {
    std::vector<char> buf(256 * 1024);
    std::minstd_rand rng(static_cast<unsigned>(index() * 7919 + 17));
    int backoff = kBackoffMinMs;
    while (!stopping()) {
      std::string err;
      int fd = connect_once(&err);
      if (fd < 0) {
        if (stopping()) return;  // given up for the stop, not a failure
        count_error();
        int wait = backoff / 2 + static_cast<int>(rng() % static_cast<unsigned>(backoff / 2 + 1));
        LOG_WARN("source", "connect failed source=%s addr=%s:%d error=\"%s\" retry_ms=%d", name().c_str(),
                 spec_.host.c_str(), spec_.port, err.c_str(), wait);
        backoff = std::min(backoff * 2, kBackoffMaxMs);
        if (!sleep_ms(wait)) return;
        continue;
      }
      LOG_INFO("source", "connected source=%s addr=%s:%d", name().c_str(), spec_.host.c_str(), spec_.port);
      backoff = kBackoffMinMs;
      bool clean_eof = false;
      while (!stopping()) {
        pollfd p{fd, POLLIN, 0};
        int rc = ::poll(&p, 1, 100);
        if (rc == 0) continue;
        if (rc < 0 && errno == EINTR) continue;
        ssize_t n = ::recv(fd, buf.data(), buf.size(), 0);
        if (n > 0) {
          feed(buf.data(), static_cast<size_t>(n), false);
          continue;
        }
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
        clean_eof = n == 0;
        if (!clean_eof) err = std::strerror(errno);
        break;
      }
      ::close(fd);
      if (stopping()) return;
      discard_partial("connection lost");
      count_error();
      LOG_WARN("source", "disconnected source=%s addr=%s:%d reason=\"%s\"", name().c_str(), spec_.host.c_str(),
               spec_.port, clean_eof ? "peer closed" : err.c_str());
      if (!sleep_ms(backoff)) return;
      backoff = std::min(backoff * 2, kBackoffMaxMs);
    }
  }

 private:
  bool connect_with_timeout(int fd, const sockaddr* addr, socklen_t len, std::string* err) {
    int flags = ::fcntl(fd, F_GETFL, 0);
    ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
    int rc = ::connect(fd, addr, len);
    if (rc != 0 && errno != EINPROGRESS) {
      *err = std::strerror(errno);
      return false;
    }
    for (int waited = 0; rc != 0; waited += 100) {
      if (stopping() || waited >= kConnectTimeoutMs) {
        *err = stopping() ? "stopping" : "connect timed out";
        return false;
      }
      pollfd p{fd, POLLOUT, 0};
      if (::poll(&p, 1, 100) > 0) {
        int so = 0;
        socklen_t sl = sizeof so;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &so, &sl);
        if (so != 0) {
          *err = std::strerror(so);
          return false;
        }
        rc = 0;
      }
    }
    ::fcntl(fd, F_SETFL, flags);
    return true;
  }

  int connect_once(std::string* err) {
    addrinfo* res = resolve(err);
    if (res == nullptr) return -1;
    int fd = -1;
    for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      if (connect_with_timeout(fd, a->ai_addr, a->ai_addrlen, err)) break;
      ::close(fd);
      fd = -1;
    }
    ::freeaddrinfo(res);
    return fd;
  }

  // The host's addresses (to free with freeaddrinfo), or null with *err set.
  addrinfo* resolve(std::string* err) {
    std::string port = std::to_string(spec_.port);
    const addrinfo numeric = stream_hints(AI_NUMERICHOST);  // an IP address needs no lookup: answered at once
    addrinfo* res = nullptr;
    int rc = ::getaddrinfo(spec_.host.c_str(), port.c_str(), &numeric, &res);
    if (rc == 0) return res;
    if (rc != EAI_NONAME) {
      *err = gai_strerror(rc);
      return nullptr;
    }
    std::shared_ptr<Lookup> lookup;
    try {
      lookup = start_lookup(spec_.host, port);
    } catch (const std::system_error& e) {
      *err = std::string("no thread for the name lookup: ") + e.what();
      return nullptr;
    }
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kLookupTimeoutMs);
    std::unique_lock<std::mutex> lock(lookup->m);
    while (!lookup->done) {
      if (stopping() || std::chrono::steady_clock::now() >= deadline) {
        *err = stopping() ? "stopping" : "name lookup timed out";
        return nullptr;
      }
      lookup->cv.wait_for(lock, std::chrono::milliseconds(100));
    }
    if (lookup->rc != 0) {
      *err = gai_strerror(lookup->rc);
      return nullptr;
    }
    res = lookup->res;
    lookup->res = nullptr;  // ours now
    return res;
  }
};

}  // namespace

std::unique_ptr<Source> make_tcp_source(const SourceSpec& spec, const SourceContext& ctx, int index) {
  return std::make_unique<TcpSource>(spec, ctx, index);
}

}  // namespace tickfan::apiserver
