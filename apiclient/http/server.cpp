// server.cpp — connections of one worker: accept, read, parse (llhttp),
// enforce limits, route, write. Everything runs on the worker's one libuv
// loop thread.
//
// Sockets are driven with uv_poll (readiness) and plain read/sendmsg rather
// than uv_tcp streams: a response is a list of segments, in the worker's or
// the connection's buffer (headers and rendered bodies) or in a cached body
// shared with other connections, all sent with one sendmsg; libuv's stream
// API would copy or queue each write on its own.
//
// Memory per connection is kept small because a worker may hold 10 000 of
// them: reads land in one per-worker buffer and are parsed at once (only the
// request target and three headers we use are copied out); responses are
// rendered into one per-worker buffer and written from there at once, and
// a connection keeps only what the kernel did not take, exactly sized, until
// it is sent (settle()); request-target copies of idle or waiting
// connections are released. Output not yet accepted by the kernel is
// counted per worker (memory by buffer size, cached bodies by unsent bytes);
// over --max-queued-bytes, connections stop reading (their requests wait)
// until the queue drains. (Before: every connection kept an output buffer
// grown by doubling to its largest response, 256 KB for a 300-symbol list,
// for a second after it was sent: 2 000 such connections peaked at 260 MB.) A waiting connection's request is read ahead into an
// exactly-sized stash while the worker's stashes total under kStashBudget
// (2 MiB), else left in the kernel's receive buffer; that bounds RSS when
// thousands of clients fetch 200 KB responses at once (ab -c 19990: a
// worker peaked at 55 MB with a 4-8 KB stash and a 4 KB output buffer per
// waiting connection, 10.9 MB now).
//
// Timeouts (header, idle, linger) are deadlines checked by one sweep timer
// every 250 ms instead of a uv_timer per connection.
//
// With one worker per CPU, workers are pinned and each connection is served
// by the worker of the CPU its packets arrive on; see "CPU locality" below.
#include "server.h"

#include <arpa/inet.h>
#include <llhttp.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <malloc.h>
#include <unistd.h>
#include <uv.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <deque>
#include <string>
#include <vector>

#include "body_cache.h"
#include "buffer.h"
#include "clock.h"
#include "handlers.h"
#include "log.h"
#include "request_parse.h"
#include "response.h"
#include "worker.h"

namespace tickfan::http {

namespace {

constexpr size_t kReadBufSize = 64 * 1024;
constexpr size_t kPipelineHighWater = 512u << 10;  // responses rendered per batch before parsing pauses
constexpr size_t kScratchKeep = 1u << 20;         // the worker's render buffer is freed when it grew beyond this
constexpr size_t kMmapThreshold = 64u << 10;      // malloc: larger blocks are mmapped (returned to the system when freed)
constexpr size_t kTrimPad = 1u << 20;             // heap kept by the sweep's malloc_trim
constexpr uint64_t kAcceptPauseMs = 100;          // accepting paused this long when out of descriptors
constexpr size_t kMaxSegments = 64;             // segments per sendmsg
constexpr size_t kUrlKeep = 1024;               // request-target copy kept between requests
constexpr int64_t kIdleReleaseMs = 1000;        // idle this long: output buffer released
constexpr int64_t kSweepMs = 250;
constexpr int kResumeBatch = 32;           // waiting connections resumed per drain event
constexpr size_t kStashBudget = 2u << 20;  // requests read ahead by waiting connections, per worker
constexpr int kMigrateAfterSweeps = 2;     // sweeps a connection is seen on another CPU before it moves
constexpr int64_t kMigrateHoldMs = 2000;   // a connection that moved stays put at least this long

enum class Phase : uint8_t { idle, headers, lingering, closing };

struct Server;

struct Conn {
  uv_poll_t poll;  // first member: the handle pointer is the Conn pointer
  int fd = -1;
  int events = 0;  // UV_READABLE / UV_WRITABLE currently polled
  llhttp_t parser;
  Server* srv = nullptr;
  Conn* prev = nullptr;
  Conn* next = nullptr;
  Phase phase = Phase::idle;
  bool reading = true;       // wants UV_READABLE (false: paused for backpressure)
  bool close_after = false;  // close once everything queued is written
  bool waiting = false;      // on the server's wait list (queue over budget)
  bool has_stash = false;
  bool shut = false;          // shutdown(SHUT_WR) done
  bool peer_eof = false;      // read() returned 0: the client sends nothing more (it may still read)
  bool stays = false;         // came in on --worker-port-base: never handed to another worker
  uint8_t away = 0;           // consecutive sweeps its packets arrived on another worker's CPU
  int64_t hold_until_ms = 0;  // not moved again before this
  int64_t deadline_ms = 0;
  int64_t last_active_ms = 0;
  int64_t req_start_ns = 0;

  // Request being parsed.
  RequestHead request;
  size_t header_bytes = 0;
  int reject_status = 0;
  BadReason reject_reason = BadReason::parse;

