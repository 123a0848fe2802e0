// http_client.cpp — see http_client.h.
#include "http_client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace tickfan::testing {

std::string HttpResponse::header(const std::string& name) const {
  const std::string head = this->head + "\r\n";  // every line, the last too, ends in CRLF
  size_t pos = 0;
  while ((pos = head.find("\r\n", pos)) != std::string::npos) {
    pos += 2;
    size_t colon = head.find(':', pos);
    size_t eol = head.find("\r\n", pos);
    if (colon == std::string::npos || eol == std::string::npos || colon > eol) continue;
    if (colon - pos == name.size() && strncasecmp(head.data() + pos, name.data(), name.size()) == 0) {
      size_t v = colon + 1;
      while (v < eol && head[v] == ' ') ++v;
      return head.substr(v, eol - v);
    }
  }
  return "";
}

RawConn::RawConn(int port) {
  fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{2, 0};
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  if (connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd_);
    fd_ = -1;
  }
}

RawConn::~RawConn() {
  if (fd_ >= 0) close(fd_);
}

bool RawConn::send(const std::string& bytes) {
  size_t off = 0;
  while (off < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + off, bytes.size() - off, MSG_NOSIGNAL);
    if (n <= 0) return false;
    off += static_cast<size_t>(n);
  }
  return true;
}

bool RawConn::fill(int timeout_ms) {
  pollfd p{fd_, POLLIN, 0};
  if (poll(&p, 1, timeout_ms) <= 0) return false;
  char tmp[65536];
  ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
  if (n <= 0) return false;
  buf_.append(tmp, static_cast<size_t>(n));
  return true;
}

HttpResponse RawConn::read(int timeout_ms, bool head_only) {
  HttpResponse r;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  auto left = [&] {
    return static_cast<int>(std::max<long>(
        0, std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count()));
  };
  size_t end;
  while ((end = buf_.find("\r\n\r\n")) == std::string::npos) {
    if (!fill(left())) return r;
  }
  r.head = buf_.substr(0, end);
  buf_.erase(0, end + 4);
  if (r.head.size() > 12) r.status = atoi(r.head.c_str() + 9);
  size_t len = 0;
  std::string cl = r.header("Content-Length");
  if (!cl.empty() && !head_only && r.status != 304 && r.status != 204) len = std::stoul(cl);
  while (buf_.size() < len) {
    if (!fill(left())) {
      r.status = 0;
      return r;
    }
  }
  r.body = buf_.substr(0, len);
  buf_.erase(0, len);
  return r;
}

bool RawConn::closed_within(int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  for (;;) {
    int left = static_cast<int>(
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now()).count());
    if (left <= 0) return false;
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, left) <= 0) return false;
    char tmp[65536];
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n <= 0) return true;
  }
}

HttpResponse http_get(int port, const std::string& target, const std::vector<std::string>& headers,
                      const std::string& method) {
  RawConn c(port);
  if (!c.ok()) return {};
  std::string req = method + " " + target + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  for (const auto& h : headers) req += h + "\r\n";
  req += "\r\n";
  if (!c.send(req)) return {};
  return c.read(5000, method == "HEAD");
}

}  // namespace tickfan::testing
