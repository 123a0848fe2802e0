// sync_fuzz.cpp — the apiclient's sync machine (apiclient/writer/sync.h) in a
// modelled world: an apiserver publishing deltas and answering snapshot
// requests, a bus that loses, repeats and delays messages, a NATS connection
// that drops and comes back, a clock. The fuzz input is a script: one opcode
// byte per step plus small operands (at most kMaxSteps steps; a missing
// operand reads as 0), then a fair epilogue.
//
// The world (see World below):
//  - apiserver: an epoch; per subject a contiguous sequence from 1; `truth`,
//    the last value of every symbol. A delta bumps its subject's sequence and
//    sets 1-3 of its symbols to fresh values (one global counter: every value
//    is new and larger than all before). A snapshot is served the way
//    apiserver/server.cpp serve_snapshots() + snapshot.cpp build_snapshot()
//    build it: every last value (parts of `part size` quotes numbered 1..n,
//    the current epoch), then SnapshotEnd (sequence n, marks = every
//    subject's current sequence). A restart (docs/apiserver.md "Last values
//    and restarts") takes a new epoch (normally later, or earlier: a clock
//    that went back) and sequences from 0; its last values are what
//    --state-file restores: everything after a clean stop (which also answers
//    the requests already queued, from the old state, before exiting), the
//    last periodic save after a crash (queued requests die with it), nothing
//    without a state file.
//  - bus: per subscription FIFO (one per delta subject and one for the reply
//    inbox; the order between subscriptions is the script's); per message
//    fate: delivered, dropped, duplicated, or delayed (held aside and
//    delivered later, out of order, by a RELEASE step). While the client is
//    disconnected whatever is published to it is lost, its own requests wait
//    in the NATS reconnect buffer; what the library had already queued may
//    be kept or lost. Slow consumer: queued messages dropped, then the event.
//  - events: disconnected / reconnected / slow consumer reach the machine the
//    way daemon.cpp feeds them: queued, drained before the next message or
//    tick; a step may hold one back (the library's callback thread lags).
//  - sink: a model store, symbol -> (value, epoch of the batch that wrote it).
//
// Properties (fuzz::fail on violation):
//  1. Safety.
//     a. Never backwards within an epoch: a quote applied (delta or snapshot
//        part) from epoch E never replaces a value the store holds from the
//        same epoch E with an older one. (Across epochs it may: a restarted
//        apiserver restores an older save, and the clone protocol follows
//        the current apiserver.)
//     b. Live means consistent: whenever state() is live, the epoch is one
//        the apiserver had, every subject's last_sequence(S) is at most what
//        was published on S in it, and every symbol of S holds exactly its
//        value as of (epoch, last_sequence(S)) — the snapshot image plus the
//        contiguous deltas after it, nothing lost, nothing newer. Symbols the
//        apiserver did not know in that epoch at that point are not checked
//        (a snapshot never deletes; an old value stays).
//     c. Honest state: between on_disconnected and the next on_reconnected
//        the machine never reports live (docs/apiclient.md: `stale` follows
//        a NATS disconnect; nothing can arrive to keep it current).
//  2. Liveness: after the script, a fair epilogue (held events released, the
//     connection up, delayed messages delivered, every message delivered,
//     every queued request answered at once and completely, time advanced in
//     50 ms ticks past timeouts and backoffs, no more losses) settles the
//     machine live; then rounds of one more delta per subject (enough rounds
//     for older_epoch_resync deltas from an older epoch) are published and
//     settled; the machine must be live and every symbol the apiserver knows
//     must hold the apiserver's value.
//  3. Bounded: buffered() <= max_buffered after every step and inside every
//     sink call (max_buffered is small here so overflow is exercised); the
//     epilogue settles within a bounded number of rounds.
//
// Simplifications: one apiserver per prefix (docs/operations.md), so a
// request is answered at most once with content of its own; "answered twice"
// is the identical reply published again (SERVE_AGAIN, and duplicate fates).
// (The machine tells replies apart by request id only: two differently cut
// answers to one id, e.g. other part sizes, can be mixed into a snapshot with
// holes. No single apiserver produces that; it is not asserted here.) The
// reply's epoch-change check and a Delta on the inbox are unreachable here
// (daemon.cpp filters kinds). Publishing is atomic (serve_snapshots() flushes
// pending batches first). Quotes are make_quote() records differing in `last`
// only; the machine never looks inside them. Two markets x two shards, 2-4
// subjects, three symbols each.
//
// Script: byte 0 configures (subjects 2 + b%3; bit 2 the apiserver has a
// --state-file; bit 3 values exist before the client starts). Then opcodes
// (byte % 15) with operands:
//   0 publish a      delta on subject a%n, symbols mask 1+(a>>2)%7, fate (a>>5)&3 (bit 7: delivered)
//   1 burst a        1+a%8 delivered deltas, subjects in turn
//   2 deliver q      head of subscription q%(n+1) (n = the reply inbox)
//   3 deliver_all    every queue emptied, subscriptions in turn
//   4 tick i         advance 1/10/50/200/600/1100/3000/0 ms, on_tick
//   5 serve a b c    answer queued request a%k; part size {1,2,5,1000}[b%4]; fates: (b>>2)&7 (0-3 all
//                    delivered, 4/5/6 message c dropped/duplicated/delayed, 7 all delayed); b bit 5: a 2-bit
//                    fate per message from the following bytes
//   6 serve_again a  the identical reply of served request a%k published again
//   7 drop_request a queued request a%k never answered
//   8 disconnect a   bit 0: library queues lost too; bit 1: event held
//   9 reconnect a    bit 0: reconnect buffer (requests) lost; bit 1: event held
//  10 slow_consumer a  subscription a%(n+1) loses its newest (a>>3)&3 messages; bit 5: event held
//  11 fire_events    held events released
//  12 release a      delayed message a%k delivered now (lost if disconnected)
//  13 restart a      bit 0: crash (else clean stop); bit 1: clock went back
//  14 persist        the periodic --state-file save
// SYNC_FUZZ_TRACE=1 prints every step, delivery, request and event.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "batch.h"
#include "log.h"
#include "subjects.h"
#include "sync.h"
#include "test_quotes.h"