  // Output: responses queued in order as segments; own segments are
  // offsets into `out` (append-only until everything is sent), shared
  // segments are cached bodies kept alive by `holds`.
  Buffer out;
  struct Seg {
    size_t off, len;
    const char* shared;  // non-null: `len` bytes at `shared` (a cached body), `off` unused
  };
  std::vector<Seg> segs;
  std::vector<std::shared_ptr<const CachedBody>> holds;
  size_t seg_idx = 0, seg_done = 0;  // send progress
  size_t queued = 0;                 // bytes not yet accepted by the kernel
  Buffer stash;                      // bytes read but not parsed (paused for backpressure)
  size_t stash_acct = 0;             // part of Server::stash_bytes that is this stash's
};

struct Server {
  Server(const Options& o, int index) : opts(o), w(o, index) {}
  const Options& opts;
  Worker w;
  uv_loop_t* loop = nullptr;
  uv_poll_t listener;
  uv_poll_t own_listener;  // --worker-port-base: this worker's own port
  bool has_own_listener = false;
  // Out of descriptors (EMFILE/ENFILE): one kept in reserve lets the worker
  // accept a connection anyway, answer it 503 and close it; without one,
  // accepting pauses for kAcceptPauseMs (the listening socket stays
  // readable, so polling it would spin).
  int reserve_fd = -1;
  uv_timer_t accept_pause;
  bool accept_paused = false;
  const Handoff* handoff = nullptr;
  int cpu = -1;  // pinned to this CPU (-1: not pinned)
  uv_poll_t inbox;
  uv_timer_t sweep;
  uv_timer_t rank_timer;  // keeps rankings warm while they are asked for (rank_cache.h)
  uv_prepare_t tick_prepare;
  int64_t tick = 0;  // loop iterations: the store header is re-read once per tick
  uv_signal_t sigterm, sigint;
  llhttp_settings_t settings;
  char readbuf[kReadBufSize];
  Conn* head = nullptr;  // all open connections (intrusive list)
  uint32_t nconns = 0;
  size_t queued_bytes = 0;  // sum of Conn::queued
  size_t stash_bytes = 0;   // read-ahead held by waiting connections (kStashBudget)
  size_t max_queued = 64u << 20;
  std::deque<Conn*> wait_list;  // FIFO; closed connections are nulled out
  // Responses are rendered into one per-worker buffer, sent from there at
  // once, and only what the kernel does not take is copied into the
  // connection's own buffer, exactly sized (settle()). While a connection's
  // requests are being parsed the scratch and new_segs are its own.
  Buffer scratch;
  Conn* scratch_owner = nullptr;
  std::vector<Conn::Seg> new_segs;  // memory segments: offsets into scratch
  std::vector<std::shared_ptr<const CachedBody>> new_holds;
  bool trim_pending = false;  // output memory was freed since the last malloc_trim
  bool stopping = false;    // SIGTERM/SIGINT: draining (see on_signal)
  uv_timer_t drain_timer;  // ends the drain after --shutdown-timeout-ms
  RateLimit bad_log{5, 1000000000};
};

Conn* conn_of(llhttp_t* p) { return static_cast<Conn*>(p->data); }

void log_bad(Server* s, BadReason r, const char* detail) {
  s->w.metrics.bad_request[static_cast<int>(r)]->inc();
  uint64_t suppressed = 0;
  if (s->bad_log.allow(&suppressed)) {
    LOG_WARN("http", "bad request reason=%s detail=\"%s\" suppressed=%" PRIu64, bad_reason_name(r), detail, suppressed);
  }
}

void on_poll(uv_poll_t* h, int status, int events);
void resume_waiters(Server* s);

void on_closed(uv_handle_t* h) {
  Conn* c = reinterpret_cast<Conn*>(h);
  Server* s = c->srv;
  if (c->prev) c->prev->next = c->next;
  if (c->next) c->next->prev = c->prev;
  if (s->head == c) s->head = c->next;
  s->nconns--;
  s->w.metrics.connections->set(s->nconns);
  s->queued_bytes -= c->queued;
  s->stash_bytes -= c->stash_acct;
  if (c->fd >= 0) close(c->fd);
  delete c;
  resume_waiters(s);
  if (s->stopping && s->nconns == 0) uv_stop(s->loop);  // drained
}

// Forgets responses rendered for c and not settled yet (it is closing).
void drop_scratch(Conn* c) {
  Server* s = c->srv;
  if (s->scratch_owner != c) return;
  s->scratch_owner = nullptr;
  s->scratch.clear();
  s->new_segs.clear();
  s->new_holds.clear();
}

void close_conn(Conn* c) {
  if (c->phase == Phase::closing) return;
  c->phase = Phase::closing;
  if (c->waiting) {
    for (auto& p : c->srv->wait_list)
      if (p == c) p = nullptr;
    c->waiting = false;
  }
  c->holds.clear();
  drop_scratch(c);
  uv_poll_stop(&c->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&c->poll), on_closed);
}

void set_events(Conn* c, int ev) {
  if (c->phase == Phase::closing || ev == c->events) return;
  c->events = ev;
  int rc = ev ? uv_poll_start(&c->poll, ev, on_poll) : uv_poll_stop(&c->poll);
  if (rc != 0) close_conn(c);
}

void update_events(Conn* c) {
  int ev = 0;
  if (c->reading || c->phase == Phase::lingering) ev |= UV_READABLE;
  if (c->seg_idx < c->segs.size()) ev |= UV_WRITABLE;
  set_events(c, ev);
}

void flush(Conn* c);
void feed(Conn* c, const char* data, size_t len);
void resume(Conn* c);
void park(Conn* c);
void close_if_idle(Conn* c);

// Frees the output buffer and the request-target copy of a connection with
// nothing queued (a 4.6 KB list URL and a 4 KB output buffer per waiting or
// idle connection were most of a worker's RSS at 10 000 connections).
void release_idle_buffers(Conn* c) {
  if (c->segs.empty()) c->out.shrink(0);
  if (c->phase != Phase::headers) std::string().swap(c->request.url);
}

// Resumes connections that waited for the worker's queue to drain, oldest
// first and a few at a time (a resumed connection adds to the queue only
// once its request is read, so resuming all of them at once would poll
// thousands of sockets only to park most of them again). Called when a
// response completes, when a connection with queued output closes, and by
// the sweep timer.
void resume_waiters(Server* s) {
  for (int n = 0; n < kResumeBatch && !s->wait_list.empty() && s->queued_bytes < s->max_queued / 2;) {
    Conn* wc = s->wait_list.front();
    s->wait_list.pop_front();
    if (!wc) continue;
    wc->waiting = false;
    resume(wc);
    ++n;
  }
}

void begin_linger(Conn* c) {
  if (c->phase == Phase::lingering || c->phase == Phase::closing) return;
  // Half-close and keep reading (and discarding) until the peer closes or
  // the linger deadline passes: closing with unread input makes the kernel
  // send RST, which can destroy the response before the client reads it
  // (RFC 9112 §9.6).
  c->phase = Phase::lingering;
  c->deadline_ms = static_cast<int64_t>(uv_now(c->srv->loop)) + c->srv->opts.linger_ms;
  c->out.shrink(0);
  c->stash.shrink(0);
  std::string().swap(c->request.url);
  c->reading = false;
  if (shutdown(c->fd, SHUT_WR) != 0) {
    close_conn(c);
    return;
  }
  update_events(c);
}

// The worker's render buffer, for responses to c (settled by flush(c)).
Buffer& render_buffer(Conn* c) {
  Server* s = c->srv;
  if (s->scratch_owner != c) {
    if (s->scratch_owner) drop_scratch(s->scratch_owner);  // not reached: every response is flushed
    s->scratch_owner = c;
  }
  return s->scratch;
}

// Renders one complete response (head + body) for `req` into the worker's
// render buffer, as the next segment(s) of c.
void respond(Conn* c, const Request& req, Reply& rep, bool keep_alive, bool http10) {
  Server* s = c->srv;
  Worker& w = s->w;
  Buffer& out = render_buffer(c);
  size_t seg_start = out.size();
  out.tail(kHeadMax);
  out.commit(kHeadMax);
  size_t body_start = out.size();
  route(w, req, rep, out);
  size_t body_len = out.size() - body_start;
  bool want_gz = rep.compressible && req.accepts_gzip && rep.status == 200;
  bool gz = false;
  char trailer[8];
  size_t trailer_len = 0;
  if (want_gz && w.bodies.enabled()) {
    // A list body whose tail is in the body cache: its compressed form is
    // cached beside it (made on first use), and the response is the gzip
    // header, a stored block with the per-response prefix ({"age_ms":…),
    // the cached deflate stream and the trailer. A HEAD or a repeated GET at
    // the same commit compresses nothing.
    std::shared_ptr<const CachedBody> entry = rep.ext_body;
    size_t prefix_len = body_len;  // a hit: `out` holds the prefix, the entry the rest
    if (!entry && rep.endpoint == Endpoint::quotes) {
      // Rendered and cached just now: `out` holds the prefix and the entry's bytes.
      entry = w.bodies.find(req.query, w.state.commit_count, w.state.commit_ns);
      if (entry && entry->size <= body_len) {
        prefix_len = body_len - entry->size;
      } else {
        entry.reset();
      }
    }
    if (entry && prefix_len + entry->size >= s->opts.gzip_min_bytes && prefix_len <= 65535) {
      uint64_t before = w.bodies.compressions();
      std::shared_ptr<const CachedBody> d = w.bodies.deflated(req.query, entry, w.gzip, &w.gz);
      if (w.bodies.compressions() != before) w.metrics.gzip_compressions->inc();
      if (d) {
        out.resize(body_start + prefix_len);
        out.tail(Gzip::kHeadLen);
        char* b = out.data() + body_start;
        std::memmove(b + Gzip::kHeadLen, b, prefix_len);
        Gzip::head(b, prefix_len);
        out.resize(body_start + Gzip::kHeadLen + prefix_len);
        uint32_t crc = Gzip::crc32_combine(Gzip::crc32(0, b + Gzip::kHeadLen, prefix_len), entry->crc, entry->size);
        auto isize = static_cast<uint32_t>(prefix_len + entry->size);
        for (int i = 0; i < 4; ++i) {
          trailer[i] = static_cast<char>(crc >> (8 * i));
          trailer[4 + i] = static_cast<char>(isize >> (8 * i));
        }
        trailer_len = sizeof trailer;
        body_len = Gzip::kHeadLen + prefix_len;
        rep.ext_body = std::move(d);
        gz = true;
        w.metrics.gzip_responses->inc();
      }
    }
  }
  size_t ext_len = rep.ext_body ? rep.ext_body->size : 0;
  // Otherwise a body entirely in memory is compressed here (a cached body
  // that does not shrink is sent as it is).
  if (!gz && want_gz && !rep.ext_body && body_len >= s->opts.gzip_min_bytes) {
    w.metrics.gzip_compressions->inc();
    if (w.gzip.compress(out.data() + body_start, body_len, &w.gz)) {
      out.resize(body_start);
      out.append(w.gz.data(), w.gz.size());
      body_len = w.gz.size();
      gz = true;
      w.metrics.gzip_responses->inc();
    }
  }
  if (rep.status == 304) {
    w.metrics.not_modified->inc();
    body_len = 0;
    out.resize(body_start);
  }
  HeadParams hp;
  hp.content_length = body_len + ext_len + trailer_len;
  hp.gzip = gz;
  hp.keep_alive = keep_alive && !rep.close;
  hp.http10 = http10;
  char head[kHeadMax];
  size_t hl = render_head(w, req, rep, hp, head);
  if (req.head) {
    out.resize(body_start);  // HEAD: headers of the GET, no body (RFC 9110 §9.3.2)
    ext_len = 0;
    trailer_len = 0;
  }
  std::memcpy(out.data() + body_start - hl, head, hl);
  s->new_segs.push_back({body_start - hl, out.size() - (body_start - hl), nullptr});
  if (ext_len) {
    s->new_segs.push_back({0, ext_len, rep.ext_body->data()});
    s->new_holds.push_back(std::move(rep.ext_body));
  }
  if (trailer_len) {
    s->new_segs.push_back({out.size(), trailer_len, nullptr});
    out.append(trailer, trailer_len);
  }
  (void)seg_start;
  size_t bytes = out.size() - (body_start - hl) + ext_len;
  w.metrics.bytes_out->inc(bytes);
  double secs = static_cast<double>(mono_ns() - c->req_start_ns) / 1e9;
  w.metrics.count(rep.endpoint, rep.status, secs);
  if (!hp.keep_alive) c->close_after = true;
}

// A response to a request the parser refused (or whose headers did not
// come in time); the connection closes after it.
void respond_error(Conn* c, int status, const char* message) {
  Request req;
  // CORS (docs/http.md): with "*" every refusal has Access-Control-Allow-
  // Origin. With a list, a browser can read the refusal only if it names
  // its origin (Fetch standard, CORS check), so a listed Origin is echoed
  // (with Vary: Origin, render_head) when the parser had finished its field
  // line before the refusal: always for 413 and 505 (the head is complete),
  // for 400, 408 and 431 when the Origin line preceded the faulty or last
  // line (llhttp ends a line's value when the next line begins), never for
  // 414 (the target comes before any header). A line cut short is no
  // origin: its prefix could match a listed one. (This used to read the
  // raw value, which keeps a ',' after each line until the head is
  // complete: no refusal ever matched, but a 408 cut inside the value
  // echoed the prefix.) Outside a head (phase idle) nothing is known.
  if (c->phase == Phase::headers) req.origin = c->request.origin_received();
  Reply rep;
  rep.endpoint = Endpoint::other;
  rep.close = true;
  Server* s = c->srv;
  // X-Data-Age-Ms as of now, as a routed request gets it: without this the
  // head repeated the header copy of the last routed request, however old
  // (a 408 from the sweep, a parse error on an otherwise quiet worker), and
  // had no age at all until a routed request opened a new store.
  s->w.refresh(s->tick);
  Buffer& out = render_buffer(c);
  size_t seg_start = out.size();
  out.tail(kHeadMax);
  out.commit(kHeadMax);
  size_t body_start = out.size();
  error_reply(rep, out, body_start, status, message);
  HeadParams hp;
  hp.content_length = out.size() - body_start;
  hp.keep_alive = false;
  char head[kHeadMax];
  size_t hl = render_head(s->w, req, rep, hp, head);
  std::memcpy(out.data() + body_start - hl, head, hl);
  s->new_segs.push_back({body_start - hl, out.size() - (body_start - hl), nullptr});
  (void)seg_start;
  s->w.metrics.bytes_out->inc(out.size() - (body_start - hl));
  s->w.metrics.count(Endpoint::other, status, 0);
  c->close_after = true;
}

// Sends as much of the queued segments as the socket takes. Returns false
// if the connection was closed.
bool send_queued(Conn* c, char* base) {
  while (c->seg_idx < c->segs.size()) {
    // Every queued segment, own bytes and shared cached bodies alike, in one
    // sendmsg: a list's head, body and gzip trailer leave together.
    iovec iov[kMaxSegments];
    int k = 0;
    for (size_t j = c->seg_idx; j < c->segs.size() && k < static_cast<int>(kMaxSegments); ++j, ++k) {
      const Conn::Seg& sg = c->segs[j];
      size_t skip = j == c->seg_idx ? c->seg_done : 0;
      iov[k].iov_base = const_cast<char*>(sg.shared ? sg.shared : base + sg.off) + skip;
      iov[k].iov_len = sg.len - skip;
    }
    msghdr mh{};
    mh.msg_iov = iov;
    mh.msg_iovlen = static_cast<size_t>(k);
    ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) return true;
      close_conn(c);  // EPIPE, ECONNRESET: the client is gone
      return false;
    }
    if (n == 0) {
      close_conn(c);
      return false;
    }
    // Advance over what was sent.
    c->last_active_ms = static_cast<int64_t>(uv_now(c->srv->loop));
    auto left = static_cast<size_t>(n);
    while (left > 0 && c->seg_idx < c->segs.size()) {
      size_t rest = c->segs[c->seg_idx].len - c->seg_done;
      if (left >= rest) {
        left -= rest;
        c->seg_idx++;
        c->seg_done = 0;
      } else {
        c->seg_done += left;
        left = 0;
      }
    }
  }
  return true;
}

