// record_main.cpp — tickfan-record: subscribes to NATS subjects (default
// every quote subject, tickfan.q.>) and writes each message as it arrives,
// with its receive time and subject, to a recording file (tools/recording.h,
// docs/recording.md). tickfan-replay plays it back.
//
//   tickfan-record --nats nats://127.0.0.1:4222 -o /var/tmp/$(date +%F).tfr
//   tickfan-record --subject 'tickfan.q.sh.>' -o sh.tfr --duration 600
//
// It records what NATS delivers and nothing else: messages sent while it was
// disconnected are not in the file (each reconnect is logged), and a
// subscription overflow is counted and reported at the end, never hidden.
#include <nats/nats.h>
#include <signal.h>

#include <CLI/CLI.hpp>
#include <cstring>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "batch.h"
#include "cli_checks.h"
#include "clock.h"
#include "log.h"
#include "recording.h"
#include "signals.h"

using namespace tickfan;
using namespace tickfan::tools;

namespace {

struct Recorder {
  std::mutex mu;
  RecordingWriter writer;
  uint64_t messages = 0;
  uint64_t bytes = 0;
  uint64_t not_batches = 0;  // recorded anyway: a recording is evidence
  uint64_t write_errors = 0;
  std::map<natsSubscription*, int64_t> handled;  // callbacks returned (or about to), per subscription
};

void on_msg(natsConnection*, natsSubscription* sub, natsMsg* msg, void* closure) {
  auto* r = static_cast<Recorder*>(closure);
  const int64_t now = wall_ns();  // before the lock: the time NATS handed it over
  const char* subject = natsMsg_GetSubject(msg);
  const char* data = natsMsg_GetData(msg);
  const int len = natsMsg_GetDataLength(msg);
  std::vector<uint64_t> scratch;
  const wire::QuoteBatch* batch = nullptr;
  bool is_batch = verify_batch(aligned_payload(data, static_cast<size_t>(len), scratch), static_cast<size_t>(len),
                               &batch) == BatchError::ok;
  {
    std::lock_guard lock(r->mu);
    if (r->writer.append(now, subject, data, static_cast<size_t>(len))) {
      ++r->messages;
      r->bytes += static_cast<uint64_t>(len);
      if (!is_batch) ++r->not_batches;
    } else {
      ++r->write_errors;
    }
    ++r->handled[sub];
  }
  natsMsg_Destroy(msg);
}

void on_disconnected(natsConnection* nc, void*) {
  // Our own close at a stop disconnects too: that is not a loss to warn of.
  if (natsConnection_IsClosed(nc)) return;
  LOG_WARN("record", "disconnected from NATS: messages published until the reconnect are not recorded");
}
void on_reconnected(natsConnection*, void*) { LOG_INFO("record", "reconnected to NATS"); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "tickfan-record: records the QuoteBatch messages on NATS subjects to a file (length-prefixed, with receive\n"
      "timestamps; docs/recording.md) for tickfan-replay.\n"
      "  tickfan-record --nats nats://127.0.0.1:4222 -o today.tfr"};
  std::vector<std::string> servers{"nats://127.0.0.1:4222"}, subjects{"tickfan.q.>"};
  std::string output, creds, user, password, token, log_level = "info";
  double duration_s = 0, progress_s = -1;
  uint64_t max_messages = 0;
  app.add_option("--nats", servers, "NATS server URL(s), comma-separated or repeated")
      ->delimiter(',')
      ->check(NatsUrl)
      ->capture_default_str();
  app.add_option("--subject", subjects, "Subject to record, repeatable; wildcards allowed")->capture_default_str();
  app.add_option("-o,--output", output, "Recording file to create (truncated if it exists)")->required();
  // --duration -5 or nan used to mean "until stopped", silently.
  app.add_option("--duration", duration_s, "Stop after this many seconds (0 = until Ctrl-C/SIGTERM)")
      ->check(NotNaN)
      ->check(CLI::Range(0.0, 1e9))
      ->capture_default_str();
  // CLI11 stores "-1" in an unsigned as 2^64-1: no limit, silently.
  app.add_option("--count", max_messages, "Stop after this many messages (0 = no limit)")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  app.add_option("--nats-creds", creds, "NATS .creds file (user JWT + nkey seed)")->check(RegularFile);
  app.add_option("--nats-user", user, "NATS user")->check(NatsConnectText);
  app.add_option("--nats-password", password, "NATS password")->check(NatsConnectText);
  app.add_option("--nats-token", token, "NATS token")->check(NatsConnectText);
  app.add_option("--progress-s", progress_s,
                 "Seconds between progress lines on stderr (0 = none; default 1 on a terminal, 10 otherwise)")
      ->check(NotNaN)
      ->check(CLI::Range(0.0, 86400.0));
  app.add_option("--log-level", log_level, "debug, info, warn or error")->check(LogLevelName)->capture_default_str();
  if (int rc = parse_command_line(app, argc, argv); rc >= 0) return rc;
  LogLevel level;
  if (log_parse_level(log_level.c_str(), &level)) log_set_level(level);

