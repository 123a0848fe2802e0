// server.cpp — see server.h. Everything below run() executes on the core
// thread only, except on_snapshot_msg (a NATS thread: it only queues) and
// stop()/healthy() (atomics).
#include "server.h"

#include <algorithm>
#include <stdexcept>

#include "clock.h"
#include "log.h"
#include "subjects.h"

namespace tickfan::apiserver {

namespace {
constexpr int kMarkets = 5;  // SH, SZ, BJ, HK, US (wire Market 1..5)
constexpr int64_t kCheckPeriodNs = 10'000'000;
constexpr uint64_t kDrainBudget = 4096;  // per ring per pass: keeps snapshots/timers responsive
}  // namespace

Server::Server(ServerConfig cfg, MetricsRegistry& metrics)
    : cfg_(std::move(cfg)), metrics_(metrics), publisher_(metrics, [this](const std::string& why) { fail(why); }) {
  MetricsRegistry& m = metrics_;
  published_ticks_ = &m.counter("tickfan_apiserver_published_ticks_total", "Quotes published in delta batches");
  published_batches_ = &m.counter("tickfan_apiserver_published_batches_total", "Delta batches published");
  published_bytes_ = &m.counter("tickfan_apiserver_published_bytes_total", "Bytes of delta batches published");
  publish_errors_ = &m.counter("tickfan_apiserver_publish_errors_total",
                               "Delta batches the NATS client refused (sequence consumed: receivers resync)");
  snapshots_ = &m.counter("tickfan_apiserver_snapshots_total", "Snapshot requests answered");
  snapshot_quotes_ = &m.counter("tickfan_apiserver_snapshot_quotes_total", "Quotes sent in snapshot replies");
  snapshot_bad_ = &m.counter("tickfan_apiserver_snapshot_bad_requests_total",
                             "Snapshot requests without reply subject or with unknown market codes");
  publish_seconds_ = &m.histogram("tickfan_apiserver_publish_seconds", "Encode + NATS publish call time per batch",
                                  latency_buckets_seconds());
  tick_latency_ = &m.histogram("tickfan_apiserver_tick_latency_seconds",
                               "From receipt of a batch's first tick to its publish", latency_buckets_seconds());
}

Server::~Server() {
  for (auto& s : sources_) s->request_stop();
  sources_.clear();
  publisher_.close();
}

uint32_t Server::subject_of(const Quote& q) const {
  int market = static_cast<int>(q.market()) - 1;  // validated: 0..4
  return static_cast<uint32_t>(market) * cfg_.shards + shard_of(quote_symbol(q), cfg_.shards);
}

void Server::start() {
  epoch_ = static_cast<uint64_t>(wall_ns());
  for (int m = 1; m <= kMarkets; ++m) {
    for (uint32_t s = 0; s < cfg_.shards; ++s)
      subjects_.push_back(delta_subject(cfg_.prefix, static_cast<Market>(m), s));
  }
  sequences_.assign(subjects_.size(), 0);
  pending_.resize(subjects_.size());
  for (auto& p : pending_) {
    p.quotes.reserve(cfg_.max_batch);
    p.ids.reserve(cfg_.max_batch);
  }
  Gauge& symbols = metrics_.gauge("tickfan_apiserver_symbols", "Symbols known (last-value state)");
  symbols_gauge_ = &symbols;

  if (!cfg_.state_file.empty()) {
    std::unique_ptr<StateBackend> backend = open_state_backend(cfg_.state_file);
    std::vector<Quote> saved = backend->load();
    for (const Quote& q : saved) {
      if (q.market() < Market::SH || q.market() > Market::US) continue;
      uint32_t id = arbiter_.restore(q);
      if (id == subject_by_id_.size()) subject_by_id_.push_back(subject_of(q));
    }
    persister_ = std::make_unique<StatePersister>(std::move(backend));
    LOG_INFO("state", "restored path=%s symbols=%zu", cfg_.state_file.c_str(), saved.size());
  }
  symbols.set(arbiter_.symbols());

  std::string err;
  if (!publisher_.connect(cfg_.nats, snapshot_subject(cfg_.prefix), on_snapshot_msg, this, &err)) {
    throw std::runtime_error(err);
  }

  SourceContext ctx;
  ctx.metrics = &metrics_;
  ctx.bell = &bell_;
  ctx.limits = cfg_.limits;
  ctx.ring_capacity = cfg_.ring_capacity;
  int64_t now = mono_ns();
  for (size_t i = 0; i < cfg_.sources.size(); ++i) {
    SourceSpec spec = cfg_.sources[i];
    // Names label metrics: make repeated ones unique (synthetic, synthetic#2).
    int dup = 1;
    for (size_t j = 0; j < i; ++j) dup += cfg_.sources[j].name == spec.name;
    if (dup > 1) spec.name += "#" + std::to_string(dup);
    cfg_.sources[i].name = spec.name;
    auto src = make_source(spec, ctx, static_cast<int>(i));
    src->prepare();
    std::string l = "source=\"" + spec.name + "\"";
    SourceSlot slot;
    slot.src = src.get();
    slot.breaker = std::make_unique<Breaker>(cfg_.breaker, now);
    slot.state_gauge =
        &metrics_.gauge("tickfan_apiserver_source_state", "Breaker state: 0 closed, 1 open, 2 half_open", l);
    slot.stale = &metrics_.counter("tickfan_apiserver_dropped_total", "Valid ticks not published, by reason",
                                   l + ",reason=\"stale\"");
    slot.duplicate = &metrics_.counter("tickfan_apiserver_dropped_total", "Valid ticks not published, by reason",
                                       l + ",reason=\"duplicate\"");
    slot.breaker_open = &metrics_.counter("tickfan_apiserver_dropped_total", "Valid ticks not published, by reason",
                                          l + ",reason=\"breaker_open\"");
    slot.transitions = &metrics_.counter("tickfan_apiserver_breaker_transitions_total", "Breaker state changes", l);
    metrics_.gauge("tickfan_apiserver_source_priority", "Configured priority (smaller = preferred)", l)
        .set(spec.priority);
    order_.push_back(std::move(slot));
    sources_.push_back(std::move(src));
  }
  std::stable_sort(order_.begin(), order_.end(), [](const SourceSlot& a, const SourceSlot& b) {
    return a.src->spec().priority < b.src->spec().priority;
  });
  closed_sources_ = static_cast<int>(order_.size());
  for (auto& s : sources_) s->start();
  LOG_INFO("apiserver",
           "started epoch=%llu publisher=%s prefix=%s shards=%u sources=%zu max_batch=%zu max_delay_us=%lld",
           static_cast<unsigned long long>(epoch_), cfg_.publisher_id.c_str(), cfg_.prefix.c_str(), cfg_.shards,
           sources_.size(), cfg_.max_batch, static_cast<long long>(cfg_.max_delay_ns / 1000));
}

void Server::stop() {
  stop_.store(true, std::memory_order_release);
  bell_.ring();
}

void Server::fail(const std::string& why) {
  {
    std::lock_guard<std::mutex> lock(failure_mu_);
    if (failure_.empty()) failure_ = why;
  }
  failed_.store(true, std::memory_order_release);
  stop();
}

bool Server::failed(std::string* why) const {
  if (!failed_.load(std::memory_order_acquire)) return false;
  std::lock_guard<std::mutex> lock(failure_mu_);
  *why = failure_;
  return true;
}

bool Server::healthy(std::string* why) const {
  if (failed(why)) return false;
  if (stop_.load(std::memory_order_relaxed)) {
    *why = "stopping";
    return false;
  }
  if (!publisher_.connected()) {
    *why = "nats not connected";
    return false;
  }
  return true;
}

void Server::on_snapshot_msg(natsConnection*, natsSubscription*, natsMsg* msg, void* p) {
  auto* self = static_cast<Server*>(p);
  const char* reply = natsMsg_GetReply(msg);
  if (reply == nullptr || *reply == '\0') {
    self->snapshot_bad_->inc();
    LOG_WARN("snapshot", "request without reply subject ignored");
  } else {
    SnapshotReply r{reply, std::string(natsMsg_GetData(msg), static_cast<size_t>(natsMsg_GetDataLength(msg)))};
    {
      std::lock_guard<std::mutex> lock(self->snap_mu_);
      self->snap_queue_.push_back(std::move(r));
    }
    self->snap_waiting_.store(true, std::memory_order_release);
    self->bell_.ring();
  }
  natsMsg_Destroy(msg);
}

void Server::accept(SourceSlot& s, const Quote& q) {
  // An open breaker mutes its source while another one is healthy; with no
  // healthy alternative, a suspect feed beats no feed.
  if (s.breaker->state() == BreakerState::open && closed_sources_ > 0) {
    s.breaker_open->inc();
    return;
  }
  uint32_t id;
  bool added;
  Verdict v = arbiter_.offer(q, s.src->index(), s.src->spec().priority, &id, &added);
  if (added) {
    subject_by_id_.push_back(subject_of(q));
    symbols_gauge_->set(arbiter_.symbols());
  }
  if (v == Verdict::stale) {
    s.stale->inc();
    return;
  }
  if (v == Verdict::duplicate) {
    s.duplicate->inc();
    return;
  }
  uint32_t subj = subject_by_id_[id];
  Pending& p = pending_[subj];
  if (p.quotes.empty()) {
    p.first_mono = mono_ns();
    if (!p.listed) {
      p.listed = true;
      nonempty_.push_back(subj);
    }
  }
  p.quotes.push_back(q);
  p.ids.push_back(id);
  if (p.quotes.size() >= cfg_.max_batch) flush(subj);
}

void Server::flush(uint32_t subj) {
  Pending& p = pending_[subj];
  if (p.quotes.empty()) return;
  uint64_t seq = ++sequences_[subj];
  ++total_sequence_;
  int64_t t0 = mono_ns();
  int64_t created = wall_ns();
  encode_batch(fbb_, BatchHeader{cfg_.publisher_id, epoch_, seq, wire::BatchKind::Delta, created}, p.quotes);
  natsStatus st =
      publisher_.publish(subjects_[subj].c_str(), fbb_.GetBufferPointer(), static_cast<int>(fbb_.GetSize()));
  int64_t t1 = mono_ns();
  if (st != NATS_OK) {
    publish_errors_->inc();
    static RateLimit limit(5, 1'000'000'000);
    uint64_t suppressed = 0;
    if (limit.allow(&suppressed)) {
      LOG_ERROR("publish", "failed subject=%s sequence=%llu quotes=%zu error=\"%s\" suppressed=%llu",
                subjects_[subj].c_str(), static_cast<unsigned long long>(seq), p.quotes.size(), natsStatus_GetText(st),
                static_cast<unsigned long long>(suppressed));
    }
  } else {
    published_ticks_->inc(p.quotes.size());
    published_batches_->inc();
    published_bytes_->inc(fbb_.GetSize());
  }
  publish_seconds_->observe(static_cast<double>(t1 - t0) * 1e-9);
  tick_latency_->observe(static_cast<double>(created - p.quotes.front().receive_ts_ns()) * 1e-9);
  p.quotes.clear();
  p.ids.clear();
}

void Server::flush_all() {
  for (uint32_t subj : nonempty_) {
    flush(subj);
    pending_[subj].listed = false;
  }
  nonempty_.clear();
}

void Server::flush_due(int64_t now) {
  size_t keep = 0;
  for (uint32_t subj : nonempty_) {
    Pending& p = pending_[subj];
    if (!p.quotes.empty() && now - p.first_mono >= cfg_.max_delay_ns) flush(subj);
    if (p.quotes.empty()) {
      p.listed = false;
    } else {
      nonempty_[keep++] = subj;
    }
  }
  nonempty_.resize(keep);
}

size_t Server::drain_once() {
  size_t total = 0;
  for (SourceSlot& s : order_) {
    QuoteRing& r = s.src->ring();
    uint64_t n = std::min(r.available(), kDrainBudget);
    for (uint64_t i = 0; i < n; ++i) accept(s, r.at(i));
    if (n) r.release(n);
    total += n;
  }
  return total;
}

void Server::check_breakers(int64_t now) {
  // A healthy alternative is a closed source that can still deliver: one
  // that has ended (file read to its end) does not make others expendable.
  closed_sources_ = 0;
  for (SourceSlot& s : order_) {
    if (s.breaker->state() == BreakerState::closed && !s.src->done()) ++closed_sources_;
  }
  for (SourceSlot& s : order_) {
    if (s.src->done()) continue;
    bool others_active = false;
    for (SourceSlot& o : order_) {
      if (&o != &s && now - o.breaker->last_activity_ns() <= cfg_.breaker.silence_ns && o.src->ticks() > 0) {
        others_active = true;
      }
    }
    const char* why = "";
    BreakerState before = s.breaker->state();
    if (s.breaker->update(now, s.src->ticks(), s.src->errors(), others_active, &why)) {
      BreakerState after = s.breaker->state();
      // Log first: whoever sees the new state in /metrics can find its line.
      LOG_WARN("breaker", "source=%s from=%s to=%s reason=\"%s\"", s.src->name().c_str(), breaker_state_name(before),
               breaker_state_name(after), why);
      s.state_gauge->set(static_cast<double>(after));
      s.transitions->inc();
    }
  }
}

size_t Server::part_size() {
  // A part must fit the server's max_payload (1 MB by default, but
  // configurable down): a refused part would leave the requester with a
  // snapshot that can never complete.
  int64_t max_payload = publisher_.connection() ? natsConnection_GetMaxPayload(publisher_.connection()) : 0;
  if (max_payload <= 0) return cfg_.snapshot_part;
  size_t fit = static_cast<size_t>(std::max<int64_t>(1, (max_payload - 4096) / static_cast<int64_t>(sizeof(Quote))));
  return std::min(cfg_.snapshot_part, fit);
}

void Server::serve_snapshots() {
  std::vector<SnapshotReply> queue;
  {
    std::lock_guard<std::mutex> lock(snap_mu_);
    queue.swap(snap_queue_);
    snap_waiting_.store(false, std::memory_order_relaxed);
  }
  // Publish everything accepted so far: from here until the replies are
  // sent, the arbiter's last values are exactly the deltas up to each
  // subject's current sequence, which is what the end marker states.
  flush_all();
  std::vector<Quote> quotes;
  std::vector<SubjectSequence> marks;
  for (const SnapshotReply& r : queue) {
    uint32_t mask = 0;
    std::string bad;
    quotes.clear();
    marks.clear();
    if (!parse_market_filter(r.filter, &mask, &bad)) {
      // Answered (so the requester is not left waiting) with an empty end
      // marker: no parts, no marks.
      snapshot_bad_->inc();
      LOG_WARN("snapshot", "unknown market code=\"%s\" reply=%s", bad.c_str(), r.reply.c_str());
      mask = 0;
    } else {
      for (uint32_t id = 0; id < arbiter_.symbols(); ++id) {
        if (market_in(mask, arbiter_.last(id).market())) quotes.push_back(arbiter_.last(id));
      }
      for (uint32_t i = 0; i < subjects_.size(); ++i) {
        auto market = static_cast<Market>(i / cfg_.shards + 1);
        if (market_in(mask, market)) marks.push_back({subjects_[i], sequences_[i]});
      }
    }
    uint64_t parts = build_snapshot(fbb_, cfg_.publisher_id, epoch_, quotes, marks, part_size(),
                                    [&](const uint8_t* data, size_t len) {
                                      natsStatus st = publisher_.publish(r.reply.c_str(), data, static_cast<int>(len));
                                      if (st != NATS_OK) publish_errors_->inc();
                                    });
    snapshots_->inc();
    snapshot_quotes_->inc(quotes.size());
    LOG_INFO("snapshot", "served reply=%s filter=\"%s\" quotes=%zu parts=%llu marks=%zu", r.reply.c_str(),
             r.filter.c_str(), quotes.size(), static_cast<unsigned long long>(parts), marks.size());
  }
}

void Server::refresh_all() {
  // The periodic full refresh re-publishes every last value as ordinary
  // deltas (same sequences, same subjects): a receiver that missed anything
  // converges within one period even without asking for a snapshot.
  flush_all();
  for (uint32_t id = 0; id < arbiter_.symbols(); ++id) {
    const Quote& q = arbiter_.last(id);
    uint32_t subj = subject_by_id_[id];
    Pending& p = pending_[subj];
    if (p.quotes.empty() && !p.listed) {
      p.listed = true;
      nonempty_.push_back(subj);
    }
    p.quotes.push_back(q);
    p.ids.push_back(id);
    if (p.quotes.size() >= cfg_.max_batch) flush(subj);
  }
  flush_all();
}

void Server::persist() {
  if (!persister_) return;
  std::vector<Quote> changed;
  arbiter_.take_dirty(&changed);
  if (!changed.empty()) persister_->submit(&changed, epoch_, total_sequence_);
}

void Server::run() {
  int64_t last_check = mono_ns(), last_persist = last_check, last_refresh = last_check;
  bool stopping = false;
  for (;;) {
    if (snap_waiting_.load(std::memory_order_acquire)) serve_snapshots();
    size_t n = drain_once();
    int64_t now = mono_ns();
    if (n == 0) {
      flush_all();  // input idle: nothing waits for company
    } else {
      flush_due(now);
    }
    if (now - last_check >= kCheckPeriodNs) {
      last_check = now;
      check_breakers(now);
      if (now - last_persist >= cfg_.state_interval_ns) {
        last_persist = now;
        persist();
      }
      if (cfg_.refresh_ns > 0 && now - last_refresh >= cfg_.refresh_ns) {
        last_refresh = now;
        refresh_all();
      }
    }
    if (!stopping && stop_.load(std::memory_order_acquire)) {
      stopping = true;
      LOG_INFO("apiserver", "stopping: draining sources");
      for (auto& s : sources_) s->request_stop();
    }
    if (n == 0) {
      bool all_done = std::all_of(sources_.begin(), sources_.end(), [](const auto& s) { return s->done(); });
      bool rings_empty = std::all_of(order_.begin(), order_.end(), [](SourceSlot& s) { return s.src->ring().empty(); });
      if (all_done && rings_empty && (stopping || cfg_.exit_when_done)) break;
      bell_.wait_for(std::chrono::nanoseconds(kCheckPeriodNs), [&] {
        if (snap_waiting_.load(std::memory_order_relaxed) || stop_.load(std::memory_order_relaxed)) return true;
        for (SourceSlot& s : order_) {
          if (!s.src->ring().empty()) return true;
        }
        return false;
      });
    }
  }
  flush_all();
  if (snap_waiting_.load()) serve_snapshots();
  natsStatus st = publisher_.flush(5000);
  persist();
  if (persister_) persister_->drain();
  uint64_t in = 0;
  for (auto& s : sources_) in += s->ticks();
  // published/batches count what was handed to the NATS client; undelivered
  // is the part of it still held for a connection that never came.
  LOG_INFO(
      "apiserver",
      "stopped ticks_in=%llu published=%llu batches=%llu undelivered_batches=%zu publish_errors=%llu nats_flush=%s",
      static_cast<unsigned long long>(in), static_cast<unsigned long long>(published_ticks_->value()),
      static_cast<unsigned long long>(published_batches_->value()), publisher_.undelivered_batches(),
      static_cast<unsigned long long>(publish_errors_->value()), natsStatus_GetText(st));
}

}  // namespace tickfan::apiserver