// Charges c's unsent output to the worker's budget: the unsent part of
// cached bodies it holds plus the memory its own output buffer holds.
void account(Conn* c) {
  size_t pending = 0;
  for (size_t j = c->seg_idx; j < c->segs.size(); ++j)
    if (c->segs[j].shared) pending += c->segs[j].len - (j == c->seg_idx ? c->seg_done : 0);
  if (c->seg_idx < c->segs.size()) pending += c->out.capacity();
  Server* s = c->srv;
  s->queued_bytes = s->queued_bytes - c->queued + pending;
  c->queued = pending;
}

// Moves the responses just rendered for c (the worker's render buffer) to
// the socket: after c's earlier output if any is still unsent, else sent
// straight from the render buffer. Whatever the kernel does not take is
// copied into c's own buffer, exactly sized, together with the unsent rest
// of its earlier output; so a connection holds only its unsent bytes (a
// 128 KB list the kernel took whole costs it nothing). Returns false if
// the connection was closed.
bool settle(Conn* c) {
  Server* s = c->srv;
  s->scratch_owner = nullptr;
  bool ok = true;
  if (c->seg_idx < c->segs.size()) ok = send_queued(c, c->out.data());  // earlier output first
  if (!ok) return false;  // closed (drop_scratch cleared the rest)
  bool direct = c->seg_idx == c->segs.size();
  if (direct) {
    c->segs.clear();
    c->holds.clear();
    c->seg_idx = c->seg_done = 0;
    c->out.clear();
  }
  size_t first_new = c->segs.size();
  c->segs.insert(c->segs.end(), s->new_segs.begin(), s->new_segs.end());
  for (auto& h : s->new_holds) c->holds.push_back(std::move(h));
  s->new_segs.clear();
  s->new_holds.clear();
  if (direct && !send_queued(c, s->scratch.data())) {
    s->scratch.clear();
    return false;
  }
  if (c->seg_idx < c->segs.size()) {
    size_t need = 0;
    for (size_t j = c->seg_idx; j < c->segs.size(); ++j)
      if (!c->segs[j].shared) need += c->segs[j].len - (j == c->seg_idx ? c->seg_done : 0);
    Buffer kept;
    kept.reserve_exact(need);
    std::vector<Conn::Seg> rest;
    rest.reserve(c->segs.size() - c->seg_idx);
    for (size_t j = c->seg_idx; j < c->segs.size(); ++j) {
      Conn::Seg sg = c->segs[j];
      if (!sg.shared) {
        const char* base = j >= first_new ? s->scratch.data() : c->out.data();
        size_t skip = j == c->seg_idx ? c->seg_done : 0;
        rest.push_back({kept.size(), sg.len - skip, nullptr});
        kept.append(base + sg.off + skip, sg.len - skip);
      } else {
        rest.push_back(sg);  // a shared segment keeps its progress (seg_done)
      }
    }
    if (!c->segs[c->seg_idx].shared) c->seg_done = 0;
    c->segs.swap(rest);
    c->seg_idx = 0;
    c->out.swap(kept);
  }
  s->scratch.clear();
  if (s->scratch.capacity() > kScratchKeep) s->scratch.shrink(0);
  return true;
}

