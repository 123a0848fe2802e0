// process.h — real child processes for tests: spawn by argv, signal and reap
// by PID, with timeouts, plus a scratch directory removed at scope exit.
// Every process a test starts is stopped by PID in the destructor, so a
// failing CHECK never leaves a daemon behind.
#pragma once
#include <sys/types.h>

#include <string>
#include <vector>

namespace tickfan::testing {

class ChildProcess {
 public:
  ChildProcess() = default;
  // Starts argv[0] (a path) with argv; stdout/stderr go to `log_path` if given.
  ChildProcess(const std::vector<std::string>& argv, const std::string& log_path = "");
  ~ChildProcess();  // SIGKILL + reap if still running
  ChildProcess(ChildProcess&& other) noexcept;
  ChildProcess& operator=(ChildProcess&& other) noexcept;

  pid_t pid() const { return pid_; }
  bool running();
  void signal(int sig);
  // Waits up to timeout_ms; returns the exit status as from waitpid, or -1 on
  // timeout. After a successful wait the process is reaped.
  int wait(int timeout_ms);
  // SIGTERM (or `sig`), wait up to timeout_ms, then SIGKILL. Returns the status.
  int stop(int sig = 15, int timeout_ms = 5000);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// WIFEXITED(s) && WEXITSTATUS(s) == code, without pulling <sys/wait.h> macros in.
bool exited_with(int status, int code);
bool killed_by(int status, int sig);

class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// Polls `pred` every few ms until it returns true or timeout_ms passes.
template <typename Pred>
bool wait_until(Pred pred, int timeout_ms);

// Reads a whole file ("" if missing).
std::string read_file(const std::string& path);

// A free TCP port on 127.0.0.1 (bound then released; small race, fine for tests).
int free_port();

// Sends `request` to 127.0.0.1:port and returns everything read until the
// peer closes ("" when nothing listens). Reads give up after 5 s of silence.
std::string loopback_exchange(int port, const std::string& request);

// GET `path` over HTTP/1.1 with Connection: close: the raw response.
std::string loopback_http_get(int port, const std::string& path);

// Path of a built binary, e.g. binary("apiserver/tickfan-apiserver").
std::string binary(const std::string& relative);

}  // namespace tickfan::testing

#include <chrono>
#include <thread>

template <typename Pred>
bool tickfan::testing::wait_until(Pred pred, int timeout_ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return pred();
}
