// bench_apiclient.cpp — the apiclient writer's benchmark (not a test; run by
// scripts/bench-apiclient.sh). In one run, on one private nats-server:
//
//  1. For each rate (10 000 and 100 000 ticks/s): plain NATS rounds — the
//     same publisher code and payloads, received by a bare async subscriber —
//     alternating with pipeline rounds — the real tickfan-apiclient writing
//     the store — each the only subscriber, in 5 slices; then one pipeline
//     round with a plain subscriber beside it (same messages, same moment:
//     the comparison the machine's noise cannot skew). Latency is per tick, from the publisher stamping
//     receive_ts_ns (its "ingest") to received (plain) or committed in the store (pipeline; the apiclient records raw
//     samples with --latency-samples). Each pipeline round ends by comparing the whole store with the publisher's
//     state.
//  2. Maximum throughput: ticks published as fast as possible, until the
//     store holds the final state.
//  3. Time to full sync of a new apiclient from a 5 000 and 100 000 symbol
//     snapshot (process start to store "live" with every symbol).
//
// Output: a Markdown report on stdout.
#include <arpa/inet.h>
#include <nats/nats.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "clock.h"
#include "nats_server.h"
#include "process.h"
#include "store.h"
#include "subjects.h"
#include "test_publisher.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::testing;

namespace {

// Stores live where production keeps them: tmpfs (/dev/shm) when there is one.
// On a disk filesystem a fresh store pays a block allocation per first-touched
// page (a 100 000-symbol sync measured ~4x slower here).
struct StoreDir {
  std::string path;
  StoreDir() {
    char tmpl[] = "/dev/shm/tickfan-bench-XXXXXX";
    char tmpl2[] = "/tmp/tickfan-bench-XXXXXX";
    const char* p = ::mkdtemp(tmpl);
    if (!p) p = ::mkdtemp(tmpl2);
    path = p ? p : "/tmp";
  }
  ~StoreDir() { std::filesystem::remove_all(path); }
};
StoreDir* g_store_dir = nullptr;
std::string store_path(const std::string& name) { return g_store_dir->path + "/" + name; }

struct Pct {
  double p50 = 0, p99 = 0, p999 = 0;
  size_t n = 0;
};

// One tick's latency with its ingest time (receive_ts_ns), so a round can
// be cut to a window of ingest times, the same on both sides.
struct Sample {
  int64_t ingest_ns;
  int64_t latency_ns;
};

Pct percentiles(const std::vector<Sample>& samples, int64_t from_ingest_ns = INT64_MIN) {
  std::vector<int64_t> v;
  v.reserve(samples.size());
  for (const Sample& x : samples)
    if (x.ingest_ns >= from_ingest_ns) v.push_back(x.latency_ns);
  Pct p;
  p.n = v.size();
  if (v.empty()) return p;
  std::sort(v.begin(), v.end());
  auto at = [&](double q) {
    return static_cast<double>(v[std::min(v.size() - 1, static_cast<size_t>(q * static_cast<double>(v.size())))]) / 1e3;
  };
  p.p50 = at(0.50);
  p.p99 = at(0.99);
  p.p999 = at(0.999);
  return p;
}

std::string symbol_of(int i) {
  char s[16];
  std::snprintf(s, sizeof s, "%s%06d", i % 2 ? "sz" : "sh", i);
  return s;
}

// Symbols grouped by delta subject, so every batch is one subject's.
struct Universe {
  std::vector<std::vector<Quote>> by_subject;
  explicit Universe(int symbols) {
    std::map<std::string, std::vector<Quote>> m;
    for (int i = 0; i < symbols; ++i) {
      std::string s = symbol_of(i);
      m[delta_subject(kDefaultSubjectPrefix, market_of_symbol(s), shard_of(s, kDefaultShardsPerMarket))].push_back(
          make_quote(s, 100000 + i % 1000, 1000));
    }
    for (auto& [subject, q] : m) by_subject.push_back(std::move(q));
  }
};

// Publishes `ticks` ticks in batches of `batch`, paced at `rate` ticks/s
// (0 = as fast as possible), round-robin over subjects. Each quote gets a new
// last price/volume and receive_ts_ns = now, just before publishing.
void run_publisher(TestPublisher& pub, Universe& u, int64_t ticks, int batch, int64_t rate) {
  std::vector<size_t> cursor(u.by_subject.size(), 0);
  std::vector<Quote> out;
  int64_t interval_ns = rate ? static_cast<int64_t>(1e9 * batch / static_cast<double>(rate)) : 0;
  int64_t start = mono_ns();
  int64_t sent = 0;
  for (int64_t i = 0; sent < ticks; ++i) {
    if (interval_ns) {
      int64_t due = start + i * interval_ns;
      int64_t now = mono_ns();
      if (due > now + 200'000) std::this_thread::sleep_for(std::chrono::nanoseconds(due - now - 100'000));
      while (mono_ns() < due) {
      }
    }
    size_t s = static_cast<size_t>(i) % u.by_subject.size();
    auto& group = u.by_subject[s];
    out.clear();
    int64_t now_wall = wall_ns();
    for (int k = 0; k < batch && sent < ticks; ++k, ++sent) {
      Quote& q = group[cursor[s]++ % group.size()];
      q.mutate_last(100000 + (q.last() + 7) % 5000);
      q.mutate_volume(q.volume() + 100);
      q.mutate_receive_ts_ns(now_wall);
      out.push_back(q);
    }
    pub.publish(out);
  }
  pub.flush();
}