void flush(Conn* c) {
  Server* s = c->srv;
  if (c->phase == Phase::closing || c->phase == Phase::lingering) {
    drop_scratch(c);
    return;
  }
  if (s->scratch_owner == c) {
    if (!settle(c)) return;
  } else if (!send_queued(c, c->out.data())) {
    return;
  }
  account(c);
  if (c->seg_idx == c->segs.size()) {
    // Everything sent: the connection keeps no output memory.
    c->segs.clear();
    c->holds.clear();
    c->seg_idx = c->seg_done = 0;
    if (c->out.capacity()) s->trim_pending = true;
    c->out.clear();
    c->out.shrink(0);
    resume_waiters(s);
    if (c->close_after || (c->peer_eof && !c->has_stash)) {
      // After the client's EOF there is nothing to drain: close at once.
      if (c->peer_eof)
        close_conn(c);
      else
        begin_linger(c);
      return;
    }
    if (s->stopping && !c->has_stash) {
      close_if_idle(c);  // draining: its last response is out
      if (c->phase == Phase::closing) return;
    }
    if (c->has_stash && !c->waiting) {
      // Pipelined requests read ahead: go on, unless the worker is over
      // its output budget (then wait in line like any reader).
      if (s->queued_bytes > s->max_queued)
        park(c);
      else
        resume(c);
      return;
    }
  }
  update_events(c);
}

// --- llhttp callbacks -------------------------------------------------------

int on_message_begin(llhttp_t* p) {
  Conn* c = conn_of(p);
  c->phase = Phase::headers;
  c->deadline_ms = static_cast<int64_t>(uv_now(c->srv->loop)) + c->srv->opts.header_timeout_ms;
  c->header_bytes = 0;
  c->request.begin();
  return 0;
}

int on_url(llhttp_t* p, const char* at, size_t len) {
  Conn* c = conn_of(p);
  if (c->request.url.size() + len > c->srv->opts.max_uri_bytes) {
    // RFC 9112 §3: a server that receives a request-target longer than it
    // wishes to parse MUST respond 414 (RFC 9110 §15.5.15).
    c->reject_status = 414;
    c->reject_reason = BadReason::uri_too_long;
    return HPE_USER;
  }
  c->request.url.append(at, len);
  return 0;
}

bool add_header_bytes(Conn* c, size_t len) {
  c->header_bytes += len;
  if (c->header_bytes <= c->srv->opts.max_header_bytes) return true;
  // RFC 6585 §5: 431 when the header fields are too large.
  c->reject_status = 431;
  c->reject_reason = BadReason::headers_too_large;
  return false;
}

int on_header_field(llhttp_t* p, const char* at, size_t len) {
  Conn* c = conn_of(p);
  if (!add_header_bytes(c, len)) return HPE_USER;
  c->request.field(at, len);
  return 0;
}

int on_header_field_complete(llhttp_t* p) {
  conn_of(p)->request.field_complete();
  return 0;
}

int on_header_value(llhttp_t* p, const char* at, size_t len) {
  Conn* c = conn_of(p);
  if (!add_header_bytes(c, len)) return HPE_USER;
  c->request.value(at, len);
  return 0;
}

int on_header_value_complete(llhttp_t* p) {
  conn_of(p)->request.value_complete();
  return 0;
}

int on_headers_complete(llhttp_t* p) {
  Conn* c = conn_of(p);
  // 505 for a version other than 1.x, 413 for a body (request_parse.h).
  if (int status = refuse_head(p)) {
    c->reject_status = status;
    c->reject_reason = status == 413 ? BadReason::body : BadReason::parse;
    return -1;
  }
  c->request.headers_complete();
  c->phase = Phase::idle;
  c->deadline_ms = 0;
  return 0;
}

int on_message_complete(llhttp_t* p) {
  Conn* c = conn_of(p);
  Server* s = c->srv;
  c->req_start_ns = mono_ns();
  Request req;
  c->request.to_request(p, &req);
  s->w.refresh(s->tick);
  Reply rep;
  // An Upgrade request is answered as plain HTTP/1.1 and the connection
  // closed (no protocol switch offered, RFC 9110 §7.8): say so.
  bool keep = llhttp_should_keep_alive(p) && !s->stopping && !p->upgrade;
  bool http10 = llhttp_get_http_major(p) == 1 && llhttp_get_http_minor(p) == 0;
  respond(c, req, rep, keep, http10);
  if (c->request.url.capacity() > kUrlKeep) std::string().swap(c->request.url);  // req's views are dead now
  c->phase = Phase::idle;
  c->last_active_ms = static_cast<int64_t>(uv_now(s->loop));
  c->deadline_ms = c->last_active_ms + s->opts.idle_timeout_ms;
  // Stop parsing after a closing response, when enough output is rendered
  // for one batch, or when the worker's unsent output would exceed its
  // budget (pipelined requests wait in the stash until this is sent).
  size_t rendered = s->scratch_owner == c ? s->scratch.size() : 0;
  if (c->close_after || rendered >= kPipelineHighWater || c->segs.size() + s->new_segs.size() + 2 > 2 * kMaxSegments ||
      s->queued_bytes + rendered > s->max_queued)
    return HPE_PAUSED;
  return 0;
}

