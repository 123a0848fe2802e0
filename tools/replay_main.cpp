// replay_main.cpp — tickfan-replay: feeds a recording (tickfan-record) or a
// CSV/JSONL tick file to an apiserver as tick lines, at the original pace,
// N times faster, or as fast as the apiserver reads; optionally looped and
// cut to a time window. docs/operations.md has the recipes.
//
//   tickfan-replay rec.tfr | tickfan-apiserver --source stdin: --nats ...
//   tickfan-replay ticks.csv --speed 10 --listen 9100   # apiserver: --source tcp://127.0.0.1:9100
//
// Lines go to stdout (default) and/or to every client of a loopback TCP
// listener (--listen), which is what an apiserver's tcp:// source connects
// to. Progress goes to stderr: a live line on a terminal, plain lines
// otherwise (logs, CI).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <string>
#include <vector>

#include "cli_checks.h"
#include "clock.h"
#include "log.h"
#include "replay.h"
#include "tick_input.h"
#include "tick_writer.h"

using namespace tickfan;
using namespace tickfan::tools;

namespace {

volatile sig_atomic_t g_signal = 0;
void on_signal(int sig) { g_signal = sig; }

// Writes all of `data` to `fd`; false on an error other than EINTR.
bool write_all(int fd, const char* data, size_t n) {
  while (n) {
    // A signal that interrupts a write that had already written part returns
    // that part, not EINTR: without this check the next write blocked for
    // good on a reader that had stopped reading (SIGTERM needed SIGKILL).
    if (g_signal) return false;
    ssize_t w = fd == STDOUT_FILENO ? ::write(fd, data, n) : ::send(fd, data, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) {
        if (g_signal) return false;
        continue;
      }
      return false;
    }
    data += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Where lines go: stdout and/or TCP clients. A TCP replay holds back while
// no client is connected (an apiserver restarting, or not started yet), so
// no tick is lost to an empty socket; the paused time is not counted against
// the pace.
class Sinks {
 public:
  Sinks(bool to_stdout, TickFormat format) : stdout_(to_stdout), format_(format) {}
  ~Sinks() {
    for (int c : clients_) ::close(c);
    if (listen_fd_ >= 0) ::close(listen_fd_);
  }

  bool listen(const std::string& host, int port, std::string* error) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    setsockopt(listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    if (inet_pton(AF_INET, host.c_str(), &a.sin_addr) != 1) {
      *error = "--listen-host " + host + " is not an IPv4 address";
      return false;
    }
    if (::bind(listen_fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(listen_fd_, 16) != 0) {
      *error = "cannot listen on " + host + ":" + std::to_string(port) + ": " + std::strerror(errno);
      return false;
    }
    socklen_t len = sizeof a;
    getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    host_ = host;
    // Tests and scripts read the port from this line when --listen 0.
    std::fprintf(stderr, "tickfan-replay: listening on %s:%d\n", host.c_str(), port_);
    return true;
  }

  // Takes every pending connection; new clients get the CSV header first.
  void accept_new() {
    if (listen_fd_ < 0) return;
    for (;;) {
      int c = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      if (format_ == TickFormat::csv && !write_all(c, csv_header().data(), csv_header().size())) {
        ::close(c);
        continue;
      }
      clients_.push_back(c);
      LOG_INFO("replay", "client connected (%zu now)", clients_.size());
    }
  }

  // Waits until a TCP client is connected (when listening and none is).
  // Returns the nanoseconds spent waiting, or -1 when a signal stopped it.
  int64_t wait_for_client() {
    if (listen_fd_ < 0) return 0;
    accept_new();
    if (!clients_.empty()) return 0;
    int64_t t0 = mono_ns();
    LOG_INFO("replay", "waiting for a client on %s:%d", host_.c_str(), port_);
    while (clients_.empty()) {
      if (g_signal) return -1;
      pollfd p{listen_fd_, POLLIN, 0};
      ::poll(&p, 1, 200);
      accept_new();
    }
    return mono_ns() - t0;
  }

  // Sends the buffer to every sink; false when stdout failed (the reader is
  // gone: nothing left to feed). A TCP client that fails is dropped.
  bool write(const std::string& buf) {
    if (buf.empty()) return true;
    if (stdout_ && !write_all(STDOUT_FILENO, buf.data(), buf.size())) return false;
    for (size_t i = 0; i < clients_.size();) {
      if (write_all(clients_[i], buf.data(), buf.size())) {
        ++i;
        continue;
      }
      if (g_signal) return false;  // a stop, not a client that went away
      LOG_WARN("replay", "client dropped: %s", std::strerror(errno));
      ::close(clients_[i]);
      clients_.erase(clients_.begin() + static_cast<long>(i));
    }
    return true;
  }

  bool listening() const { return listen_fd_ >= 0; }
  bool has_clients() const { return !clients_.empty(); }

 private:
  bool stdout_;
  TickFormat format_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::string host_;
  std::vector<int> clients_;
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tickfan-replay: feeds a recording (tickfan-record) or a CSV/JSONL tick file to an apiserver as tick lines.\n"
      "  tickfan-replay rec.tfr | tickfan-apiserver --source stdin: --nats nats://127.0.0.1:4222\n"
      "  tickfan-replay tests/data/ticks-sample.csv --speed 10 --loop --listen 9100\n"
      "      (apiserver: --source tcp://127.0.0.1:9100)\n"
      "Docs: docs/operations.md (recipes), docs/recording.md (file format), docs/ticks.md (line formats)."};
  std::string path, speed_text = "1", format_name = "jsonl", from_text, to_text, listen_host = "127.0.0.1",
                    log_level = "info";
  uint32_t loops = 1;
  bool loop_forever = false, restamp = false, force_stdout = false;
  int listen_port = -1;
  double progress_s = -1;
  app.add_option("input", path, "Recording (TFRECORD) or tick file (CSV/JSONL), told apart by content")
      ->required()
      ->check(RegularFile);  // read twice (a scan, then each pass): a FIFO or device cannot be
  app.add_option("--speed", speed_text,
                 "1 = original pace, N = N times faster, 'max' (or 0) = as fast as the reader takes")
      ->capture_default_str();
  app.add_option("--loops", loops, "Passes over the input; each pass shifts exchange timestamps by the loop period")
      ->check(CLI::Range(1u, 1000000u))
      ->capture_default_str();
  app.add_flag("--loop", loop_forever, "Loop until stopped (Ctrl-C)");
  app.add_option("--from", from_text,
                 "Start of the window: offset from the first event (90s, 1m30s) or UTC time / epoch ms");
  app.add_option("--to", to_text, "End of the window (inclusive), same forms as --from");
  app.add_flag("--restamp", restamp,
               "Stamp every tick with the wall clock as it is written (demos: the data looks live; "
               "long full-speed loops: no tick runs ahead of the apiserver's --max-future-ms)");
  app.add_option("--format", format_name, "Line format written: jsonl or csv")
      ->check(CLI::IsMember({"jsonl", "json", "csv"}))
      ->capture_default_str();
  app.add_option("--listen", listen_port,
                 "Serve the lines on this TCP port (0 = any free port, printed) "
                 "instead of stdout; waits for a client before starting")
      ->check(CLI::Range(0, 65535));
  app.add_option("--listen-host", listen_host, "IPv4 address of the --listen socket")
      ->check(CLI::ValidIPV4)  // a name failed only after the whole input was scanned, exit 1
      ->capture_default_str();
  app.add_flag("--stdout", force_stdout, "Write to stdout as well when --listen is given");
  app.add_option("--progress-s", progress_s,
                 "Seconds between plain progress lines when stderr is not a terminal (0 = none; default 5)")
      ->check(NotNaN)
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--log-level", log_level, "debug, info, warn or error")->check(LogLevelName)->capture_default_str();
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;

  LogLevel level;
  if (log_parse_level(log_level.c_str(), &level)) log_set_level(level);
  double speed = 0;
  if (speed_text != "max") {
    // Whole text, finite, and not so small that a tick's due time overflows
    // int64 nanoseconds: std::stod took "5x" as 5, "nan" as max, and 1e-300
    // as a pace whose due times overflowed.
    char* end = nullptr;
    speed = std::strtod(speed_text.c_str(), &end);
    if (speed_text.empty() || *end != '\0' || !(speed == 0 || (speed >= 0.001 && speed <= 1e9))) {
      std::fprintf(stderr, "tickfan-replay: --speed %s: use a factor from 0.001 to 1e9, or max (or 0)\n",
                   speed_text.c_str());
      return 2;
    }
  }
  TickFormat format;
  tick_format_from_name(format_name, &format);
  TimeSpec from, to;
  std::string err;
  if ((!from_text.empty() && !parse_time_spec(from_text, &from, &err)) ||
      (!to_text.empty() && !parse_time_spec(to_text, &to, &err))) {
    std::fprintf(stderr, "tickfan-replay: %s\n", err.c_str());
    return 2;
  }
  auto input = TickInput::open(path, &err);
  if (!input) {
    std::fprintf(stderr, "tickfan-replay: %s\n", err.c_str());
    return 1;
  }

  // Pass 0: count the window's events and find its time span, so progress
  // can show a total and an ETA and loops know their period.
  TickEvent ev;
  int64_t first_ns = 0, win_first = INT64_MAX, win_last = INT64_MIN, win_stamp_max = INT64_MIN;
  uint64_t win_events = 0;
  if (input->next(&ev)) {
    first_ns = ev.event_ns;  // what relative --from/--to count from
  } else {
    std::fprintf(stderr, "tickfan-replay: %s holds no ticks (%llu lines refused)\n", path.c_str(),
                 static_cast<unsigned long long>(input->stats().rejected));
    return 1;
  }
  const int64_t lo = from.set ? resolve_time(from, first_ns) : INT64_MIN;
  const int64_t hi = to.set ? resolve_time(to, first_ns) : INT64_MAX;
  input->rewind();
  while (input->next(&ev)) {
    if (ev.event_ns < lo || ev.event_ns > hi) continue;
    ++win_events;
    win_first = std::min(win_first, ev.event_ns);
    win_last = std::max(win_last, ev.event_ns);
    win_stamp_max = std::max({win_stamp_max, ev.event_ns, ev.quote.exchange_ts_ns()});
  }
  const InputStats scan = input->stats();
  if (scan.truncated)
    LOG_WARN("replay", "%s ends inside a record (recorder killed?): replaying what is complete", path.c_str());
  if (scan.corrupt) LOG_WARN("replay", "%s has a corrupt record: replaying what precedes it", path.c_str());
  if (win_events == 0) {
    std::fprintf(stderr, "tickfan-replay: no ticks between --from and --to (the input has %llu)\n",
                 static_cast<unsigned long long>(scan.ticks));
    return 1;
  }
  const int64_t period = loop_period_ns(win_first, win_last, win_events);
  const uint32_t passes = loop_forever ? 0 : loops;
  // Pass k shifts every time by k periods. Past what int64 nanoseconds hold
  // (year 2262) the shifted stamps wrapped to negative times: refuse such a
  // --loops up front, and end an endless --loop there (below).
  // (--restamp stamps the wall clock: then only the replay clock shifts.)
  const uint64_t pass_limit = shifted_pass_limit(restamp ? win_last - win_first : win_stamp_max, period);
  if (passes > pass_limit) {
    std::fprintf(stderr,
                 "tickfan-replay: --loops %u over a loop period of %.3f s would stamp ticks past what int64 "
                 "nanoseconds hold (year 2262); at most %llu passes of this window\n",
                 passes, static_cast<double>(period) / 1e9, static_cast<unsigned long long>(pass_limit));
    return 1;
  }
  LOG_INFO("replay",
           "%s %s: %llu ticks in the window over %.3f s (%llu refused lines, %llu bad messages), speed %s, %s passes",
           input->kind(), path.c_str(), static_cast<unsigned long long>(win_events),
           static_cast<double>(win_last - win_first) / 1e9, static_cast<unsigned long long>(scan.rejected),
           static_cast<unsigned long long>(scan.bad_messages), speed > 0 ? speed_text.c_str() : "max",
           passes ? std::to_string(passes).c_str() : "endless");

  struct sigaction sa {};
  sa.sa_handler = on_signal;  // no SA_RESTART: a blocking write or sleep returns at once
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Sinks sinks(listen_port < 0 || force_stdout, format);
  if (listen_port >= 0 && !sinks.listen(listen_host, listen_port, &err)) {
    std::fprintf(stderr, "tickfan-replay: %s\n", err.c_str());
    return 1;
  }
  std::string buf;
  if (format == TickFormat::csv && (listen_port < 0 || force_stdout)) {
    if (!write_all(STDOUT_FILENO, csv_header().data(), csv_header().size())) return 1;
  }
  if (sinks.wait_for_client() < 0) return 128 + g_signal;

  const bool tty = isatty(STDERR_FILENO);
  if (progress_s < 0) progress_s = tty ? 0.25 : 5;
  const int64_t progress_every = static_cast<int64_t>(progress_s * 1e9);
  Progress prog;
  prog.total = passes ? win_events * passes : 0;
  prog.passes = passes;
  prog.span_ns = passes ? (passes - 1) * period + (win_last - win_first) : 0;
  int64_t start = mono_ns();
  int64_t last_report = start, last_done = 0, last_restamp = 0;
  bool ok = true;
  auto report = [&](bool final) {
    int64_t now = mono_ns();
    double dt = static_cast<double>(now - last_report) / 1e9;
    prog.rate = final ? static_cast<double>(prog.done) / (static_cast<double>(now - start) / 1e9 + 1e-9)
                      : static_cast<double>(prog.done - last_done) / (dt > 0 ? dt : 1);
    if (final) {
      prog.eta_s = 0;
    } else if (speed > 0 && prog.span_ns > 0) {
      prog.eta_s = static_cast<double>(prog.span_ns - prog.position_ns) / 1e9 / speed;
    } else if (prog.total && prog.rate > 0) {
      prog.eta_s = static_cast<double>(prog.total - prog.done) / prog.rate;
    } else {
      prog.eta_s = -1;
    }
    last_report = now;
    last_done = prog.done;
    std::string line = format_progress(prog);
    if (tty) {
      std::fprintf(stderr, "\r\033[Kreplay: %s%s", line.c_str(), final ? "\n" : "");
    } else {
      std::fprintf(stderr, "replay: %s%s\n", line.c_str(), final ? " (done)" : "");
    }
    std::fflush(stderr);
  };
  // Flushes `buf`; a TCP replay with no client left pauses here until one
  // reconnects, and moves `start` on so the pause does not count as lag.
  auto flush = [&]() {
    sinks.accept_new();
    if (sinks.listening() && !sinks.has_clients()) {
      int64_t waited = sinks.wait_for_client();
      if (waited < 0) return false;
      start += waited;
    }
    if (!sinks.write(buf)) {
      // A stop cuts the write short too: that is not a closed stdout.
      if (!g_signal) LOG_ERROR("replay", "stdout closed (the apiserver exited?): %s", std::strerror(errno));
      return false;
    }
    buf.clear();
    return true;
  };

  for (uint64_t pass = 0; ok && (passes == 0 || pass < passes); ++pass) {
    if (pass >= pass_limit) {
      LOG_ERROR("replay", "pass %llu would shift times past what int64 nanoseconds hold (year 2262): stopping%s",
                static_cast<unsigned long long>(pass + 1), restamp ? "" : " (--restamp stamps the wall clock instead)");
      ok = false;
      break;
    }
    prog.pass = pass + 1;
    if (!input->rewind()) {
      LOG_ERROR("replay", "cannot rewind %s", path.c_str());
      ok = false;
      break;
    }
    const int64_t shift = static_cast<int64_t>(pass) * period;
    while (ok && !g_signal && input->next(&ev)) {
      if (ev.event_ns < lo || ev.event_ns > hi) continue;
      const int64_t t = ev.event_ns - win_first + shift;  // replay-relative event time
      if (speed > 0) {
        const int64_t due = start + static_cast<int64_t>(static_cast<double>(t) / speed);
        // Ticks due within 50 µs go out in the same write; otherwise flush
        // what is pending and sleep in short steps (progress, signals).
        for (int64_t now = mono_ns(); due - now > 50000 && !g_signal; now = mono_ns()) {
          if (!buf.empty() && !flush()) {
            ok = false;
            break;
          }
          int64_t step = std::min<int64_t>(due - now, 100000000);
          timespec ts{static_cast<time_t>(step / 1000000000), static_cast<long>(step % 1000000000)};
          nanosleep(&ts, nullptr);
          if (progress_every > 0 && mono_ns() - last_report >= progress_every) report(false);
        }
        if (!ok || g_signal) break;
      }
      Quote q = ev.quote;
      if (restamp) {
        last_restamp = std::max(wall_ns(), last_restamp + 1);
        q.mutate_exchange_ts_ns(last_restamp);
      } else {
        q.mutate_exchange_ts_ns(q.exchange_ts_ns() + shift);
      }
      append_tick_line(q, format, &buf);
      ++prog.done;
      prog.position_ns = t;
      if (buf.size() >= 64 * 1024 && !flush()) ok = false;
      if ((prog.done & 255) == 0 && progress_every > 0 && mono_ns() - last_report >= progress_every) report(false);
    }
    if (g_signal) break;
  }
  if (ok && !flush()) ok = false;
  if (progress_every > 0 || !tty) report(true);
  if (g_signal) {
    LOG_INFO("replay", "stopped by signal %d after %llu ticks", static_cast<int>(g_signal),
             static_cast<unsigned long long>(prog.done));
    return 128 + g_signal;
  }
  return ok ? 0 : 1;
}