// The plain-NATS receiver: latency per tick from receive_ts_ns to arrival.
struct PlainSub {
  natsConnection* nc = nullptr;
  natsSubscription* sub = nullptr;
  std::mutex mu;
  std::vector<Sample> samples;
  std::atomic<int64_t> ticks{0};
  static void on_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* closure) {
    auto* self = static_cast<PlainSub*>(closure);
    int64_t now = wall_ns();
    std::vector<uint64_t> scratch;
    const void* data = aligned_payload(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)), scratch);
    const wire::QuoteBatch* b = wire::GetQuoteBatch(data);
    if (b->quotes()) {
      std::lock_guard<std::mutex> lock(self->mu);
      for (const Quote* q : *b->quotes()) self->samples.push_back({q->receive_ts_ns(), now - q->receive_ts_ns()});
      self->ticks += b->quotes()->size();
    }
    natsMsg_Destroy(msg);
  }
  explicit PlainSub(const std::string& url) {
    natsOptions* o = nullptr;
    natsOptions_Create(&o);
    natsOptions_SetURL(o, url.c_str());
    natsConnection_Connect(&nc, o);
    natsOptions_Destroy(o);
    natsConnection_Subscribe(&sub, nc, "tickfan.q.>", &PlainSub::on_msg, this);
    natsSubscription_SetPendingLimits(sub, 1'000'000, 1 << 30);
    natsConnection_Flush(nc);
  }
  ~PlainSub() {
    natsSubscription_Unsubscribe(sub);
    natsSubscription_Destroy(sub);
    natsConnection_Destroy(nc);
  }
};

// GET /metrics from the apiclient (its port is in its log).
std::string scrape(const std::string& log) {
  std::string text = read_file(log);
  size_t at = text.find("metrics on http://127.0.0.1:");
  if (at == std::string::npos) return "";
  return loopback_http_get(std::atoi(text.c_str() + at + std::strlen("metrics on http://127.0.0.1:")), "/metrics");
}