// --- reading ----------------------------------------------------------------

// Keeps bytes read but not parsed yet (exactly their size: thousands of
// connections may hold one), counted in the worker's read-ahead.
void stash(Conn* c, const char* p, size_t n) {
  Server* s = c->srv;
  c->stash.append_grow_exact(p, n);
  s->stash_bytes -= c->stash_acct;
  c->stash_acct = c->stash.capacity();
  s->stash_bytes += c->stash_acct;
  c->has_stash = true;
}

// Stops reading `c` until the output queue drains (flush() resumes waiting
// connections in order).
void park(Conn* c) {
  c->reading = false;
  c->waiting = true;
  c->srv->wait_list.push_back(c);
  release_idle_buffers(c);
  update_events(c);
}

// The client sent FIN. That is a half-close, not an abort (RFC 9112 §9.6:
// a client may close its sending side and still read the responses): stop
// reading, answer the requests already read (queued output, pipelined ones
// in the stash), then close. A request cut short gets no answer; with
// nothing pending the connection closes at once. A client that then stops
// reading is dropped by the idle timeout like any other.
void on_eof(Conn* c) {
  c->peer_eof = true;
  c->reading = false;
  bool pending = c->seg_idx < c->segs.size() || c->has_stash;
  if (c->phase == Phase::lingering || !pending) {
    close_conn(c);
    return;
  }
  update_events(c);
  if (c->seg_idx == c->segs.size() && c->has_stash && !c->waiting) resume(c);
  // Otherwise writable events (or resume_waiters) take it from here.
}

void on_readable(Conn* c) {
  Server* s = c->srv;
  bool draining = c->phase == Phase::lingering || c->close_after;
  bool over = !draining && s->queued_bytes > s->max_queued;
  if (over && s->stash_bytes >= kStashBudget) {
    // Over the output budget and the read-ahead budget: read nothing and
    // stop polling until the queue drains (flush() resumes waiting
    // connections). The request stays in the kernel's receive buffer, so
    // thousands of waiting connections cost no worker memory beyond their
    // Conn.
    park(c);
    return;
  }
  ssize_t n = read(c->fd, s->readbuf, kReadBufSize);
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    close_conn(c);
    return;
  }
  if (n == 0) {
    on_eof(c);
    return;
  }
  if (draining) return;  // drain and discard
  if (over) {
    // Over the output budget but within the read-ahead budget: keep the
    // bytes (exactly their size) so that resuming answers at once.
    stash(c, s->readbuf, static_cast<size_t>(n));
    park(c);
    return;
  }
  feed(c, s->readbuf, static_cast<size_t>(n));
}

void on_poll(uv_poll_t* h, int status, int events) {
  Conn* c = reinterpret_cast<Conn*>(h);
  if (c->phase == Phase::closing) return;
  if (status < 0) {
    close_conn(c);
    return;
  }
  if (events & UV_WRITABLE) {
    flush(c);
    if (c->phase == Phase::closing) return;
  }
  if (events & (UV_READABLE | UV_DISCONNECT)) on_readable(c);
}

// Parses [data, data+len). Pauses (stash + stop reading) for backpressure.
void feed(Conn* c, const char* data, size_t len) {
  Server* s = c->srv;
  llhttp_errno_t err = llhttp_execute(&c->parser, data, len);
  if (err == HPE_OK) {
    flush(c);
    return;
  }
  if (err == HPE_PAUSED || err == HPE_PAUSED_UPGRADE) {
    const char* pos = llhttp_get_error_pos(&c->parser);
    if (err == HPE_PAUSED) llhttp_resume(&c->parser);
    if (err == HPE_PAUSED_UPGRADE) c->close_after = true;  // no protocol switch offered (RFC 9110 §7.8)
    if (!c->close_after && pos && pos < data + len) {
      stash(c, pos, static_cast<size_t>(data + len - pos));
      c->reading = false;
    }
    flush(c);
    return;
  }
  // The parser refused the request. Answer with the status our callback
  // chose, else 400 (RFC 9112 §3: invalid request line; §5: bad fields).
  int status = c->reject_status ? c->reject_status : 400;
  BadReason reason = c->reject_status ? c->reject_reason : BadReason::parse;
  if (!c->reject_status && err == HPE_INVALID_VERSION) status = 505;  // RFC 9110 §15.6.6
  const char* why = llhttp_get_error_reason(&c->parser);
  log_bad(s, reason, why ? why : llhttp_errno_name(err));
  const char* msg = status == 414   ? "request target too long"
                    : status == 431 ? "request header fields too large"
                    : status == 413 ? "request content not allowed on this method"
                    : status == 505 ? "HTTP version not supported"
                                    : "malformed request";
  respond_error(c, status, msg);
  flush(c);
}

void resume(Conn* c) {
  if (c->phase == Phase::closing || c->phase == Phase::lingering) return;
  if (c->has_stash) {
    Buffer data;
    data.swap(c->stash);
    c->srv->stash_bytes -= c->stash_acct;
    c->stash_acct = 0;
    c->has_stash = false;
    feed(c, data.data(), data.size());
    if (c->has_stash || c->phase == Phase::closing) return;  // paused again
  }
  if (!c->reading && !c->close_after && !c->peer_eof && c->phase != Phase::closing) {
    c->reading = true;
    update_events(c);
  }
}

// `moved_left_ms` >= 0: handed over by another worker (see migrate()) with
// that much left of its deadline; already counted as accepted there, its
// socket options set and no request begun.
void add_conn(Server* s, int fd, int64_t moved_left_ms = -1, bool stays = false) {
  Conn* c = new Conn();
  c->srv = s;
  c->fd = fd;
  c->stays = stays;
  if (uv_poll_init_socket(s->loop, &c->poll, fd) != 0) {
    close(fd);
    delete c;
    return;
  }
  c->next = s->head;
  if (s->head) s->head->prev = c;
  s->head = c;
  s->nconns++;
  s->w.metrics.connections->set(s->nconns);
  llhttp_init(&c->parser, HTTP_REQUEST, &s->settings);
  c->parser.data = c;
  int64_t now = static_cast<int64_t>(uv_now(s->loop));
  c->last_active_ms = now;
  if (moved_left_ms >= 0) {
    c->deadline_ms = now + moved_left_ms;
    c->hold_until_ms = now + kMigrateHoldMs;
    update_events(c);
    return;
  }
  s->w.metrics.accepted->inc();
  // A connection that sends nothing is closed after the header timeout.
  c->deadline_ms = now + s->opts.header_timeout_ms;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (s->opts.sndbuf > 0) setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &s->opts.sndbuf, sizeof s->opts.sndbuf);
  if (s->nconns > s->opts.max_connections) {
    // RFC 9110 §15.6.4: 503 for a temporary overload, with Retry-After.
    s->w.metrics.rejected_overload->inc();
    log_bad(s, BadReason::overload, "max connections reached");
    s->w.refresh(s->tick);  // its X-Data-Age-Ms
    char canned[kOverloadMax];
    size_t n = render_overload(s->w, canned);
    c->out.append(canned, n);
    c->segs.push_back({0, n, nullptr});
    c->close_after = true;
    s->w.metrics.count(Endpoint::other, 503, 0);
    flush(c);
    return;
  }
  update_events(c);
}

