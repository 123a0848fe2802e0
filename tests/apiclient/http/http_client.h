// http_client.h — a raw-socket HTTP/1.1 client for tests: send exact bytes
// (hostile ones included), read responses framed by Content-Length, and tell
// a close from a timeout. No HTTP library, so the server's parser is the only
// one under test.
#pragma once
#include <string>
#include <vector>

namespace tickfan::testing {

struct HttpResponse {
  int status = 0;    // 0: no response (closed or timed out)
  std::string head;  // status line + headers, raw
  std::string body;
  std::string header(const std::string& name) const;  // "" if absent (case-insensitive)
};

class RawConn {
 public:
  explicit RawConn(int port);  // connects to 127.0.0.1:port (blocking, 2 s timeout)
  ~RawConn();
  RawConn(const RawConn&) = delete;
  RawConn& operator=(const RawConn&) = delete;
  bool ok() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool send(const std::string& bytes);
  // Reads one response; `head_only` for responses to HEAD (no body).
  HttpResponse read(int timeout_ms = 3000, bool head_only = false);
  // True when the peer closes (EOF or reset) within timeout_ms, discarding data.
  bool closed_within(int timeout_ms);

 private:
  int fd_ = -1;
  std::string buf_;
  bool fill(int timeout_ms);  // false on EOF/error/timeout
};

// One request on a fresh connection.
HttpResponse http_get(int port, const std::string& target, const std::vector<std::string>& headers = {},
                      const std::string& method = "GET");

}  // namespace tickfan::testing
