// harness.h — what the apiserver integration tests share: a NATS subscriber
// that verifies and decodes every batch it receives, a snapshot requester
// (inbox subscription, as the apiclient does it), and helpers to start the
// real tickfan-apiserver binary and scrape its /metrics.
#pragma once
#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "batch.h"
#include "nats_server.h"
#include "process.h"

namespace tickfan::testing {

struct Received {
  std::string subject;
  uint64_t epoch = 0, sequence = 0;
  wire::BatchKind kind = wire::BatchKind::Delta;
  std::vector<Quote> quotes;
  std::vector<SubjectSequence> marks;
};

inline Received decode(const char* subject, const void* data, size_t len) {
  std::vector<uint64_t> scratch;
  const void* p = aligned_payload(data, len, scratch);
  const wire::QuoteBatch* b = nullptr;
  BatchError e = verify_batch(p, len, &b);
  if (e != BatchError::ok) throw std::runtime_error(std::string("bad batch: ") + batch_error_name(e));
  Received r;
  r.subject = subject;
  r.epoch = b->epoch();
  r.sequence = b->sequence();
  r.kind = b->kind();
  if (b->quotes()) {
    for (const Quote* q : *b->quotes()) r.quotes.push_back(*q);
  }
  if (b->marks()) {
    for (const auto* m : *b->marks()) r.marks.push_back({m->subject()->str(), m->sequence()});
  }
  return r;
}

// Subscribes to `subject` and keeps every decoded batch.
class Subscriber {
 public:
  Subscriber(const std::string& url, const std::string& subject) {
    if (natsConnection_ConnectTo(&nc_, url.c_str()) != NATS_OK) throw std::runtime_error("subscriber connect");
    if (natsConnection_Subscribe(&sub_, nc_, subject.c_str(), on_msg, this) != NATS_OK) {
      throw std::runtime_error("subscribe");
    }
    natsSubscription_SetPendingLimits(sub_, -1, -1);
    natsConnection_Flush(nc_);  // the server knows the subscription before we go on
  }
  ~Subscriber() {
    natsSubscription_Unsubscribe(sub_);
    natsSubscription_Destroy(sub_);
    natsConnection_Close(nc_);
    natsConnection_Destroy(nc_);
  }
  std::vector<Received> batches() {
    std::lock_guard<std::mutex> l(mu_);
    return got_;
  }
  size_t quote_count() {
    std::lock_guard<std::mutex> l(mu_);
    return quotes_;
  }
  int errors() {
    std::lock_guard<std::mutex> l(mu_);
    return errors_;
  }
  natsConnection* connection() { return nc_; }
  // True once, for every subject in `marks`, a delta batch of `epoch` at or
  // past its mark has arrived (one publisher: a subject's deltas arrive in
  // order). A subscriber can lag the publisher by any amount: wait on this,
  // never on a fixed sleep, before comparing with a snapshot's end marker.
  bool reached(const std::vector<SubjectSequence>& marks, uint64_t epoch) {
    std::lock_guard<std::mutex> l(mu_);
    for (const auto& m : marks) {
      auto it = last_delta_.find(m.subject);
      uint64_t seen = it != last_delta_.end() && it->second.first == epoch ? it->second.second : 0;
      if (seen < m.sequence) return false;
    }
    return true;
  }

 private:
  static void on_msg(natsConnection*, natsSubscription*, natsMsg* m, void* p) {
    auto* self = static_cast<Subscriber*>(p);
    try {
      Received r = decode(natsMsg_GetSubject(m), natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)));
      std::lock_guard<std::mutex> l(self->mu_);
      self->quotes_ += r.quotes.size();
      if (r.kind == wire::BatchKind::Delta) self->last_delta_[r.subject] = {r.epoch, r.sequence};
      self->got_.push_back(std::move(r));
    } catch (...) {
      std::lock_guard<std::mutex> l(self->mu_);
      ++self->errors_;
    }
    natsMsg_Destroy(m);
  }
  natsConnection* nc_ = nullptr;
  natsSubscription* sub_ = nullptr;
  std::mutex mu_;
  std::vector<Received> got_;
  std::map<std::string, std::pair<uint64_t, uint64_t>> last_delta_;  // subject -> (epoch, sequence)
  size_t quotes_ = 0;
  int errors_ = 0;
};