void on_accept(uv_poll_t* h, int status, int);

void set_accepting(Server* s, bool on) {
  if (on) {
    uv_poll_start(&s->listener, UV_READABLE, on_accept);
    if (s->has_own_listener) uv_poll_start(&s->own_listener, UV_READABLE, on_accept);
  } else {
    uv_poll_stop(&s->listener);
    if (s->has_own_listener) uv_poll_stop(&s->own_listener);
  }
}

void on_accept_pause_end(uv_timer_t* t) {
  Server* s = static_cast<Server*>(t->data);
  s->accept_paused = false;
  if (s->reserve_fd < 0) s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (!s->stopping) set_accepting(s, true);
}

// Out of descriptors with connections waiting to be accepted. With the
// reserve descriptor free, accept one, answer 503 (RFC 9110 §15.6.4) and
// close it; true when one was refused so. Otherwise stop polling the
// listeners for kAcceptPauseMs: level-triggered, a listening socket with a
// queue stays readable, and the worker would spin at 100 % CPU while its
// clients time out.
bool refuse_out_of_fds(Server* s, int lfd) {
  if (s->reserve_fd >= 0) {
    // The answer's X-Data-Age-Ms. With the store open, refreshing the
    // header copy only reads the mapping (and F_OFD_GETLK on the reader's
    // descriptor): no descriptor needed. Without it, no attempt to open it
    // here, where it would fail for want of one and log a misleading
    // "store not available"; the answer then has no age, as every response
    // does while the store is not open.
    if (s->w.reader) s->w.refresh(s->tick);
    char canned[kOverloadMax];
    size_t canned_len = render_overload(s->w, canned);
    close(s->reserve_fd);
    s->reserve_fd = -1;
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    int accept_errno = errno;
    if (fd >= 0) {
      // Read what the client already sent, so that the close is a FIN, not
      // a reset that could destroy the answer before it is read.
      char sink[4096];
      while (read(fd, sink, sizeof sink) > 0) {
      }
      ssize_t n = send(fd, canned, canned_len, MSG_NOSIGNAL | MSG_DONTWAIT);
      (void)n;
      close(fd);
      s->w.metrics.rejected_overload->inc();
      s->w.metrics.count(Endpoint::other, 503, 0);
    }
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) return true;
    if (accept_errno == EAGAIN || accept_errno == EWOULDBLOCK) return false;  // the queue is empty after all
  }
  if (!s->accept_paused) {
    s->accept_paused = true;
    set_accepting(s, false);
    uv_timer_start(&s->accept_pause, on_accept_pause_end, kAcceptPauseMs, 0);
  }
  return false;
}

void on_accept(uv_poll_t* h, int status, int) {
  Server* s = static_cast<Server*>(h->data);
  uv_os_fd_t lfd;
  if (status < 0 || uv_fileno(reinterpret_cast<uv_handle_t*>(h), &lfd) != 0) return;
  bool own = h == &s->own_listener;
  // Several per wake-up (level-triggered: the rest come next iteration).
  for (int i = 0; i < 64; ++i) {
    int fd = accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EMFILE || errno == ENFILE) {
        static RateLimit limit(1, 1000000000);
        uint64_t suppressed = 0;
        if (limit.allow(&suppressed))
          LOG_WARN("http", "accept: out of file descriptors, answering 503 (suppressed=%" PRIu64 ")", suppressed);
        if (refuse_out_of_fds(s, lfd)) continue;
      }
      return;
    }
    add_conn(s, fd, -1, own);
  }
}

// --- CPU locality (--cpu-affinity) --------------------------------------------
//
// Pinned workers: worker i runs only on CPU cpus[i], and a connection is
// best served by the worker of the CPU where its packets are processed (the
// NIC queue's CPU, or on loopback the client thread's): the softirq that
// queues a request, the worker that answers it and, on loopback, the
// client woken by the answer then share that CPU's caches and need no
// cross-CPU wake-up. On a 2-CPU VM under wrk -c64 that is ~345 k req/s for
// a quote against ~200 k unpinned (docs/BENCHMARKS.md). Two mechanisms:
//  - new connections: each listener has SO_INCOMING_CPU = its CPU, so the
//    SO_REUSEPORT group picks the worker of the CPU that processed the SYN
//    (Linux >= 6.2; older kernels hash as before);
//  - established ones: the sweep asks each recently active idle connection
//    where its packets arrive (SO_INCOMING_CPU); seen on another worker's
//    CPU twice in a row, it is handed to that worker over a unix socket
//    (SCM_RIGHTS). This also undoes the skew of the first rule when a few
//    client threads connect from one CPU and only later spread out (two wrk
//    threads started on one CPU put all 64 connections on one worker).
// Only a connection between requests moves (nothing read, nothing queued):
// its kernel socket carries any request already sent, and the parser state
// is fresh. A moved connection stays put for kMigrateHoldMs, so a client
// thread hopping between CPUs cannot bounce it back and forth.

// The worker serving `cpu`, or -1.
int worker_of_cpu(const Server* s, int cpu) {
  const std::vector<int>& cpus = s->handoff->cpus;
  for (size_t i = 0; i < cpus.size(); ++i)
    if (cpus[i] == cpu) return static_cast<int>(i);
  return -1;
}

// Sends c's socket to worker `to`; closes our side on success.
void migrate(Conn* c, int to) {
  Server* s = c->srv;
  // The payload carries what is left of the connection's deadline (idle or
  // header timeout), so moving does not extend it.
  int64_t left_ms = c->deadline_ms - static_cast<int64_t>(uv_now(s->loop));
  iovec iov{&left_ms, sizeof left_ms};
  alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))] = {};
  msghdr mh{};
  mh.msg_iov = &iov;
  mh.msg_iovlen = 1;
  mh.msg_control = ctl;
  mh.msg_controllen = sizeof ctl;
  cmsghdr* cm = CMSG_FIRSTHDR(&mh);
  cm->cmsg_level = SOL_SOCKET;
  cm->cmsg_type = SCM_RIGHTS;
  cm->cmsg_len = CMSG_LEN(sizeof(int));
  std::memcpy(CMSG_DATA(cm), &c->fd, sizeof(int));
  if (sendmsg(s->handoff->outbox[static_cast<size_t>(to)], &mh, MSG_DONTWAIT | MSG_NOSIGNAL) !=
      static_cast<ssize_t>(sizeof left_ms))
    return;  // inbox full (its worker restarting?): keep serving it, the next sweep retries
  s->w.metrics.migrated->inc();
  close_conn(c);  // the socket lives on in the other worker
}

void check_locality(Conn* c, int64_t now) {
  Server* s = c->srv;
  bool between_requests =
      c->phase == Phase::idle && c->segs.empty() && !c->has_stash && !c->waiting && !c->close_after && c->reading;
  if (!between_requests || c->stays || now < c->hold_until_ms || now - c->last_active_ms > 2 * kSweepMs) {
    c->away = 0;
    return;
  }
  int cpu = -1;
  socklen_t len = sizeof cpu;
  if (getsockopt(c->fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, &len) != 0 || cpu == s->cpu) {
    c->away = 0;
    return;
  }
  int to = worker_of_cpu(s, cpu);
  if (to < 0 || to == s->w.index) return;
  if (++c->away >= kMigrateAfterSweeps) migrate(c, to);
}