using namespace tickfan;
using namespace tickfan::apiclient;

namespace tickfan::fuzz {
// As in fuzz_store.h (not included: this target links no store).
[[noreturn]] inline void fail(const char* what, const std::string& detail) {
  std::fprintf(stderr, "fuzz property failed: %s: %s\n", what, detail.c_str());
  std::abort();
}
}  // namespace tickfan::fuzz

namespace {

// SYNC_FUZZ_TRACE=1: every step, delivery and request on stderr (triage).
bool g_trace = false;
#define TRACE(...)                                  \
  do {                                              \
    if (g_trace) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

constexpr int64_t kMs = 1'000'000;
constexpr size_t kMaxSteps = 2000;
constexpr int kMaxSubjects = 4;
constexpr int kSymbolsPerSubject = 3;
constexpr int kEpilogueRounds = 400;  // 50 ms each: far past timeout + the largest backoff

SyncOptions harness_options() {
  SyncOptions o;
  o.snapshot_timeout_ns = 1000 * kMs;
  o.retry_min_ns = 100 * kMs;
  o.retry_max_ns = 800 * kMs;
  o.max_buffered = 6;
  o.older_epoch_resync = 4;
  return o;
}

// The subjects (two markets x two shards) and, for each, symbols that really
// hash to it (shard_of with 2 shards), as the apiserver would route them.
struct Universe {
  std::vector<std::string> subjects;
  std::vector<std::vector<std::string>> symbols;  // per subject
  Universe() {
    const char* markets[2] = {"sh", "sz"};
    const char* bases[2] = {"sh600", "sz000"};
    for (int m = 0; m < 2; ++m) {
      for (uint32_t shard = 0; shard < 2; ++shard) {
        subjects.push_back(
            delta_subject(kDefaultSubjectPrefix, market_of_symbol(std::string(markets[m]) + "600000"), shard));
        std::vector<std::string> syms;
        for (int i = 0; syms.size() < kSymbolsPerSubject && i < 1000; ++i) {
          char buf[16];
          std::snprintf(buf, sizeof buf, "%s%03d", bases[m], i);
          if (shard_of(buf, 2) == shard) syms.push_back(buf);
        }
        symbols.push_back(syms);
      }
    }
  }
};
const Universe& universe() {
  static const Universe u;
  return u;
}

// Reads the script; past its end every byte is 0.
struct Script {
  const uint8_t* p;
  size_t n;
  size_t i = 0;
  bool done() const { return i >= n; }
  uint8_t byte() { return i < n ? p[i++] : 0; }
};

// One encoded message on the bus.
struct Msg {
  std::shared_ptr<const std::vector<uint64_t>> bytes;
  size_t size = 0;
  bool reply = false;
  uint64_t request_id = 0;
  int subject = 0;  // delta subject index
};

Msg encode(const BatchHeader& h, const std::vector<Quote>& quotes, const std::vector<SubjectSequence>& marks) {
  flatbuffers::FlatBufferBuilder fbb;
  encode_batch(fbb, h, quotes, marks);
  auto bytes = std::make_shared<std::vector<uint64_t>>((fbb.GetSize() + 7) / 8);
  std::memcpy(bytes->data(), fbb.GetBufferPointer(), fbb.GetSize());
  Msg m;
  m.bytes = std::move(bytes);
  m.size = fbb.GetSize();
  return m;
}

// What one apiserver epoch published: its restored values (sequence 0) and
// every update of every symbol with its subject sequence.
struct EpochHistory {
  std::map<std::string, int64_t> restored;
  std::vector<uint64_t> seq;                                                 // per subject: last published
  std::map<std::string, std::vector<std::pair<uint64_t, int64_t>>> updates;  // symbol -> (seq, value), seq rising
  // The symbol's value as of subject sequence `s`; false if the apiserver did
  // not know the symbol then.
  bool value_at(const std::string& sym, uint64_t s, int64_t* v) const {
    auto it = updates.find(sym);
    if (it != updates.end()) {
      auto& u = it->second;
      auto pos = std::upper_bound(u.begin(), u.end(), std::make_pair(s, INT64_MAX));
      if (pos != u.begin()) {
        *v = std::prev(pos)->second;
        return true;
      }
    }
    auto r = restored.find(sym);
    if (r == restored.end()) return false;
    *v = r->second;
    return true;
  }
};

enum class Event { disconnected, reconnected, slow_consumer };

struct StoreEntry {
  int64_t value = 0;
  uint64_t epoch = 0;
};

class World : public SyncSink {
 public:
  World(uint8_t config)
      : u_(universe()), ns_(2 + config % 3), state_file_((config >> 2) & 1), opt_(harness_options()), m_(*this, opt_) {
    epoch_ = 1'000'000;
    min_epoch_ = max_epoch_ = epoch_;
    bool values_before = (config >> 3) & 1;
    if (values_before && state_file_) {
      // Started from a state file: every symbol already has a value.
      for (int s = 0; s < ns_; ++s)
        for (const std::string& sym : u_.symbols[s]) truth_[sym] = next_value_++;
      persisted_ = truth_;
    }
    begin_epoch();
    if (values_before && !state_file_) {
      // Deltas published before the client subscribed (seen by nobody).
      connected_ = false;
      for (int s = 0; s < ns_; ++s) publish_delta(s, 7, 0);
      connected_ = true;
    }
  }

  void run(Script& sc) {
    m_.start(now_);
    check("start");
    for (size_t step = 0; step < kMaxSteps && !sc.done(); ++step) {
      uint8_t op = sc.byte();
      TRACE("step %zu %s (epoch %llu, t=%lld ms)\n", step, op_name(op), static_cast<unsigned long long>(epoch_),
            static_cast<long long>(now_ / kMs));
      do_step(op, sc);
      TRACE("  -> state %d epoch %llu buffered %zu\n", static_cast<int>(m_.state()),
            static_cast<unsigned long long>(m_.epoch()), m_.buffered());
      check(op_name(op));
    }
    epilogue();
  }

  // ---- SyncSink ----
  void apply(const wire::QuoteBatch& b, bool delta) override {
    if (m_.buffered() > opt_.max_buffered) fuzz::fail("buffer over max_buffered", std::to_string(m_.buffered()));
    if (delta != (b.kind() == wire::BatchKind::Delta)) fuzz::fail("apply: delta flag does not match the kind", "");
    if (b.quotes()) {
      for (const Quote* q : *b.quotes()) {
        std::string sym(quote_symbol(*q));
        auto it = store_.find(sym);
        if (it != store_.end() && it->second.epoch == b.epoch() && q->last() < it->second.value) {
          fuzz::fail("store went backwards within an epoch",
                     sym + " held " + std::to_string(it->second.value) + " got " + std::to_string(q->last()) +
                         (delta ? " from delta seq " : " from snapshot part ") + std::to_string(b.sequence()) +
                         " epoch " + std::to_string(b.epoch()));
        }
        store_[sym] = StoreEntry{q->last(), b.epoch()};
      }
    }
  }
  void request_snapshot(uint64_t id) override {
    TRACE("  request_snapshot %llu%s\n", static_cast<unsigned long long>(id), connected_ ? "" : " (buffered)");
    Request r;
    r.id = id;
    r.where = connected_ ? Request::at_server : Request::client_buffer;
    requests_.push_back(std::move(r));
  }
  void state_changed(SyncState s, uint64_t, uint64_t) override { reported_ = s; }

 private:
  struct Request {
    enum Where { client_buffer, at_server, served, lost } where = client_buffer;
    uint64_t id = 0;
    std::vector<Msg> reply;  // as served (for SERVE_AGAIN)
  };

  static const char* op_name(uint8_t op) {
    static const char* names[] = {"publish",       "publish_burst", "deliver",         "deliver_all", "tick",
                                  "serve",         "serve_again",   "drop_request",    "disconnect",  "reconnect",
                                  "slow_consumer", "fire_events",   "release_delayed", "restart",     "persist"};
    return names[op % 15];
  }

  // ---- the apiserver ----
  void begin_epoch() {
    EpochHistory& h = history_[epoch_];
    h.restored = truth_;
    h.seq.assign(ns_, 0);
  }

  void publish_delta(int s, uint8_t symbol_mask, int fate) {
    EpochHistory& h = history_[epoch_];
    uint64_t seq = ++h.seq[s];
    std::vector<Quote> quotes;
    const auto& syms = u_.symbols[s];
    for (int i = 0; i < kSymbolsPerSubject; ++i) {
      if (!((symbol_mask >> i) & 1)) continue;
      int64_t v = next_value_++;
      truth_[syms[i]] = v;
      h.updates[syms[i]].emplace_back(seq, v);
      quotes.push_back(testing::make_quote(syms[i], v));
    }
    Msg msg = encode(BatchHeader{"fuzz", epoch_, seq, wire::BatchKind::Delta, 0}, quotes, {});
    msg.subject = s;
    send(std::move(msg), fate);
  }

  // Fates: 0 delivered (queued), 1 dropped, 2 duplicated, 3 delayed.
  void send(Msg msg, int fate) {
    if (!connected_) return;  // NATS core: nobody to deliver it to
    switch (fate) {
      case 1: return;
      case 2:
        queue_of(msg).push_back(msg);
        queue_of(msg).push_back(std::move(msg));
        return;
      case 3: delayed_.push_back(std::move(msg)); return;
      default: queue_of(msg).push_back(std::move(msg)); return;
    }
  }
  std::deque<Msg>& queue_of(const Msg& m) { return m.reply ? queues_[kMaxSubjects] : queues_[m.subject]; }

  // serve_snapshots(): every last value, then the marks, nothing in between.
  std::vector<Msg> build_reply(uint64_t id, size_t part_size) {
    std::vector<Quote> quotes;
    for (const auto& [sym, v] : truth_) quotes.push_back(testing::make_quote(sym, v));
    std::vector<SubjectSequence> marks;
    for (int s = 0; s < ns_; ++s) marks.push_back({u_.subjects[s], history_[epoch_].seq[s]});
    std::vector<Msg> out;
    uint64_t parts = 0;
    for (size_t off = 0; off < quotes.size(); off += part_size) {
      std::vector<Quote> part(quotes.begin() + static_cast<long>(off),
                              quotes.begin() + static_cast<long>(std::min(quotes.size(), off + part_size)));
      out.push_back(encode(BatchHeader{"fuzz", epoch_, ++parts, wire::BatchKind::SnapshotPart, 0}, part, {}));
    }
    out.push_back(encode(BatchHeader{"fuzz", epoch_, parts, wire::BatchKind::SnapshotEnd, 0}, {}, marks));
    for (Msg& m : out) {
      m.reply = true;
      m.request_id = id;
    }
    return out;
  }

  // Serves request `r`. Fates of its messages: `mode` 0-3 all delivered, 4
  // message `which` dropped, 5 duplicated, 6 delayed, 7 the whole reply
  // delayed (e.g. past the timeout); with `each`, a fate per message read
  // from the script (2 bits each).
  void serve(Request& r, size_t part_size, int mode, uint8_t which, Script* each = nullptr) {
    r.reply = build_reply(r.id, part_size);
    r.where = Request::served;
    size_t k = which % r.reply.size();
    uint8_t bits = 0;
    for (size_t i = 0; i < r.reply.size(); ++i) {
      int fate = 0;
      if (mode == 4 && i == k) fate = 1;
      if (mode == 5 && i == k) fate = 2;
      if (mode == 6 && i == k) fate = 3;
      if (mode == 7) fate = 3;
      if (each) {
        if (i % 4 == 0) bits = each->byte();
        fate = (bits >> (2 * (i % 4))) & 3;
      }
      send(r.reply[i], fate);
    }
  }

  std::vector<Request*> at_server() {
    std::vector<Request*> v;
    for (Request& r : requests_)
      if (r.where == Request::at_server) v.push_back(&r);
    return v;
  }

  void restart(uint8_t how) {
    bool crash = how & 1;
    bool clock_back = (how >> 1) & 1;
    if (!crash) {
      // Clean stop: queued requests are answered from the old state, the
      // state is saved.
      for (Request* r : at_server()) serve(*r, 1000, 0, 0);
      persisted_ = truth_;
    } else {
      for (Request* r : at_server()) r->where = Request::lost;
    }
    if (!state_file_) {
      truth_.clear();
    } else if (crash) {
      truth_ = persisted_;
    }
    if (clock_back) {
      epoch_ = --min_epoch_;
    } else {
      epoch_ = ++max_epoch_;
    }
    begin_epoch();
  }

  // ---- the client's side of the bus ----
  void raise(Event e, bool hold) {
    events_.push_back(e);
    if (!hold) released_ = events_.size();
  }

  // daemon.cpp drain_events(): before every message and tick.
  void drain_events() {
    while (released_ > 0) {
      Event e = events_.front();
      events_.pop_front();
      --released_;
      TRACE("  event %d\n", static_cast<int>(e));
      switch (e) {
        case Event::disconnected:
          notified_down_ = true;
          m_.on_disconnected(now_);
          break;
        case Event::reconnected:
          notified_down_ = false;
          m_.on_reconnected(now_);
          break;
        case Event::slow_consumer: m_.on_messages_lost(now_); break;
      }
    }
  }

  void deliver(const Msg& msg) {
    drain_events();
    // A private aligned copy per delivery, as a natsMsg would be.
    auto* copy = new std::vector<uint64_t>(*msg.bytes);
    Inbound in;
    if (verify_batch(copy->data(), msg.size, &in.batch) != BatchError::ok) fuzz::fail("harness: bad encoding", "");
    in.hold = Hold(copy, [](void* p) { delete static_cast<std::vector<uint64_t>*>(p); });
    TRACE("  deliver %s %s epoch %llu seq %llu\n", msg.reply ? "reply" : u_.subjects[msg.subject].c_str(),
          msg.reply ? wire::EnumNameBatchKind(in.batch->kind()) : "delta",
          static_cast<unsigned long long>(in.batch->epoch()), static_cast<unsigned long long>(in.batch->sequence()));
    if (msg.reply) {
      reply_subject_ = "_INBOX.fuzz." + std::to_string(msg.request_id);
      in.subject = reply_subject_;
      m_.on_reply(std::move(in), msg.request_id, now_);
    } else {
      in.subject = u_.subjects[msg.subject];
      m_.on_delta(std::move(in), now_);
    }
  }

  bool deliver_head(int q) {
    if (queues_[q].empty()) return false;
    Msg msg = std::move(queues_[q].front());
    queues_[q].pop_front();
    deliver(msg);
    return true;
  }

  // Every queue emptied, subscriptions taking turns.
  void deliver_all() {
    for (bool any = true; any;) {
      any = false;
      for (int q = 0; q <= kMaxSubjects; ++q) any |= deliver_head(q);
    }
  }

  void tick(int64_t dt) {
    now_ += dt;
    drain_events();
    m_.on_tick(now_);
  }

  void do_step(uint8_t op, Script& sc) {
    switch (op % 15) {
      case 0: {  // publish one delta: subject, symbols, fate
        uint8_t a = sc.byte();
        int fate = (a >> 5) & 3;  // 0 delivered, 1 dropped, 2 duplicated, 3 delayed
        if ((a >> 7) & 1) fate = 0;
        publish_delta(a % ns_, static_cast<uint8_t>(1 + (a >> 2) % 7), fate);
        break;
      }
      case 1: {  // a burst of delivered deltas, subjects in turn
        uint8_t a = sc.byte();
        int n = 1 + a % 8;
        for (int i = 0; i < n; ++i) publish_delta((a / 8 + i) % ns_, static_cast<uint8_t>(1 + (i + a) % 7), 0);
        break;
      }
      case 2: {  // one message from one subscription
        int q = sc.byte() % (ns_ + 1);
        deliver_head(q == ns_ ? kMaxSubjects : q);
        break;
      }
      case 3: deliver_all(); break;
      case 4: {
        static const int64_t dts[8] = {1 * kMs, 10 * kMs, 50 * kMs, 200 * kMs, 600 * kMs, 1100 * kMs, 3000 * kMs, 0};
        tick(dts[sc.byte() % 8]);
        break;
      }
      case 5: {  // serve a queued request: which, part size, fates
        uint8_t a = sc.byte(), b = sc.byte(), c = sc.byte();
        auto v = at_server();
        if (v.empty()) break;
        static const size_t sizes[4] = {1, 2, 5, 1000};
        serve(*v[a % v.size()], sizes[b % 4], (b >> 2) & 7, c, (b >> 5) & 1 ? &sc : nullptr);
        break;
      }
      case 6: {  // the identical reply published again
        uint8_t a = sc.byte();
        std::vector<Request*> served;
        for (Request& r : requests_)
          if (r.where == Request::served) served.push_back(&r);
        if (served.empty()) break;
        for (const Msg& msg : served[a % served.size()]->reply) send(msg, 0);
        break;
      }
      case 7: {  // a queued request is never answered
        uint8_t a = sc.byte();
        auto v = at_server();
        if (!v.empty()) v[a % v.size()]->where = Request::lost;
        break;
      }
      case 8: {
        uint8_t a = sc.byte();
        if (!connected_) break;
        connected_ = false;
        if (a & 1) {
          // Lost with the connection (not yet in the library's queues).
          for (auto& q : queues_) q.clear();
        }
        raise(Event::disconnected, (a >> 1) & 1);
        break;
      }
      case 9: {
        uint8_t a = sc.byte();
        if (connected_) break;
        connected_ = true;
        // The reconnect buffer is flushed (or was full: the requests lost).
        for (Request& r : requests_)
          if (r.where == Request::client_buffer) r.where = (a & 1) ? Request::lost : Request::at_server;
        raise(Event::reconnected, (a >> 1) & 1);
        break;
      }
      case 10: {  // slow consumer: the newest queued messages of a subscription dropped
        uint8_t a = sc.byte();
        int q = a % (ns_ + 1) == ns_ ? kMaxSubjects : a % (ns_ + 1);
        size_t n = (a >> 3) & 3;  // 0: the drop was seen by the heartbeat check alone
        for (size_t i = 0; i < n && !queues_[q].empty(); ++i) queues_[q].pop_back();
        raise(Event::slow_consumer, (a >> 5) & 1);
        break;
      }
      case 11: released_ = events_.size(); break;
      case 12: {  // a delayed message arrives now, out of order
        uint8_t a = sc.byte();
        if (delayed_.empty()) break;
        size_t k = a % delayed_.size();
        Msg msg = std::move(delayed_[k]);
        delayed_.erase(delayed_.begin() + static_cast<long>(k));
        if (connected_) deliver(msg);
        break;
      }
      case 13: restart(sc.byte()); break;
      case 14: persisted_ = truth_; break;  // the periodic --state-file save
    }
  }

  // ---- properties ----
  void check(const char* after) {
    if (m_.buffered() > opt_.max_buffered) fuzz::fail("buffer over max_buffered", std::to_string(m_.buffered()));
    if (reported_ != m_.state()) fuzz::fail("reported state differs from state()", after);
    if (m_.state() != SyncState::live) return;
    if (notified_down_) fuzz::fail("live while disconnected", after);
    auto h = history_.find(m_.epoch());
    if (h == history_.end()) fuzz::fail("live in an epoch the apiserver never had", std::to_string(m_.epoch()));
    for (int s = 0; s < ns_; ++s) {
      uint64_t last = m_.last_sequence(u_.subjects[s]);
      if (last > h->second.seq[s]) {
        fuzz::fail("live ahead of the apiserver",
                   u_.subjects[s] + " at " + std::to_string(last) + " published " + std::to_string(h->second.seq[s]));
      }
      for (const std::string& sym : u_.symbols[s]) {
        int64_t want;
        if (!h->second.value_at(sym, last, &want)) continue;
        auto it = store_.find(sym);
        if (it == store_.end() || it->second.value != want) {
          fuzz::fail("live but the store differs from the apiserver at the machine's sequence",
                     std::string(after) + ": " + sym + " on " + u_.subjects[s] + " seq " + std::to_string(last) +
                         " epoch " + std::to_string(m_.epoch()) + " want " + std::to_string(want) + " have " +
                         (it == store_.end() ? std::string("nothing") : std::to_string(it->second.value)));
        }
      }
    }
  }

  bool quiet() const {
    for (const auto& q : queues_)
      if (!q.empty()) return false;
    for (const Request& r : requests_)
      if (r.where == Request::at_server || r.where == Request::client_buffer) return false;
    return events_.empty() && delayed_.empty();
  }

  // Fair: everything pending is delivered, every request answered at once
  // and completely, time moves on in small steps.
  void settle(const char* what) {
    for (int round = 0; round < kEpilogueRounds; ++round) {
      drain_events();
      while (!delayed_.empty()) {
        Msg msg = std::move(delayed_.front());
        delayed_.erase(delayed_.begin());
        deliver(msg);
      }
      deliver_all();
      for (int k = 0; k < 100 && !at_server().empty(); ++k) {
        for (Request* r : at_server()) {
          serve(*r, 2, 0, 0);
        }
        deliver_all();
      }
      check(what);
      if (m_.state() == SyncState::live && quiet()) return;
      tick(50 * kMs);
      check(what);
    }
    fuzz::fail("epilogue did not settle", std::string(what) + " state " + std::to_string(static_cast<int>(m_.state())));
  }

  void epilogue() {
    released_ = events_.size();
    if (!connected_) {
      connected_ = true;
      for (Request& r : requests_)
        if (r.where == Request::client_buffer) r.where = Request::at_server;
      raise(Event::reconnected, false);
    }
    settle("epilogue");
    // One more delta per subject reveals any loss at the tail; enough rounds
    // for older_epoch_resync deltas in a row when the machine sits on a later
    // epoch than the apiserver's (a clock that went back).
    int rounds = static_cast<int>((opt_.older_epoch_resync + ns_ - 1) / ns_) + 1;
    for (int r = 0; r < rounds; ++r) {
      for (int s = 0; s < ns_; ++s) publish_delta(s, static_cast<uint8_t>(1u << ((r + s) % kSymbolsPerSubject)), 0);
      settle("final deltas");
    }
    if (m_.state() != SyncState::live) fuzz::fail("not live after the epilogue", "");
    if (m_.epoch() != epoch_) fuzz::fail("live on another epoch than the apiserver's", std::to_string(m_.epoch()));
    for (const auto& [sym, v] : truth_) {
      auto it = store_.find(sym);
      if (it == store_.end() || it->second.value != v) {
        fuzz::fail("store differs from the apiserver after the epilogue",
                   sym + " want " + std::to_string(v) + " have " +
                       (it == store_.end() ? std::string("nothing") : std::to_string(it->second.value)));
      }
    }
  }

  const Universe& u_;
  const int ns_;
  const bool state_file_;
  SyncOptions opt_;
  SyncMachine m_;
  int64_t now_ = 1'000 * kMs;

  // apiserver
  uint64_t epoch_ = 0, min_epoch_ = 0, max_epoch_ = 0;
  int64_t next_value_ = 100'000;
  std::map<std::string, int64_t> truth_, persisted_;
  std::map<uint64_t, EpochHistory> history_;
  std::deque<Request> requests_;

  // bus and connection
  bool connected_ = true;
  std::deque<Msg> queues_[kMaxSubjects + 1];  // per delta subject, then the reply inbox
  std::vector<Msg> delayed_;
  std::deque<Event> events_;
  size_t released_ = 0;  // events_[0, released_) are queued for the machine
  bool notified_down_ = false;
  std::string reply_subject_;

  // sink
  std::map<std::string, StoreEntry> store_;
  SyncState reported_ = SyncState::unknown;
};

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  g_trace = std::getenv("SYNC_FUZZ_TRACE") != nullptr;
  // The machine logs every transition: only when tracing.
  log_set_level(g_trace ? LogLevel::info : LogLevel::error);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  Script sc{data + 1, size - 1};
  World w(data[0]);
  w.run(sc);
  return 0;
}