// Requests a snapshot the way an apiclient does: its own inbox subscription,
// then a publish with that reply subject; collects until SnapshotEnd.
inline std::vector<Received> request_snapshot(const std::string& url, const std::string& filter,
                                              const std::string& prefix = "tickfan.q", int timeout_ms = 5000) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) throw std::runtime_error("snapshot connect");
  natsInbox* inbox = nullptr;
  natsInbox_Create(&inbox);
  natsSubscription* sub = nullptr;
  natsConnection_SubscribeSync(&sub, nc, inbox);
  natsSubscription_SetPendingLimits(sub, -1, -1);
  natsConnection_PublishRequest(nc, (prefix + "-snapshot").c_str(), inbox, filter.data(),
                                static_cast<int>(filter.size()));
  std::vector<Received> out;
  for (;;) {
    natsMsg* m = nullptr;
    if (natsSubscription_NextMsg(&m, sub, timeout_ms) != NATS_OK) break;
    out.push_back(decode(natsMsg_GetSubject(m), natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m))));
    natsMsg_Destroy(m);
    if (out.back().kind == wire::BatchKind::SnapshotEnd) break;
  }
  natsSubscription_Destroy(sub);
  natsInbox_Destroy(inbox);
  natsConnection_Close(nc);
  natsConnection_Destroy(nc);
  return out;
}

// The decimal number right after the first `key` in `text`; -1 if absent.
// (No std::regex: GCC 12 warns inside <regex> under ASan.)
inline long long number_after(const std::string& text, const std::string& key) {
  size_t p = text.find(key);
  if (p == std::string::npos) return -1;
  p += key.size();
  size_t e = p;
  while (e < text.size() && text[e] >= '0' && text[e] <= '9') ++e;
  return e > p ? std::stoll(text.substr(p, e - p)) : -1;
}

// The real binary with a metrics listener on an OS-chosen port.
class Apiserver {
 public:
  Apiserver(const TempDir& dir, const std::string& nats_url, std::vector<std::string> args)
      : log_(dir.file("apiserver.log")) {
    std::vector<std::string> argv{binary("apiserver/tickfan-apiserver"), "--nats", nats_url, "--metrics-port", "-1"};
    argv.insert(argv.end(), args.begin(), args.end());
    proc_ = ChildProcess(argv, log_);
  }
  ChildProcess& proc() { return proc_; }
  std::string log() const { return read_file(log_); }
  // Port from the "listening addr=127.0.0.1:PORT" line.
  int metrics_port() {
    if (port_ == 0) {
      wait_until([&] { return (port_ = number_after(log(), "listening addr=127.0.0.1:")) > 0; }, 5000);
    }
    return static_cast<int>(port_);
  }
  std::string metrics() {
    int port = metrics_port();
    if (port == 0) return "";
    return loopback_http_get(port, "/metrics");
  }
  // Value of one series (exact name+labels text), -1 when absent.
  double metric(const std::string& series) {
    std::string text = metrics();
    size_t p = text.find("\n" + series + " ");
    if (p == std::string::npos) return -1;
    return std::stod(text.substr(p + series.size() + 2));
  }

 private:
  std::string log_;
  ChildProcess proc_;
  long long port_ = 0;
};

// Per subject, the sequences of delta batches in arrival order.
inline std::map<std::string, std::vector<uint64_t>> sequences_by_subject(const std::vector<Received>& batches) {
  std::map<std::string, std::vector<uint64_t>> out;
  for (const auto& b : batches) {
    if (b.kind == wire::BatchKind::Delta) out[b.subject].push_back(b.sequence);
  }
  return out;
}

inline bool contiguous_from_one(const std::vector<uint64_t>& seqs) {
  for (size_t i = 0; i < seqs.size(); ++i) {
    if (seqs[i] != i + 1) return false;
  }
  return true;
}

}  // namespace tickfan::testing