// Quantile (µs) of a Prometheus histogram in `text`, interpolated in its bucket.
double histogram_quantile(const std::string& text, const std::string& name, double q) {
  std::vector<std::pair<double, double>> buckets;  // (le, cumulative)
  std::string key = name + "_bucket{le=\"";
  for (size_t at = text.find(key); at != std::string::npos; at = text.find(key, at + 1)) {
    size_t v = at + key.size();
    double le = text.compare(v, 4, "+Inf") == 0 ? 1e9 : std::atof(text.c_str() + v);
    size_t sp = text.find(' ', v);
    buckets.emplace_back(le, std::atof(text.c_str() + sp + 1));
  }
  if (buckets.empty() || buckets.back().second == 0) return 0;
  double target = q * buckets.back().second, prev_le = 0, prev_c = 0;
  for (auto [le, c] : buckets) {
    if (c >= target) return (prev_le + (le - prev_le) * ((target - prev_c) / std::max(1.0, c - prev_c))) * 1e6;
    prev_le = le;
    prev_c = c;
  }
  return 0;
}

// The apiclient's --latency-samples-file: "ingest_ns latency_ns" per line.
std::vector<Sample> read_samples(const std::string& path) {
  std::vector<Sample> v;
  FILE* f = std::fopen(path.c_str(), "r");
  if (!f) return v;
  long long ingest, latency;
  while (std::fscanf(f, "%lld %lld", &ingest, &latency) == 2) v.push_back({ingest, latency});
  std::fclose(f);
  return v;
}

shm::StoreState store_state(const std::string& path) {
  shm::Status st;
  std::string err;
  auto r = shm::StoreReader::open(path, &st, &err);
  return r ? r->state() : shm::StoreState{};
}

// Compares every symbol in the store with the publisher's last value; returns mismatches.
size_t mismatches(const std::string& path, const std::map<std::string, Quote>& want) {
  shm::Status st;
  std::string err;
  auto r = shm::StoreReader::open(path, &st, &err);
  if (!r) return want.size();
  size_t bad = 0;
  for (const auto& [sym, q] : want) {
    Quote got;
    if (r->get(sym, &got) != shm::Status::ok || std::memcmp(&got, &q, sizeof q) != 0) ++bad;
  }
  return bad;
}

ChildProcess start_apiclient(const TempDir& dir, const std::string& url, const std::string& store, uint32_t capacity,
                             size_t samples, const std::string& samples_file, const std::string& log) {
  std::vector<std::string> argv = {binary("apiclient/writer/tickfan-apiclient"),
                                   "--store",
                                   store,
                                   "--capacity",
                                   std::to_string(capacity),
                                   "--nats",
                                   url,
                                   "--log-level",
                                   "info",
                                   "--metrics-port",
                                   "-1"};
  if (samples) {
    argv.insert(argv.end(), {"--latency-samples", std::to_string(samples), "--latency-samples-file", samples_file});
  }
  (void)dir;
  return ChildProcess(argv, log);
}

struct RateResult {
  int64_t rate;
  int batch;
  size_t payload;
  // alone: each side with the nats-server to itself (plain, then pipeline);
  // beside: the pipeline with a plain subscriber receiving the same messages
  // at the same moment (`side`).
  Pct plain, pipe_alone, pipe, side;
  // alone, slice by slice: the median over slices of pipeline / plain, each
  // slice's pair measured back to back (a noisy second skews one pair).
  double alone_pair_p50 = 0, alone_pair_p99 = 0;
  double pipe_ticks_per_s = 0, pipe_alone_seconds = 0;
  size_t lost = 0;
  uint64_t gaps = 0, resyncs = 0;
  double apply_p50 = 0, apply_p99 = 0;
};