void on_inbox(uv_poll_t* h, int status, int) {
  Server* s = static_cast<Server*>(h->data);
  uv_os_fd_t inbox;
  if (status < 0 || uv_fileno(reinterpret_cast<uv_handle_t*>(h), &inbox) != 0) return;
  for (int i = 0; i < 64; ++i) {
    int64_t left_ms = 0;
    iovec iov{&left_ms, sizeof left_ms};
    alignas(cmsghdr) char ctl[CMSG_SPACE(sizeof(int))];
    msghdr mh{};
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = ctl;
    mh.msg_controllen = sizeof ctl;
    if (recvmsg(inbox, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC) < 0) return;
    cmsghdr* cm = CMSG_FIRSTHDR(&mh);
    if (!cm || cm->cmsg_type != SCM_RIGHTS) continue;
    int fd;
    std::memcpy(&fd, CMSG_DATA(cm), sizeof fd);
    if (s->stopping) {
      close(fd);
      continue;
    }
    add_conn(s, fd, left_ms < 0 ? 0 : left_ms);  // overdue: the next sweep closes it
  }
}

// A connection with nothing under way: no request begun, nothing queued or
// read ahead.
bool is_idle(const Conn* c) {
  return c->phase == Phase::idle && c->segs.empty() && !c->has_stash && !c->waiting && !c->close_after;
}

// Draining: closes c if it is idle, after reading whatever request the
// client may have sent meanwhile (then it is answered, with
// Connection: close, instead).
void close_if_idle(Conn* c) {
  if (c->phase == Phase::closing || !is_idle(c)) return;
  if (c->reading) on_readable(c);
  if (c->phase != Phase::closing && is_idle(c)) close_conn(c);
}

// Every --rank-interval-ms while /v1/rank was asked for in the last 5 s: a
// new snapshot if the store committed since, and the orderings in use
// sorted, so the requests that follow only walk them.
void on_rank_timer(uv_timer_t* t) {
  Server* s = static_cast<Server*>(t->data);
  Worker& w = s->w;
  int64_t now = mono_ns();
  if (!w.rankings_in_use(now) || s->stopping) return;
  if (!w.refresh(++s->tick)) return;  // a fresh header copy (a new tick: requests re-read it too)
  if (w.rank.refresh(*w.reader, w.state.commit_count, w.state.commit_ns, now, w.opts.rank_interval_ms,
                     w.metrics.rank_recomputes))
    w.rank.warm();
}

void on_sweep(uv_timer_t* t) {
  Server* s = static_cast<Server*>(t->data);
  int64_t now = static_cast<int64_t>(uv_now(s->loop));
  resume_waiters(s);  // in case no completion or close did
  if (s->trim_pending) {
    // Hand freed heap pages back (glibc keeps them otherwise): after a burst
    // of large responses, thousands of freed remainders below the mmap
    // threshold would stay in the worker's RSS.
    s->trim_pending = false;
    malloc_trim(kTrimPad);
  }
  for (Conn* c = s->head; c;) {
    Conn* next = c->next;
    if (c->phase == Phase::closing) {
      c = next;
      continue;
    }
    if (c->phase == Phase::lingering) {
      if (now >= c->deadline_ms) close_conn(c);
    } else if (c->segs.empty() && c->deadline_ms && now >= c->deadline_ms) {
      if (c->phase == Phase::headers) {
        // Request started but headers incomplete in time: 408 and close
        // (RFC 9110 §15.5.9).
        log_bad(s, BadReason::header_timeout, "headers not complete within --header-timeout-ms");
        respond_error(c, 408, "request headers not received in time");
        flush(c);
      } else {
        close_conn(c);  // idle keep-alive (RFC 9112 §9.8 lets either side close)
      }
    } else if (!c->segs.empty() && now - c->last_active_ms > static_cast<int64_t>(s->opts.idle_timeout_ms)) {
      // A client that stopped reading its response (slow-read attack, or
      // gone without a FIN): nothing sent for the idle timeout, give up.
      close_conn(c);
    } else if (s->stopping && is_idle(c)) {
      close_if_idle(c);  // draining
    } else if (c->segs.empty() && now - c->last_active_ms > kIdleReleaseMs) {
      release_idle_buffers(c);
    } else if (s->cpu >= 0 && !s->handoff->outbox.empty()) {
      check_locality(c, now);
    }
    c = next;
  }
}

// SIGTERM/SIGINT: a graceful stop. Stop accepting (the listening sockets
// are closed, so the kernel sends new connections to the other workers'
// sockets, if any), close idle keep-alive connections, and let the others
// finish: requests already read or being read are answered with
// Connection: close (on_message_complete), queued output is sent. The
// loop ends when the last connection is gone, or after
// --shutdown-timeout-ms at most. A second signal stops at once.
void on_signal(uv_signal_t* h, int signum) {
  Server* s = static_cast<Server*>(h->data);
  if (s->stopping) {
    LOG_INFO("http", "worker=%d signal=%d again: stopping now", s->w.index, signum);
    uv_stop(s->loop);
    return;
  }
  s->stopping = true;
  LOG_INFO("http", "worker=%d signal=%d: draining %u connections (at most %u ms)", s->w.index, signum, s->nconns,
           s->opts.shutdown_timeout_ms);
  uv_timer_stop(&s->accept_pause);
  set_accepting(s, false);
  uv_os_fd_t lfd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(&s->listener), &lfd) == 0) close(lfd);
  if (s->has_own_listener && uv_fileno(reinterpret_cast<uv_handle_t*>(&s->own_listener), &lfd) == 0) close(lfd);
  for (Conn* c = s->head; c;) {
    Conn* next = c->next;
    close_if_idle(c);
    c = next;
  }
  if (s->nconns == 0) {
    uv_stop(s->loop);
    return;
  }
  uv_timer_start(
      &s->drain_timer,
      [](uv_timer_t* t) {
        Server* srv = static_cast<Server*>(t->data);
        LOG_WARN("http", "worker=%d drain time over: closing %u connections", srv->w.index, srv->nconns);
        uv_stop(srv->loop);
      },
      s->opts.shutdown_timeout_ms, 0);
}

