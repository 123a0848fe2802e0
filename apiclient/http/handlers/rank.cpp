// handlers/rank.cpp — GET /v1/rank?by=&order=&limit=&offset=&market=. Served
// from the worker's RankCache (rank_cache.h): at most one snapshot per store
// commit and per --rank-interval-ms, orderings sorted once per snapshot, so a
// request costs a walk over `limit` indexes. The body's commit/age describe
// the snapshot the ranking was computed from.
#include "clock.h"
#include "handlers.h"

namespace tickfan::http {

void handle_rank(Worker& w, const Request& req, Reply& rep, Buffer& out) {
  size_t start = out.size();
  if (!w.reader) return error_reply(rep, out, start, 503, "store not available (writer not started yet?)");
  RankKey key = RankKey::change_pct;
  bool asc = false;
  uint64_t limit = 20, offset = 0;
  int market = 0;
  const char* market_name = nullptr;
  std::string_view q = req.query;
  QueryParam p;
  static constexpr std::string_view kParams[] = {"by", "order", "limit", "offset", "market"};
  OnceParams params(kParams);
  std::string decoded;
  while (next_param(&q, &p)) {
    bool repeated = false;
    if (params.index(p.key, &repeated) < 0) continue;
    if (repeated) return error_reply(rep, out, start, 400, "repeated query parameter: ", p.key);
    // Values are percent-decoded like symbols (RFC 3986 §2.1: "change%5Fpct"
    // is "change_pct").
    if (!percent_decode(p.value, &decoded))
      return error_reply(rep, out, start, 400, "malformed percent-escape in ", p.key);
    p.value = decoded;
    if (p.key == "by") {
      if (!rank_key_from_name(p.value, &key))
        return error_reply(rep, out, start, 400, "by must be change_pct|volume|turnover|price|amplitude, not ",
                           p.value);
    } else if (p.key == "order") {
      if (p.value == "asc") {
        asc = true;
      } else if (p.value != "desc") {
        return error_reply(rep, out, start, 400, "order must be desc|asc, not ", p.value);
      }
    } else if (p.key == "limit") {
      if (!parse_uint(p.value, w.opts.max_rank_limit, &limit) || limit == 0)
        return error_reply(rep, out, start, 400, "limit must be 1..", std::to_string(w.opts.max_rank_limit));
    } else if (p.key == "offset") {
      if (!parse_uint(p.value, 1000000, &offset)) return error_reply(rep, out, start, 400, "offset must be 0..1000000");
    } else if (p.key == "market") {
      Market m = market_from_code(p.value);
      if (m == Market::Unknown)
        return error_reply(rep, out, start, 400, "market must be sh|sz|bj|hk|us, not ", p.value);
      market = static_cast<int>(m);
      market_name = market_code(m);
    }
  }
  // While rankings are in steady use the worker's ranking timer refreshes
  // the snapshot every --rank-interval-ms (server.cpp); a request refreshes
  // it itself only after a quiet spell, or if the timer fell behind.
  int64_t now = mono_ns();
  bool warm = w.rankings_in_use(now);
  w.rank_wanted_ns = now;
  w.rank.refresh(*w.reader, w.state.commit_count, w.state.commit_ns, now,
                 warm ? 2 * w.opts.rank_interval_ms : w.opts.rank_interval_ms, w.metrics.rank_recomputes);
  set_data_reply(w, rep, w.rank.commit(), w.rank.commit_ns());
  // The representation depends only on the snapshot and the query, so the
  // snapshot's commit is a valid validator (RFC 9110 §8.8.3).
  if (!begin_data_body(req, rep, out)) return;
  const std::vector<uint32_t>& order = w.rank.order(key, market, asc);
  out.append("\"by\":\"");
  out.append(rank_key_name(key));
  out.append(asc ? "\",\"order\":\"asc\",\"market\":" : "\",\"order\":\"desc\",\"market\":");
  if (market == 0) {
    out.append("null");
  } else {
    out.push('"');
    out.append(market_name);
    out.push('"');
  }
  out.append(",\"total\":");
  out.append_uint(order.size());
  out.append(",\"offset\":");
  out.append_uint(offset);
  out.append(",\"data\":[");
  size_t n = order.size();
  for (uint64_t i = offset; i < offset + limit && i < n; ++i) {
    uint32_t idx = order[i];
    if (i != offset) out.push(',');
    out.append(w.rank.json(idx));
  }
  out.append("]}");
}

}  // namespace tickfan::http