// One round of the real apiclient writing a store from the test publisher;
// with `with_side`, a plain subscriber receives the same messages beside it.
// Returns the pipeline's latency samples; fills the side's latencies, the
// apply-time quantiles (beside) or the time taken (alone), and adds up losses
// and resyncs in `r`. `slice` tells the alone rounds' files apart.
std::vector<Sample> pipeline_round(const std::string& url, const TempDir& dir, RateResult& r, int64_t ticks,
                                   int symbols, bool with_side, int slice = 0) {
  std::string tag = std::to_string(r.rate) + (with_side ? "-beside" : "-alone" + std::to_string(slice));
  std::string store = store_path("rate" + tag + ".store");
  std::string samples_file = dir.file("samples" + tag + ".txt");
  TestPublisher pub(url);
  Universe u(symbols);
  pub.publish([&] {  // initial state via snapshot
    std::vector<Quote> all;
    for (auto& g : u.by_subject) all.insert(all.end(), g.begin(), g.end());
    return all;
  }());
  std::unique_ptr<PlainSub> side;
  if (with_side) side = std::make_unique<PlainSub>(url);
  ChildProcess a =
      start_apiclient(dir, url, store, static_cast<uint32_t>(symbols * 2), static_cast<size_t>(ticks) + 1000,
                      samples_file, dir.file("apiclient-" + tag + ".log"));
  wait_until([&] { return store_state(store).sync_state == shm::SyncState::live; }, 10000);
  if (side) {
    std::lock_guard<std::mutex> lock(side->mu);
    side->samples.clear();  // the initial publish is not part of the round
  }
  int64_t t0 = wall_ns();
  run_publisher(pub, u, ticks, r.batch, r.rate);
  auto want = pub.state();
  wait_until([&] { return mismatches(store, want) == 0; }, 10000);
  if (side) {
    std::lock_guard<std::mutex> lock(side->mu);
    r.side = percentiles(side->samples);
  }
  shm::StoreState s = store_state(store);
  r.lost += mismatches(store, want);
  r.gaps += s.gaps;
  r.resyncs += s.resyncs;
  std::string metrics = scrape(dir.file("apiclient-" + tag + ".log"));
  a.stop(SIGTERM, 10000);
  if (with_side) {
    r.apply_p50 = histogram_quantile(metrics, "tickfan_apiclient_apply_seconds", 0.5);
    r.apply_p99 = histogram_quantile(metrics, "tickfan_apiclient_apply_seconds", 0.99);
  } else {
    r.pipe_alone_seconds += static_cast<double>(s.commit_ns - t0) / 1e9;
  }
  return read_samples(samples_file);
}

