// supervisor.cpp — see supervisor.h. Signals are blocked in the parent and
// taken synchronously with sigtimedwait, so there is no async-signal-safety
// puzzle; children restore the mask and ask the kernel for SIGTERM if the
// parent dies (PR_SET_PDEATHSIG), so no worker outlives its supervisor.
#include "supervisor.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "clock.h"
#include "log.h"
#include "server.h"

namespace tickfan::http {

namespace {

struct Slot {
  pid_t pid = 0;
  int64_t started_ns = 0;
  int64_t restart_at_ns = 0;  // when pid == 0: when to start it again
  int quick_deaths = 0;       // consecutive deaths within 5 s of start
};

pid_t spawn(const Options& o, int index, const Handoff& h, const sigset_t& old_mask, pid_t parent) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (getppid() != parent) _exit(0);  // parent died before prctl
  _exit(run_worker(o, index, h));
}

// Raises the soft descriptor limit to the hard one (the workers inherit it)
// and warns when it cannot hold --max-connections per worker: past the
// limit a worker answers new connections 503 (server.cpp).
void raise_fd_limit(const Options& o) {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  if (rl.rlim_cur < rl.rlim_max) {
    rlimit want = rl;
    want.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &want) == 0) rl = want;
  }
  // Besides connections: listeners, the store, hand-over sockets, the
  // reserve descriptor and a few more.
  const rlim_t need = static_cast<rlim_t>(o.max_connections) + 64;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
    long long room = static_cast<long long>(rl.rlim_cur) - 64;
    LOG_WARN("http",
             "RLIMIT_NOFILE is %llu (hard limit): --max-connections %u needs about %llu descriptors per worker; "
             "beyond ~%lld connections a worker answers 503 (raise it: ulimit -n, systemd LimitNOFILE=)",
             static_cast<unsigned long long>(rl.rlim_cur), o.max_connections, static_cast<unsigned long long>(need),
             room < 0 ? 0 : room);
  }
}

}  // namespace

