// source.cpp — see source.h: URI parsing, the shared line pipeline
// (split -> parse -> validate -> ring), reject accounting.
#include "source.h"

#include <charconv>
#include <chrono>
#include <cstring>
#include <stdexcept>
#include <type_traits>

#include "clock.h"

namespace tickfan::apiserver {

namespace {
// Metric label values and log fields must stay one token: keep a safe set.
std::string sanitize_name(std::string_view s) {
  std::string out;
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':' || c == '/';
    out.push_back(ok ? c : '_');
  }
  return out.substr(0, 64);
}

template <typename T>
T number_option(const std::string& uri, std::string_view key, std::string_view v) {
  T out{};
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc() || p != v.data() + v.size()) {
    const char* why = ec == std::errc::result_out_of_range ? " is out of range"
                      : std::is_unsigned_v<T> && !v.empty() && v[0] == '-' ? " must not be negative"
                                                                           : " is not a number";
    throw std::invalid_argument("source '" + uri + "': option " + std::string(key) + "=" + std::string(v) + why);
  }
  return out;
}
}  // namespace

SourceSpec parse_source_uri(const std::string& uri) {
  SourceSpec s;
  s.uri = uri;
  std::string_view u(uri);
  std::string_view query;
  if (size_t q = u.find('?'); q != std::string_view::npos) {
    query = u.substr(q + 1);
    u = u.substr(0, q);
  }
  if (u.starts_with("file:")) {
    s.kind = SourceKind::file;
    s.path = std::string(u.substr(5));
    if (s.path.empty()) throw std::invalid_argument("source '" + uri + "': file: needs a path (file:/data/ticks.csv)");
    size_t slash = s.path.rfind('/');
    s.name = "file:" + sanitize_name(slash == std::string::npos ? s.path : s.path.substr(slash + 1));
  } else if (u == "stdin:" || u == "stdin") {
    s.kind = SourceKind::stdin_;
    s.name = "stdin";
  } else if (u.starts_with("tcp://")) {
    s.kind = SourceKind::tcp;
    std::string_view hp = u.substr(6);
    if (!hp.empty() && hp.back() == '/') hp.remove_suffix(1);
    size_t colon = hp.rfind(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw std::invalid_argument("source '" + uri + "': expected tcp://HOST:PORT");
    }
    s.host = std::string(hp.substr(0, colon));
    if (s.host.size() > 2 && s.host.front() == '[' && s.host.back() == ']')
      s.host = s.host.substr(1, s.host.size() - 2);
    s.port = number_option<int>(uri, "port", hp.substr(colon + 1));
    if (s.port <= 0 || s.port > 65535) throw std::invalid_argument("source '" + uri + "': port out of range");
    s.name = "tcp:" + sanitize_name(std::string(hp));
  } else if (u == "synthetic:" || u == "synthetic" || u == "synthetic://") {
    s.kind = SourceKind::synthetic;
    s.name = "synthetic";
  } else {
    throw std::invalid_argument("source '" + uri +
                                "': unknown scheme (use file:PATH, stdin:, tcp://HOST:PORT or synthetic:)");
  }
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    if (eq == std::string_view::npos)
      throw std::invalid_argument("source '" + uri + "': option '" + std::string(kv) + "' needs =VALUE");
    std::string_view k = kv.substr(0, eq), v = kv.substr(eq + 1);
    if (k == "name") {
      if (v.empty()) throw std::invalid_argument("source '" + uri + "': empty name");
      s.name = sanitize_name(v);
    } else if (k == "priority") {
      s.priority = number_option<int>(uri, k, v);
    } else if (k == "follow" && s.kind == SourceKind::file) {
      // Anything else (follow=on, follow=2) was silently "no".
      if (v == "1" || v == "true" || v == "yes") {
        s.follow = true;
      } else if (v == "0" || v == "false" || v == "no") {
        s.follow = false;
      } else {
        throw std::invalid_argument("source '" + uri + "': follow must be 1, true, yes, 0, false or no");
      }
    } else if (k == "symbols" && s.kind == SourceKind::synthetic) {
      s.symbols = number_option<uint32_t>(uri, k, v);
      if (s.symbols == 0 || s.symbols > 1'000'000)
        throw std::invalid_argument("source '" + uri + "': symbols must be 1..1000000");
    } else if (k == "rate" && s.kind == SourceKind::synthetic) {
      s.rate = number_option<double>(uri, k, v);
      // NaN and inf parse as numbers; a rate below 0.001/s paces one tick
      // per 1000 s and more (and overflows the pacing clock near 0).
      if (!(s.rate == 0 || (s.rate >= 0.001 && s.rate <= 1e9)))
        throw std::invalid_argument("source '" + uri + "': rate must be 0 (as fast as possible) or 0.001..1e9 ticks/s");
    } else if (k == "seed" && s.kind == SourceKind::synthetic) {
      s.seed = number_option<uint64_t>(uri, k, v);
    } else if (k == "count" && s.kind == SourceKind::synthetic) {
      s.count = number_option<uint64_t>(uri, k, v);
    } else {
      throw std::invalid_argument("source '" + uri + "': unknown option '" + std::string(k) +
                                  "' for this kind of source");
    }
  }
  return s;
}