  // Stop signals are taken synchronously by the main loop (sigtimedwait);
  // block them before the NATS client starts its threads, which inherit the mask.
  const sigset_t stop_set = block_stop_signals();

  Recorder rec;
  std::string meta = "tool=tickfan-record\nsubjects=";
  for (size_t i = 0; i < subjects.size(); ++i) meta += (i ? "," : "") + subjects[i];
  meta += "\nnats=";
  for (size_t i = 0; i < servers.size(); ++i) meta += (i ? "," : "") + servers[i];
  char host[256] = "";
  gethostname(host, sizeof host - 1);
  meta += std::string("\nhost=") + host + "\n";
  std::string err;
  if (!rec.writer.open(output, meta, &err)) {
    std::fprintf(stderr, "tickfan-record: %s\n", err.c_str());
    return 1;
  }

  natsOptions* opts = nullptr;
  natsConnection* nc = nullptr;
  std::vector<natsSubscription*> subs;
  std::vector<const char*> urls;
  for (auto& s : servers) urls.push_back(s.c_str());
  natsStatus s = natsOptions_Create(&opts);
  if (s == NATS_OK) s = natsOptions_SetServers(opts, urls.data(), static_cast<int>(urls.size()));
  if (s == NATS_OK) s = natsOptions_SetName(opts, "tickfan-record");
  if (s == NATS_OK) s = natsOptions_SetMaxReconnect(opts, -1);  // a recorder outlives NATS restarts
  if (s == NATS_OK) s = natsOptions_SetReconnectWait(opts, 250);
  if (s == NATS_OK) s = natsOptions_SetDisconnectedCB(opts, on_disconnected, nullptr);
  if (s == NATS_OK) s = natsOptions_SetReconnectedCB(opts, on_reconnected, nullptr);
  if (s == NATS_OK && !creds.empty()) s = natsOptions_SetUserCredentialsFromFiles(opts, creds.c_str(), nullptr);
  if (s == NATS_OK && !user.empty()) s = natsOptions_SetUserInfo(opts, user.c_str(), password.c_str());
  if (s == NATS_OK && !token.empty()) s = natsOptions_SetToken(opts, token.c_str());
  if (s == NATS_OK) s = natsConnection_Connect(&nc, opts);
  if (s != NATS_OK) {
    std::string list = meta.substr(meta.find("nats=") + 5);
    list = list.substr(0, list.find('\n'));  // was the rest of the metadata too, over three lines
    std::fprintf(stderr, "tickfan-record: cannot connect to %s: %s\n", list.c_str(), natsStatus_GetText(s));
    return 1;
  }
  for (const auto& subj : subjects) {
    natsSubscription* sub = nullptr;
    s = natsConnection_Subscribe(&sub, nc, subj.c_str(), on_msg, &rec);
    // Generous pending limits: the callback only appends to a buffered file,
    // but a slow disk must show up as counted drops, not a stalled server.
    if (s == NATS_OK) s = natsSubscription_SetPendingLimits(sub, 1000000, 1 << 30);
    if (s != NATS_OK) {
      std::fprintf(stderr, "tickfan-record: cannot subscribe to %s: %s\n", subj.c_str(), natsStatus_GetText(s));
      return 1;
    }
    subs.push_back(sub);
  }
  // Once the server has our subscriptions, nothing published from now on is missed.
  s = natsConnection_FlushTimeout(nc, 5000);
  if (s != NATS_OK) {
    std::fprintf(stderr, "tickfan-record: NATS flush failed: %s\n", natsStatus_GetText(s));
    return 1;
  }
  std::string subject_list = meta.substr(meta.find("subjects=") + 9);
  subject_list = subject_list.substr(0, subject_list.find('\n'));
  std::fprintf(stderr, "tickfan-record: recording %s to %s\n", subject_list.c_str(), output.c_str());