int run_supervisor(const Options& given) {
  // Workers see the resolved count (CPU pinning depends on it).
  Options o = given;
  int n = o.workers > 0 ? o.workers : static_cast<int>(sysconf(_SC_NPROCESSORS_ONLN));
  if (n < 1) n = 1;
  o.workers = n;
  // Checked here, not at parse time: the last port depends on the resolved
  // worker count. Past 65535 the port wrapped when converted to 16 bits
  // (65536 became 0: the kernel picked any free port, silently).
  if (o.worker_port_base > 0 && o.worker_port_base + n - 1 > 65535) {
    fprintf(stderr,
            "tickfan-http: --worker-port-base %d with %d workers needs ports up to %d; the last port is 65535\n",
            o.worker_port_base, n, o.worker_port_base + n - 1);
    return 2;
  }
  raise_fd_limit(o);
  // Pinned workers pass connections to each other (see server.cpp). The
  // supervisor keeps every end open, so a restarted worker finds its inbox
  // (and whatever was sent to it meanwhile) where its predecessor left it.
  Handoff handoff;
  handoff.cpus = worker_cpus(o);
  for (size_t i = 0; i < handoff.cpus.size(); ++i) {
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) != 0) {
      LOG_WARN("http", "socketpair: %s; connections stay with the worker that accepted them", strerror(errno));
      for (int fd : handoff.inbox) close(fd);
      for (int fd : handoff.outbox) close(fd);
      handoff.inbox.clear();
      handoff.outbox.clear();
      break;
    }
    handoff.inbox.push_back(sv[0]);
    handoff.outbox.push_back(sv[1]);
  }
  sigset_t mask, old_mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigaddset(&mask, SIGINT);
  sigprocmask(SIG_BLOCK, &mask, &old_mask);
  pid_t self = getpid();
  std::vector<Slot> slots(static_cast<size_t>(n));
  LOG_INFO("http", "supervisor pid=%d starting workers=%d port=%d store=%s", self, n, o.port, o.store_path.c_str());
  // A fork that fails (EAGAIN: a process or memory limit) leaves the slot
  // empty and is retried a second later, like a worker that died.
  auto start = [&](size_t i) {
    Slot& s = slots[i];
    s.started_ns = mono_ns();
    s.pid = spawn(o, static_cast<int>(i), handoff, old_mask, self);
    if (s.pid < 0) {
      LOG_ERROR("http", "worker=%zu fork failed: %s; retrying in 1000 ms", i, std::strerror(errno));
      s.pid = 0;
      s.restart_at_ns = s.started_ns + 1'000'000'000LL;
      return false;
    }
    return true;
  };
  for (size_t i = 0; i < slots.size(); ++i) start(i);
  int exit_code = 0;
  bool stopping = false;
  while (!stopping) {
    timespec timeout{0, 200'000'000};
    siginfo_t info;
    int sig = sigtimedwait(&mask, &info, &timeout);
    if (sig == SIGTERM || sig == SIGINT) {
      LOG_INFO("http", "supervisor signal=%d: stopping workers", sig);
      stopping = true;
      break;
    }
    // Reap every dead child (SIGCHLD coalesces).
    for (;;) {
      int status = 0;
      pid_t pid = waitpid(-1, &status, WNOHANG);
      if (pid <= 0) break;
      for (size_t i = 0; i < slots.size(); ++i) {
        Slot& s = slots[i];
        if (s.pid != pid) continue;
        s.pid = 0;
        int64_t lived_ms = (mono_ns() - s.started_ns) / 1000000;
        if (WIFEXITED(status) && WEXITSTATUS(status) == kWorkerExitListen) {
          // Cannot listen (port taken, bad address): restarting will not help.
          LOG_ERROR("http", "worker=%zu pid=%d cannot listen; stopping", i, pid);
          exit_code = 1;
          stopping = true;
          break;
        }
        s.quick_deaths = lived_ms < 5000 ? s.quick_deaths + 1 : 0;
        int64_t delay_ms = s.quick_deaths <= 1 ? 0 : std::min<int64_t>(5000, 100LL << std::min(s.quick_deaths, 6));
        s.restart_at_ns = mono_ns() + delay_ms * 1000000;
        if (WIFSIGNALED(status)) {
          LOG_ERROR("http", "worker=%zu pid=%d killed by signal %d after %lld ms; restarting in %lld ms", i, pid,
                    WTERMSIG(status), static_cast<long long>(lived_ms), static_cast<long long>(delay_ms));
        } else {
          LOG_ERROR("http", "worker=%zu pid=%d exited with %d after %lld ms; restarting in %lld ms", i, pid,
                    WEXITSTATUS(status), static_cast<long long>(lived_ms), static_cast<long long>(delay_ms));
        }
      }
    }
    if (stopping) break;
    int64_t now = mono_ns();
    for (size_t i = 0; i < slots.size(); ++i) {
      Slot& s = slots[i];
      if (s.pid == 0 && now >= s.restart_at_ns && start(i)) LOG_INFO("http", "worker=%zu restarted pid=%d", i, s.pid);
    }
  }
  for (Slot& s : slots)
    if (s.pid > 0) kill(s.pid, SIGTERM);
  // Workers drain for up to --shutdown-timeout-ms (server.cpp on_signal).
  int64_t deadline = mono_ns() + (static_cast<int64_t>(o.shutdown_timeout_ms) + 3000) * 1'000'000LL;
  for (Slot& s : slots) {
    while (s.pid > 0) {
      int status;
      pid_t r = waitpid(s.pid, &status, WNOHANG);
      if (r == s.pid || (r < 0 && errno == ECHILD)) {
        s.pid = 0;
        break;
      }
      if (mono_ns() > deadline) {
        kill(s.pid, SIGKILL);
        waitpid(s.pid, &status, 0);
        s.pid = 0;
        break;
      }
      usleep(10000);
    }
  }
  LOG_INFO("http", "supervisor stopped");
  return exit_code;
}

}  // namespace tickfan::http