Source::Source(SourceSpec spec, const SourceContext& ctx, int index)
    : spec_(std::move(spec)), ctx_(ctx), index_(index), ring_(ctx.ring_capacity) {
  std::string l = "source=\"" + spec_.name + "\"";
  MetricsRegistry& m = *ctx_.metrics;
  ticks_in_ = &m.counter("tickfan_apiserver_ticks_in_total", "Valid ticks read from a source", l);
  lines_ = &m.counter("tickfan_apiserver_lines_total", "Input lines read from a source (incl. blank/header/bad)", l);
  for (int r = 0; r < kRejectCount; ++r) {
    rejected_[r] = &m.counter("tickfan_apiserver_rejected_total", "Input lines refused, by reason",
                              l + ",reason=\"" + reject_name(static_cast<Reject>(r)) + "\"");
  }
}

Source::~Source() {
  request_stop();
  join();
}

void Source::start() {
  thread_ = std::thread([this] {
    run();
    flush();
    done_.store(true, std::memory_order_release);
    ctx_.bell->ring();
  });
}

void Source::join() {
  if (thread_.joinable()) thread_.join();
}

bool Source::sleep_ms(int ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  while (!stopping()) {
    auto now = std::chrono::steady_clock::now();
    if (now >= deadline) return true;
    std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(deadline - now, std::chrono::milliseconds(20)));
  }
  return false;
}

Quote* Source::slot() {
  Quote* slot = ring_.claim();
  if (slot != nullptr) return slot;
  // Full: let the core see what we have, then wait for room. A stop request
  // does not end the wait: the core drains every ring before it exits, and a
  // tick we accepted must not be lost.
  flush();
  int spins = 0;
  while ((slot = ring_.claim()) == nullptr) {
    if (++spins < 64) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }
  return slot;
}

void Source::flush() {
  if (ring_.publish()) ctx_.bell->ring();
}

void Source::reject(Reject r, const std::string& detail, std::string_view line) {
  rejected_[static_cast<int>(r)]->inc();
  errors_.fetch_add(1, std::memory_order_relaxed);
  uint64_t suppressed = 0;
  if (log_limit_.allow(&suppressed)) {
    LOG_WARN("source", "rejected source=%s line=%llu reason=%s detail=\"%s\" text=\"%.*s\" suppressed=%llu",
             spec_.name.c_str(), static_cast<unsigned long long>(line_no_), reject_name(r), detail.c_str(),
             static_cast<int>(std::min<size_t>(line.size(), 120)), line.data(),
             static_cast<unsigned long long>(suppressed));
  }
}

void Source::handle_line(std::string_view line) {
  ++line_no_;
  lines_->inc();
  Quote* q = slot();
  FieldSet present = 0;
  Reject reason = Reject::parse_error;
  switch (parser_.parse(line, q, &present, &reason, &detail_)) {
    case LineKind::skipped: return;
    case LineKind::rejected: reject(reason, detail_, line); return;
    case LineKind::tick: break;
  }
  int64_t now = wall_ns();
  if (!validate_tick(q, present, now, ctx_.limits, &reason, &detail_)) {
    reject(reason, detail_, line);
    return;
  }
  q->mutate_receive_ts_ns(now);
  commit_slot();
}

void Source::feed(const char* data, size_t n, bool eof) {
  const char* p = data;
  const char* end = data + n;
  while (p < end) {
    const char* nl = static_cast<const char*>(std::memchr(p, '\n', static_cast<size_t>(end - p)));
    const char* stop = nl ? nl : end;
    size_t len = static_cast<size_t>(stop - p);
    if (skipping_long_) {
      // The tail of a line already refused as too long.
      if (nl) skipping_long_ = false;
    } else if (carry_.size() + len > kMaxLine) {
      ++line_no_;
      lines_->inc();
      reject(Reject::line_too_long, "over " + std::to_string(kMaxLine) + " bytes", std::string_view(carry_));
      carry_.clear();
      skipping_long_ = nl == nullptr;
    } else if (nl == nullptr) {
      carry_.append(p, len);  // incomplete: wait for the rest
    } else if (carry_.empty()) {
      handle_line(std::string_view(p, len));  // the common case: no copy
    } else {
      carry_.append(p, len);
      handle_line(carry_);
      carry_.clear();
    }
    p = nl ? nl + 1 : end;
  }
  if (eof && !carry_.empty()) {
    handle_line(carry_);
    carry_.clear();
  }
  if (eof) skipping_long_ = false;
  flush();
}

void Source::discard_partial(const char* why) {
  if (carry_.empty()) return;
  ++line_no_;
  lines_->inc();
  reject(Reject::parse_error, std::string("partial line dropped: ") + why, carry_);
  carry_.clear();
}

std::unique_ptr<Source> make_source(const SourceSpec& spec, const SourceContext& ctx, int index) {
  switch (spec.kind) {
    case SourceKind::file:
    case SourceKind::stdin_: return make_file_source(spec, ctx, index);
    case SourceKind::tcp: return make_tcp_source(spec, ctx, index);
    case SourceKind::synthetic: return make_synthetic_source(spec, ctx, index);
  }
  return nullptr;
}

}  // namespace tickfan::apiserver