// Plain NATS: the same publisher code and payloads, a bare subscriber.
std::vector<Sample> plain_round(const std::string& url, int64_t ticks, int batch, int64_t rate, int symbols) {
  TestPublisher pub(url);
  Universe u(symbols);
  PlainSub sub(url);
  run_publisher(pub, u, ticks, batch, rate);
  wait_until([&] { return sub.ticks.load() >= ticks; }, 10000);
  std::lock_guard<std::mutex> lock(sub.mu);
  return sub.samples;
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

RateResult rate_round(const std::string& url, const TempDir& dir, int64_t rate, int batch, double seconds,
                      int symbols) {
  RateResult r{};
  r.rate = rate;
  r.batch = batch;
  int64_t ticks = static_cast<int64_t>(static_cast<double>(rate) * seconds);
  {
    flatbuffers::FlatBufferBuilder fbb;
    std::vector<Quote> q(static_cast<size_t>(batch), make_quote("sh600000"));
    encode_batch(fbb, BatchHeader{}, q);
    r.payload = fbb.GetSize();
  }
  // Plain NATS and the pipeline alone (one subscriber each), in kAloneSlices
  // alternating slices: a noisy few seconds on this shared machine then skew
  // one pair, not one whole side (until 2026-11-22 each side ran once, 5 s
  // apart, and one p99 ratio of 4.69 came from such a window). Then the
  // pipeline beside a plain subscriber, the same messages at the same moment.
  constexpr int kAloneSlices = 5;
  const int64_t slice_ticks = ticks / kAloneSlices;
  std::vector<Sample> plain_all, pipe_all;
  std::vector<double> p50_ratios, p99_ratios;
  for (int k = 0; k < kAloneSlices; ++k) {
    std::vector<Sample> plain = plain_round(url, slice_ticks, batch, rate, symbols);
    std::vector<Sample> pipe = pipeline_round(url, dir, r, slice_ticks, symbols, false, k);
    Pct a = percentiles(plain), b = percentiles(pipe);
    if (a.n > 0 && b.n > 0) {
      p50_ratios.push_back(b.p50 / a.p50);
      p99_ratios.push_back(b.p99 / a.p99);
    }
    plain_all.insert(plain_all.end(), plain.begin(), plain.end());
    pipe_all.insert(pipe_all.end(), pipe.begin(), pipe.end());
  }
  r.plain = percentiles(plain_all);
  r.pipe_alone = percentiles(pipe_all);
  r.alone_pair_p50 = median(p50_ratios);
  r.alone_pair_p99 = median(p99_ratios);
  r.pipe_ticks_per_s = static_cast<double>(slice_ticks * kAloneSlices) / r.pipe_alone_seconds;
  r.pipe = percentiles(pipeline_round(url, dir, r, ticks, symbols, true));
  return r;
}

// Compares the apiclient's store with the apiserver's --state-file store.
size_t mismatches_with_server(const std::string& client_path, const std::string& server_path, uint32_t* symbols) {
  shm::Status st;
  std::string err;
  auto server = shm::StoreReader::open(server_path, &st, &err);
  auto client = shm::StoreReader::open(client_path, &st, &err);
  if (!server || !client) return SIZE_MAX;
  *symbols = server->used();
  size_t bad = 0;
  for (uint32_t slot = 0; slot < server->used(); ++slot) {
    Quote want, got;
    if (server->read_quote(slot, &want) != shm::Status::ok ||
        client->get(quote_symbol(want), &got) != shm::Status::ok || std::memcmp(&want, &got, sizeof want) != 0) {
      ++bad;
    }
  }
  return bad;
}

// The real pipe: tickfan-apiserver (synthetic source, stamping receive_ts_ns
// at ingest) -> NATS -> tickfan-apiclient, with a plain subscriber beside it.
struct RealResult {
  int64_t rate = 0, ticks = 0;
  Pct pipe, side;                      // steady state: ingested from 250 ms after the apiclient went live
  Pct pipe_from_live, side_from_live;  // from going live, the apiclient's catch-up included
  double seconds = 0;                  // apiserver start to the store holding its final state
  size_t lost = 0;
  uint32_t symbols = 0;
  uint64_t resyncs = 0;
};

RealResult real_round(const std::string& url, const TempDir& dir, int64_t rate, int64_t ticks, int symbols) {
  RealResult r;
  r.rate = rate;
  r.ticks = ticks;
  std::string tag = std::to_string(rate);
  std::string client_store = store_path("real" + tag + ".store"),
              server_store = store_path("real-server" + tag + ".store");
  std::string samples_file = dir.file("real-samples" + tag + ".txt");
  PlainSub side(url);
  ChildProcess a = start_apiclient(dir, url, client_store, static_cast<uint32_t>(symbols * 2),
                                   static_cast<size_t>(ticks), samples_file, dir.file("apiclient-real" + tag + ".log"));
  wait_until([&] { return store_state(client_store).heartbeat_ns > 0; }, 5000);
  int64_t t0 = mono_ns();
  std::string source = "synthetic:?symbols=" + std::to_string(symbols) + "&rate=" + std::to_string(rate) +
                       "&seed=1&count=" + std::to_string(ticks);
  // Unpaced, the apiserver can publish every tick before a new apiclient's
  // first snapshot retry; it must stay up to answer it, so it runs until the
  // test sees "synthetic finished" in its log instead of --exit-when-done.
  const bool unpaced = rate == 0;
  const std::string server_log = dir.file("apiserver-real" + tag + ".log");
  std::vector<std::string> argv = {binary("apiserver/tickfan-apiserver"),
                                   "--source",
                                   source,
                                   "--nats",
                                   url,
                                   "--state-file",
                                   server_store,
                                   "--metrics-port",
                                   "0",
                                   "--log-level",
                                   unpaced ? "info" : "warn"};
  if (unpaced) {
    argv.insert(argv.end(), {"--state-interval-ms", "50"});
  } else {
    argv.push_back("--exit-when-done");
  }
  ChildProcess server(argv, server_log);
  wait_until([&] { return store_state(client_store).sync_state == shm::SyncState::live; }, 10000);
  const int64_t live_ns = wall_ns();
  {
    std::lock_guard<std::mutex> lock(side.mu);
    side.samples.clear();  // from the apiclient going live, like its own samples
  }
  if (unpaced) {
    wait_until([&] { return read_file(server_log).find("synthetic finished") != std::string::npos; }, 600000);
  } else {
    server.wait(600000);
  }
  wait_until([&] { return mismatches_with_server(client_store, server_store, &r.symbols) == 0; }, 30000);
  r.seconds = static_cast<double>(mono_ns() - t0) / 1e9;
  r.lost = mismatches_with_server(client_store, server_store, &r.symbols);
  r.resyncs = store_state(client_store).resyncs;
  server.stop(SIGTERM, 10000);
  a.stop(SIGTERM, 10000);
  std::vector<Sample> pipe = read_samples(samples_file);
  // Steady state: ticks ingested from kSettle after the apiclient went live,
  // on both sides. Right after going live it first drains the deltas that
  // queued while its snapshot was applied (about 10 ms at 100 000/s, each
  // late by up to the sync time, which "time to full sync" measures); those
  // are kept apart, in the "from live" ratio.
  constexpr int64_t kSettle = 250'000'000;
  std::lock_guard<std::mutex> lock(side.mu);
  r.side = percentiles(side.samples, live_ns + kSettle);
  r.pipe = percentiles(pipe, live_ns + kSettle);
  r.side_from_live = percentiles(side.samples);
  r.pipe_from_live = percentiles(pipe);
  return r;
}

struct MaxResult {
  int64_t ticks;
  double seconds;
  size_t lost;
  uint64_t resyncs;
};

MaxResult max_round(const std::string& url, const TempDir& dir, int64_t ticks, int batch, int symbols) {
  std::string store = store_path("max.store");
  TestPublisher pub(url);
  Universe u(symbols);
  ChildProcess a =
      start_apiclient(dir, url, store, static_cast<uint32_t>(symbols * 2), 0, "", dir.file("apiclient-max.log"));
  wait_until([&] { return store_state(store).sync_state == shm::SyncState::live; }, 10000);
  int64_t t0 = wall_ns();
  run_publisher(pub, u, ticks, batch, 0);
  auto want = pub.state();
  wait_until([&] { return mismatches(store, want) == 0; }, 30000);
  shm::StoreState s = store_state(store);
  MaxResult m{ticks, static_cast<double>(s.commit_ns - t0) / 1e9, mismatches(store, want), s.resyncs};
  a.stop(SIGTERM, 10000);
  return m;
}

struct SyncResult {
  double total_ms = 0;     // process start to store live with every symbol
  double snapshot_ms = 0;  // the apiclient's own figure: snapshot request to live
  bool ok = false;
};

// A new apiclient (fresh store) syncing from the real apiserver holding
// `symbols` last values (its synthetic source sends each symbol once, then
// the apiserver stays up to answer snapshots).
SyncResult sync_round(const std::string& url, const TempDir& dir, int symbols) {
  SyncResult r;
  std::string tag = std::to_string(symbols);
  std::string store = store_path("sync" + tag + ".store");
  std::string server_log = dir.file("apiserver-sync" + tag + ".log");
  ChildProcess server(
      {binary("apiserver/tickfan-apiserver"), "--source", "synthetic:?symbols=" + tag + "&rate=0&seed=1&count=" + tag,
       "--nats", url, "--metrics-port", "0"},
      server_log);
  wait_until([&] { return read_file(server_log).find("synthetic finished") != std::string::npos; }, 30000);
  std::this_thread::sleep_for(std::chrono::milliseconds(300));  // let it publish the last batches
  std::string log = dir.file("apiclient-sync" + tag + ".log");
  int64_t t0 = mono_ns();
  ChildProcess a = start_apiclient(dir, url, store, static_cast<uint32_t>(symbols + symbols / 4), 0, "", log);
  r.ok = wait_until(
      [&] {
        shm::StoreState s = store_state(store);
        return s.sync_state == shm::SyncState::live && s.used == static_cast<uint32_t>(symbols);
      },
      30000);
  r.total_ms = static_cast<double>(mono_ns() - t0) / 1e6;
  a.stop(SIGTERM, 10000);
  server.stop(SIGTERM, 10000);
  std::string text = read_file(log);
  size_t at = text.find("synced epoch=");
  if (at != std::string::npos) {
    size_t in = text.find(" in ", at);
    if (in != std::string::npos) r.snapshot_ms = std::atof(text.c_str() + in + 4);
  }
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  double seconds = argc > 1 ? std::atof(argv[1]) : 5.0;
  // Optional section names after the seconds: rates real max sync (default: all).
  auto want = [&](const char* section) {
    if (argc <= 2) return true;
    for (int i = 2; i < argc; ++i)
      if (std::strcmp(argv[i], section) == 0) return true;
    return false;
  };
  NatsServer nats;
  TempDir dir;
  StoreDir store_dir;
  g_store_dir = &store_dir;
  std::printf("## apiclient writer benchmark\n\n");
  std::printf(
      "nats-server on loopback (private port), %g s per round, 5 000 symbols (sh+sz, 8 subjects), "
      "stores in %s.\n\n",
      seconds, store_dir.path.c_str());
  if (want("rates")) {
    std::printf(
        "Plain NATS and the pipeline alone (each the only subscriber) in 5 alternating slices: percentiles over "
        "all slices, and the median over slices of each back-to-back pair's ratio.\n\n"
        "| rate (ticks/s) | batch (quotes, bytes) | plain NATS p50 / p99 / p99.9 (µs) | pipeline p50 / p99 / p99.9 "
        "(µs) | ratio p50 / p99 | median pair ratio p50 / p99 | store ticks/s | lost | resyncs |\n");
    std::printf("|---|---|---|---|---|---|---|---|---|\n");
    std::vector<RateResult> breakdown;
    for (auto [rate, batch] : {std::pair<int64_t, int>{10'000, 10}, {100'000, 100}}) {
      RateResult r = rate_round(nats.url(), dir, rate, batch, seconds, 5000);
      std::printf(
          "| %lld | %d, %zu B | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.2f / %.2f | %.2f / %.2f | %.0f | %zu | "
          "%llu |\n",
          static_cast<long long>(r.rate), r.batch, r.payload, r.plain.p50, r.plain.p99, r.plain.p999, r.pipe_alone.p50,
          r.pipe_alone.p99, r.pipe_alone.p999, r.pipe_alone.p50 / r.plain.p50, r.pipe_alone.p99 / r.plain.p99,
          r.alone_pair_p50, r.alone_pair_p99, r.pipe_ticks_per_s, r.lost, static_cast<unsigned long long>(r.resyncs));
      std::fflush(stdout);
      breakdown.push_back(r);
    }
    std::printf(
        "\nA second pipeline round with a plain subscriber running beside the apiclient (same messages, same "
        "moment, so machine noise hits both), and the apiclient's own whole-batch apply time in that round (its "
        "histogram, bucket-interpolated).\n\n| rate | plain beside p50 / p99 / p99.9 (µs) | pipeline p50 / p99 / "
        "p99.9 (µs) | ratio p50 / p99 | batch apply p50 / p99 (µs) |\n|---|---|---|---|---|\n");
    for (const RateResult& r : breakdown) {
      std::printf("| %lld | %.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.2f / %.2f | %.0f / %.0f |\n",
                  static_cast<long long>(r.rate), r.side.p50, r.side.p99, r.side.p999, r.pipe.p50, r.pipe.p99,
                  r.pipe.p999, r.pipe.p50 / r.side.p50, r.pipe.p99 / r.side.p99, r.apply_p50, r.apply_p99);
    }
  }
  if (want("real")) {
    std::printf(
        "\nThe real pipe: tickfan-apiserver (synthetic source; ingest = its receive_ts_ns, then its batching, "
        "default max-batch 64 / max-delay 2 ms) -> NATS -> tickfan-apiclient, with a plain subscriber beside the "
        "apiclient. Steady state: ticks ingested from 250 ms after the apiclient went live, the same ticks on both "
        "sides; the last ratio column counts from going live, so it includes the apiclient draining what queued "
        "during its sync. The store is compared with the apiserver's own last values at the end.\n\n"
        "| rate (ticks/s) | ticks | ingest->plain receive p50 / p99 / p99.9 (µs) | "
        "ingest->readable in store p50 / p99 / p99.9 (µs) | ratio p50 / p99 | ratio p50 / p99 from live | "
        "end-to-end ticks/s | lost | resyncs |\n"
        "|---|---|---|---|---|---|---|---|---|\n");
    for (auto [rate, ticks] : {std::pair<int64_t, int64_t>{10'000, static_cast<int64_t>(10'000 * seconds)},
                               {100'000, static_cast<int64_t>(100'000 * seconds)},
                               {0, 2'000'000}}) {
      RealResult r = real_round(nats.url(), dir, rate, ticks, 5000);
      char lat[320] = "no steady state: every tick was out before the apiclient went live | | |";
      if (r.side.n > 0 && r.pipe.n > 0) {
        std::snprintf(lat, sizeof lat, "%.0f / %.0f / %.0f | %.0f / %.0f / %.0f | %.2f / %.2f | %.2f / %.2f",
                      r.side.p50, r.side.p99, r.side.p999, r.pipe.p50, r.pipe.p99, r.pipe.p999, r.pipe.p50 / r.side.p50,
                      r.pipe.p99 / r.side.p99, r.pipe_from_live.p50 / r.side_from_live.p50,
                      r.pipe_from_live.p99 / r.side_from_live.p99);
      }
      std::printf("| %s | %lld | %s | %.0f | %zu of %u | %llu |\n", rate ? std::to_string(rate).c_str() : "unpaced",
                  static_cast<long long>(r.ticks), lat, static_cast<double>(r.ticks) / r.seconds, r.lost, r.symbols,
                  static_cast<unsigned long long>(r.resyncs));
      std::fflush(stdout);
    }
  }
  if (want("max")) {
    MaxResult m = max_round(nats.url(), dir, 2'000'000, 100, 5000);
    std::printf(
        "\nMaximum throughput (unpaced, batches of 100): %lld ticks in %.2f s = %.0f ticks/s into the store; "
        "lost %zu, resyncs %llu.\n",
        static_cast<long long>(m.ticks), m.seconds, static_cast<double>(m.ticks) / m.seconds, m.lost,
        static_cast<unsigned long long>(m.resyncs));
  }
  if (want("sync")) {
    std::printf(
        "\nTime to full sync of a new apiclient (fresh store) from the real apiserver's snapshot.\n\n"
        "| snapshot of | process start to live with every symbol (ms) | snapshot request to live (ms, apiclient log) "
        "|\n"
        "|---|---|---|\n");
    for (int n : {5000, 100000}) {
      SyncResult r = sync_round(nats.url(), dir, n);
      std::printf("| %d symbols | %.0f%s | %.0f |\n", n, r.total_ms, r.ok ? "" : " (FAILED)", r.snapshot_ms);
      std::fflush(stdout);
    }
  }
  return 0;
}
