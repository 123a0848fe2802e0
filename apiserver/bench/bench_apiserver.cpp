// bench_apiserver.cpp — the two halves of scripts/bench-apiserver.sh:
//   sub    subscribe to <prefix>.>, verify every batch, count quotes until
//          --expect quotes arrived (or --idle-ms without traffic), print the
//          rate between the first and the last message as one key=value line;
//   plain  a plain NATS publisher sending the same bytes the apiserver would:
//          batches of --batch synthetic quotes encoded once, published in a
//          loop over the same subjects, with the same client options.
// Not a test: a measuring tool (docs/BENCHMARKS.md).
#include <nats/nats.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "batch.h"
#include "clock.h"
#include "subjects.h"
#include "synthetic.h"

using namespace tickfan;

namespace {
struct SubState {
  std::atomic<uint64_t> quotes{0}, msgs{0}, bad{0};
  std::atomic<int64_t> first_ns{0}, last_ns{0};
  std::vector<uint64_t> scratch;
  // --latency: per quote, receipt here minus receipt at the apiserver (same
  // machine, same wall clock). Only the NATS callback thread appends.
  bool latency = false;
  std::vector<int64_t> latencies;
};

void on_msg(natsConnection*, natsSubscription*, natsMsg* m, void* p) {
  auto* s = static_cast<SubState*>(p);
  int64_t now = mono_ns();
  int64_t zero = 0;
  s->first_ns.compare_exchange_strong(zero, now);
  const void* data = aligned_payload(natsMsg_GetData(m), static_cast<size_t>(natsMsg_GetDataLength(m)), s->scratch);
  const wire::QuoteBatch* b = nullptr;
  if (verify_batch(data, static_cast<size_t>(natsMsg_GetDataLength(m)), &b) == BatchError::ok && b->quotes()) {
    s->quotes.fetch_add(b->quotes()->size(), std::memory_order_relaxed);
    if (s->latency) {
      int64_t wall = wall_ns();
      for (const Quote* q : *b->quotes()) {
        if (s->latencies.size() < s->latencies.capacity()) s->latencies.push_back(wall - q->receive_ts_ns());
      }
    }
  } else {
    s->bad.fetch_add(1, std::memory_order_relaxed);
  }
  s->msgs.fetch_add(1, std::memory_order_relaxed);
  s->last_ns.store(now, std::memory_order_relaxed);
  natsMsg_Destroy(m);
}

int run_sub(const std::string& url, const std::string& prefix, uint64_t expect, int idle_ms, const std::string& ready,
            bool latency) {
  natsConnection* nc = nullptr;
  if (natsConnection_ConnectTo(&nc, url.c_str()) != NATS_OK) {
    std::fprintf(stderr, "sub: cannot connect to %s\n", url.c_str());
    return 1;
  }
  SubState st;
  st.latency = latency;
  if (latency) st.latencies.reserve(std::min<uint64_t>(expect, 20'000'000));
  natsSubscription* sub = nullptr;
  natsConnection_Subscribe(&sub, nc, (prefix + ".>").c_str(), on_msg, &st);
  natsSubscription_SetPendingLimits(sub, -1, -1);  // count drops as missing quotes, not client drops
  natsConnection_Flush(nc);
  if (!ready.empty()) std::fclose(std::fopen(ready.c_str(), "w"));
  int64_t last_change = mono_ns();
  uint64_t seen = 0;
  while (st.quotes.load() < expect) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    uint64_t q = st.quotes.load();
    if (q != seen) {
      seen = q;
      last_change = mono_ns();
    } else if (mono_ns() - last_change > int64_t{idle_ms} * 1000000 &&
               (q > 0 || mono_ns() - last_change > 60'000'000'000)) {
      break;
    }
  }
  double secs = static_cast<double>(st.last_ns.load() - st.first_ns.load()) * 1e-9;
  uint64_t q = st.quotes.load();
  std::printf("quotes=%llu msgs=%llu bad=%llu seconds=%.3f quotes_per_s=%.0f complete=%d\n",
              static_cast<unsigned long long>(q), static_cast<unsigned long long>(st.msgs.load()),
              static_cast<unsigned long long>(st.bad.load()), secs, secs > 0 ? static_cast<double>(q) / secs : 0.0,
              q >= expect ? 1 : 0);
  natsSubscription_Unsubscribe(sub);
  if (latency && !st.latencies.empty()) {
    std::vector<int64_t>& l = st.latencies;
    std::sort(l.begin(), l.end());
    auto at = [&](double p) {
      return static_cast<double>(l[static_cast<size_t>(p * static_cast<double>(l.size() - 1))]) / 1000.0;
    };
    std::printf("latency_us p50=%.0f p90=%.0f p99=%.0f p999=%.0f max=%.0f samples=%zu\n", at(0.5), at(0.9), at(0.99),
                at(0.999), at(1.0), l.size());
  }
  natsSubscription_Destroy(sub);
  natsConnection_Close(nc);
  natsConnection_Destroy(nc);
  return q >= expect ? 0 : 3;
}

int run_plain(const std::string& url, const std::string& prefix, uint64_t count, size_t batch, uint32_t shards,
              bool send_asap) {
  natsOptions* opts = nullptr;
  natsOptions_Create(&opts);
  natsOptions_SetURL(opts, url.c_str());
  natsOptions_SetSendAsap(opts, send_asap);
  natsOptions_SetReconnectBufSize(opts, 64 * 1024 * 1024);
  natsConnection* nc = nullptr;
  if (natsConnection_Connect(&nc, opts) != NATS_OK) {
    std::fprintf(stderr, "plain: cannot connect to %s\n", url.c_str());
    return 1;
  }
  // Pre-encode one batch per subject from simulated quotes: same sizes, same
  // subjects as the apiserver's synthetic run; no per-message work but publish.
  apiserver::SyntheticMarket market(5000, 1);
  std::vector<std::string> subjects;
  std::vector<std::vector<uint8_t>> payloads;
  flatbuffers::FlatBufferBuilder fbb;
  std::vector<Quote> quotes(batch);
  for (Market m : {Market::SH, Market::SZ}) {
    for (uint32_t s = 0; s < shards; ++s) {
      for (auto& q : quotes) market.next(&q, wall_ns());
      encode_batch(fbb, BatchHeader{"plain", 1, 1, wire::BatchKind::Delta, wall_ns()}, quotes);
      subjects.push_back(delta_subject(prefix, m, s));
      payloads.emplace_back(fbb.GetBufferPointer(), fbb.GetBufferPointer() + fbb.GetSize());
    }
  }
  uint64_t msgs = (count + batch - 1) / batch;
  int64_t t0 = mono_ns();
  for (uint64_t i = 0; i < msgs; ++i) {
    size_t k = i % subjects.size();
    natsConnection_Publish(nc, subjects[k].c_str(), payloads[k].data(), static_cast<int>(payloads[k].size()));
  }
  natsConnection_FlushTimeout(nc, 30000);
  double secs = static_cast<double>(mono_ns() - t0) * 1e-9;
  std::printf("plain_published_quotes=%llu msgs=%llu bytes_per_msg=%zu seconds=%.3f\n",
              static_cast<unsigned long long>(msgs * batch), static_cast<unsigned long long>(msgs), payloads[0].size(),
              secs);
  natsConnection_Destroy(nc);
  natsOptions_Destroy(opts);
  return 0;
}
}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"tickfan apiserver benchmark helper (see scripts/bench-apiserver.sh)"};
  app.require_subcommand(1);
  std::string url = "nats://127.0.0.1:4222", prefix = "tickfan.q", ready;
  uint64_t count = 1000000;
  int idle_ms = 2000;
  size_t batch = 64;
  uint32_t shards = 4;
  bool send_asap = true;
  auto* sub = app.add_subcommand("sub", "Count quotes received on <prefix>.>");
  sub->add_option("--nats", url);
  sub->add_option("--prefix", prefix);
  sub->add_option("--expect", count, "Stop after this many quotes");
  sub->add_option("--idle-ms", idle_ms, "Stop after this long without traffic");
  sub->add_option("--ready-file", ready, "Created once subscribed");
  bool latency = false;
  sub->add_flag("--latency", latency, "Report per-quote latency from apiserver receipt to here (apiserver runs only)");
  auto* plain = app.add_subcommand("plain", "Publish pre-encoded batches as fast as possible");
  plain->add_option("--nats", url);
  plain->add_option("--prefix", prefix);
  plain->add_option("--count", count, "Quotes to send");
  plain->add_option("--batch", batch, "Quotes per message");
  plain->add_option("--shards", shards);
  plain->add_flag("--send-asap,!--no-send-asap", send_asap);
  CLI11_PARSE(app, argc, argv);
  if (sub->parsed()) return run_sub(url, prefix, count, idle_ms, ready, latency);
  return run_plain(url, prefix, count, batch, shards, send_asap);
}