  const bool tty = isatty(STDERR_FILENO);
  if (progress_s < 0) progress_s = tty ? 1 : 10;
  const int64_t start = mono_ns();
  int64_t last_report = start, last_flush = start;
  uint64_t last_messages = 0;
  int sig = 0;
  for (;;) {
    timespec wait{0, 100000000};
    int got = sigtimedwait(&stop_set, nullptr, &wait);
    if (got > 0) {
      sig = got;
      break;
    }
    const int64_t now = mono_ns();
    uint64_t messages, bytes;
    {
      std::lock_guard lock(rec.mu);
      messages = rec.messages;
      bytes = rec.bytes;
      // Flush about once a second so a crash loses at most a second and a
      // reader (replay of a file still being recorded) sees recent data.
      if (now - last_flush >= 1000000000) {
        rec.writer.flush();
        last_flush = now;
      }
    }
    if (progress_s > 0 && now - last_report >= static_cast<int64_t>(progress_s * 1e9)) {
      double dt = static_cast<double>(now - last_report) / 1e9;
      std::fprintf(
          stderr,
          tty ? "\r\033[Krecord: %llu messages, %.1f MB, %.0f msg/s" : "record: %llu messages, %.1f MB, %.0f msg/s\n",
          static_cast<unsigned long long>(messages), static_cast<double>(bytes) / 1e6,
          static_cast<double>(messages - last_messages) / dt);
      last_report = now;
      last_messages = messages;
    }
    if (duration_s > 0 && static_cast<double>(now - start) / 1e9 >= duration_s) break;
    if (max_messages && messages >= max_messages) break;
  }
  if (tty && progress_s > 0) std::fprintf(stderr, "\n");

  // Record everything the server routed to us before the stop, so a stop
  // right after the last publish still records it. The client's pending
  // count covers only what its reader thread has already taken off the
  // socket: on a loaded machine the rest of a burst can still sit in our
  // socket or in the server's buffer for us (a recording once kept 64 of 300
  // ticks). A flush is a round trip behind all of it: the server answers our
  // PING after everything it routed to us before, so once the PONG is in,
  // each such message is delivered, pending or counted as dropped. Then wait
  // (up to 5 s in all) until the callbacks have handled every message
  // delivered or pending at that point; later arrivals do not extend it.
  const int64_t drain_deadline = mono_ns() + 5'000'000'000LL;
  natsStatus fs = natsConnection_FlushTimeout(nc, 2000);
  if (fs != NATS_OK) {
    LOG_WARN("record", "flush at stop failed (%s): messages still on their way are not recorded",
             natsStatus_GetText(fs));
  }
  std::vector<int64_t> target(subs.size(), 0);
  for (size_t i = 0; i < subs.size(); ++i) {
    int pending = 0;
    int64_t delivered = 0;
    if (natsSubscription_GetStats(subs[i], &pending, nullptr, nullptr, nullptr, &delivered, nullptr) == NATS_OK)
      target[i] = delivered + pending;
  }
  for (;;) {
    bool done = true;
    {
      std::lock_guard lock(rec.mu);
      for (size_t i = 0; i < subs.size() && done; ++i) done = rec.handled[subs[i]] >= target[i];
    }
    if (done || mono_ns() > drain_deadline) break;
    timespec ts{0, 5000000};
    nanosleep(&ts, nullptr);
  }
  int64_t dropped = 0;
  for (auto* sub : subs) {
    int64_t d = 0;
    natsSubscription_GetDropped(sub, &d);
    dropped += d;
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
  }
  natsConnection_Close(nc);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
  nats_Close();

  std::lock_guard lock(rec.mu);
  bool ok = rec.writer.close(&err);
  std::fprintf(stderr,
               "tickfan-record: %llu messages (%llu bytes of payload) in %s%s; %lld dropped by the client, %llu not "
               "QuoteBatches, %llu write errors\n",
               static_cast<unsigned long long>(rec.messages), static_cast<unsigned long long>(rec.bytes),
               output.c_str(), sig ? (sig == SIGINT ? ", stopped by SIGINT" : ", stopped by SIGTERM") : "",
               static_cast<long long>(dropped), static_cast<unsigned long long>(rec.not_batches),
               static_cast<unsigned long long>(rec.write_errors));
  if (!ok) {
    std::fprintf(stderr, "tickfan-record: %s\n", err.c_str());
    return 1;
  }
  return rec.write_errors || dropped ? 1 : 0;
}