// Our own listening socket with SO_REUSEPORT (libuv 1.44 has no flag for
// it): the kernel then spreads new connections over the workers' sockets.
// `shared` false: a port of this worker alone (--worker-port-base).
int make_listener(const Options& o, int port, bool shared, int cpu, std::string* err) {
  sockaddr_storage ss{};
  socklen_t sl;
  auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
  int family;
  if (inet_pton(AF_INET, o.listen_host.c_str(), &in4->sin_addr) == 1) {
    family = AF_INET;
    in4->sin_family = AF_INET;
    in4->sin_port = htons(static_cast<uint16_t>(port));
    sl = sizeof *in4;
  } else if (inet_pton(AF_INET6, o.listen_host.c_str(), &in6->sin6_addr) == 1) {
    family = AF_INET6;
    in6->sin6_family = AF_INET6;
    in6->sin6_port = htons(static_cast<uint16_t>(port));
    sl = sizeof *in6;
  } else {
    *err = "--host " + o.listen_host + " is not an IPv4/IPv6 address";
    return -1;
  }
  int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *err = std::string("socket: ") + strerror(errno);
    return -1;
  }
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  // Inherited by every accepted connection. Why one would: BBR (a common
  // default) paces each connection with a kernel timer, which on a VM costs
  // a timer reprogramming per burst; over loopback or a LAN pacing buys
  // nothing (docs/BENCHMARKS.md: +20-60 % for 214 KB responses with cubic).
  if (!o.tcp_congestion.empty() &&
      setsockopt(fd, IPPROTO_TCP, TCP_CONGESTION, o.tcp_congestion.data(), o.tcp_congestion.size()) != 0) {
    *err = "--tcp-congestion " + o.tcp_congestion + ": " + strerror(errno);
    close(fd);
    return -1;
  }
  // Before listen(): no connection is hashed to this socket before it says
  // which CPU's connections it wants (see "CPU locality").
  if (shared && cpu >= 0 && setsockopt(fd, SOL_SOCKET, SO_INCOMING_CPU, &cpu, sizeof cpu) != 0)
    LOG_WARN("http", "SO_INCOMING_CPU %d: %s", cpu, strerror(errno));
  if ((shared && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      bind(fd, reinterpret_cast<sockaddr*>(&ss), sl) != 0 || listen(fd, o.backlog) != 0) {
    *err = "listen on " + o.listen_host + ":" + std::to_string(port) + ": " + strerror(errno);
    close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

std::vector<int> worker_cpus(const Options& o) {
  cpu_set_t allowed;
  if (o.cpu_affinity != "auto" || sched_getaffinity(0, sizeof allowed, &allowed) != 0) return {};
  std::vector<int> cpus;
  for (int i = 0; i < CPU_SETSIZE; ++i)
    if (CPU_ISSET(i, &allowed)) cpus.push_back(i);
  // More workers than CPUs would share them (no CPU names one worker);
  // fewer leave CPUs whose connections have no worker of their own.
  if (static_cast<int>(cpus.size()) != o.workers || cpus.size() < 2) return {};
  return cpus;
}

int run_worker(const Options& opts, int index, const Handoff& handoff) {
  // Other workers' inboxes are theirs to read.
  for (size_t i = 0; i < handoff.inbox.size(); ++i)
    if (static_cast<int>(i) != index) close(handoff.inbox[i]);
  int cpu = -1;
  if (static_cast<size_t>(index) < handoff.cpus.size()) {
    cpu = handoff.cpus[static_cast<size_t>(index)];
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    if (sched_setaffinity(0, sizeof one, &one) != 0) {
      LOG_WARN("http", "worker=%d sched_setaffinity(cpu %d): %s; not pinned", index, cpu, strerror(errno));
      cpu = -1;
    }
  }
  std::string err;
  int fd = make_listener(opts, opts.port, true, cpu, &err);
  int own_fd = -1;
  if (fd >= 0 && opts.worker_port_base > 0)
    own_fd = make_listener(opts, opts.worker_port_base + index, false, cpu, &err);
  if (fd < 0 || (opts.worker_port_base > 0 && own_fd < 0)) {
    LOG_ERROR("http", "worker=%d %s", index, err.c_str());
    return kWorkerExitListen;
  }
  // Blocks of at least kMmapThreshold (the render buffer, unsent remainders
  // of large responses) come straight from mmap, so freeing one returns it
  // to the system. Setting the threshold also fixes it: glibc's dynamic
  // threshold rises to the largest block freed (up to 32 MB), after which
  // every large buffer comes from the heap and stays in RSS after it is
  // freed (328 MB at 2000 connections fetching 300-symbol lists).
  mallopt(M_MMAP_THRESHOLD, static_cast<int>(kMmapThreshold));
  mallopt(M_TRIM_THRESHOLD, static_cast<int>(2 * kTrimPad));
  auto* s = new Server(opts, index);  // lives until exit; the OS reclaims it
  s->handoff = &handoff;
  s->cpu = cpu;
  s->loop = uv_default_loop();
  s->max_queued = opts.max_queued_bytes;
  llhttp_settings_init(&s->settings);
  s->settings.on_message_begin = on_message_begin;
  s->settings.on_url = on_url;
  s->settings.on_header_field = on_header_field;
  s->settings.on_header_field_complete = on_header_field_complete;
  s->settings.on_header_value = on_header_value;
  s->settings.on_header_value_complete = on_header_value_complete;
  s->settings.on_headers_complete = on_headers_complete;
  s->settings.on_message_complete = on_message_complete;
  s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
  uv_timer_init(s->loop, &s->accept_pause);
  s->accept_pause.data = s;
  int rc = uv_poll_init_socket(s->loop, &s->listener, fd);
  s->listener.data = s;
  if (rc == 0) rc = uv_poll_start(&s->listener, UV_READABLE, on_accept);
  if (rc == 0 && own_fd >= 0) {
    rc = uv_poll_init_socket(s->loop, &s->own_listener, own_fd);
    s->own_listener.data = s;
    s->has_own_listener = rc == 0;
    if (rc == 0) rc = uv_poll_start(&s->own_listener, UV_READABLE, on_accept);
  }
  if (rc != 0) {
    LOG_ERROR("http", "worker=%d libuv listen: %s", index, uv_strerror(rc));
    return kWorkerExitListen;
  }
  if (cpu >= 0 && static_cast<size_t>(index) < handoff.inbox.size()) {
    s->inbox.data = s;
    if (uv_poll_init_socket(s->loop, &s->inbox, handoff.inbox[static_cast<size_t>(index)]) == 0)
      uv_poll_start(&s->inbox, UV_READABLE, on_inbox);
  }
  // A new tick before each poll: requests handled in one poll phase (e.g. a
  // pipelined batch) share one copy of the store header; the next phase,
  // which could follow a commit, re-reads it.
  uv_prepare_init(s->loop, &s->tick_prepare);
  s->tick_prepare.data = s;
  uv_prepare_start(&s->tick_prepare, [](uv_prepare_t* h) { static_cast<Server*>(h->data)->tick++; });
  uv_timer_init(s->loop, &s->sweep);
  s->sweep.data = s;
  uv_timer_start(&s->sweep, on_sweep, kSweepMs, kSweepMs);
  uv_timer_init(s->loop, &s->rank_timer);
  s->rank_timer.data = s;
  uint64_t rank_every = std::max<uint64_t>(s->opts.rank_interval_ms, 10);
  uv_timer_start(&s->rank_timer, on_rank_timer, rank_every, rank_every);
  uv_timer_init(s->loop, &s->drain_timer);
  s->drain_timer.data = s;
  uv_signal_init(s->loop, &s->sigterm);
  uv_signal_init(s->loop, &s->sigint);
  s->sigterm.data = s->sigint.data = s;
  uv_signal_start(&s->sigterm, on_signal, SIGTERM);
  uv_signal_start(&s->sigint, on_signal, SIGINT);
  s->w.refresh(s->tick);
  LOG_INFO("http", "worker=%d pid=%d listening on %s:%d cpu=%d", index, getpid(), opts.listen_host.c_str(), opts.port,
           cpu);
  uv_run(s->loop, UV_RUN_DEFAULT);
  return kWorkerExitOk;
}

}  // namespace tickfan::http
