// handlers/health.cpp — /healthz (this process answers), /readyz (this box
// should get traffic: store open, writer alive, data fresh) and /metrics
// (Prometheus text exposition 0.0.4 of this worker's registry).
#include <unistd.h>

#include "handlers.h"
#include "store.h"

namespace tickfan::http {

void handle_healthz(Worker& w, const Request&, Reply& rep, Buffer& out) {
  out.append("{\"status\":\"ok\",\"worker\":");
  out.append_uint(static_cast<unsigned>(w.index));
  out.append(",\"pid\":");
  out.append_uint(static_cast<unsigned>(getpid()));
  out.push('}');
  (void)rep;
}

void handle_readyz(Worker& w, const Request&, Reply& rep, Buffer& out) {
  size_t start = out.size();
  if (!w.reader) return error_reply(rep, out, start, 503, "not ready: store not available");
  set_data_reply(w, rep, w.state.commit_count, w.state.commit_ns);
  rep.etag[0] = '\0';
  // Ask the lock directly (cached by the reader for 100 ms), not the copy
  // taken at the start of this tick, so a dead writer shows at once.
  bool alive = w.reader->writer_alive();
  const char* problem = nullptr;
  if (!alive) {
    problem = "writer not running";
  } else if (rep.age_ms < 0) {
    problem = "no data committed yet";
  } else if (rep.age_ms > w.opts.ready_max_age_ms) {
    problem = "data older than --ready-max-age-ms";
  }
  out.append(problem ? "{\"status\":\"not_ready\",\"reason\":\"" : "{\"status\":\"ready\",\"reason\":\"");
  if (problem) out.append(problem);
  out.append("\",\"writer_alive\":");
  out.append(alive ? "true" : "false");
  out.append(",\"sync_state\":\"");
  out.append(shm::sync_state_name(w.state.sync_state));
  out.append("\",\"age_ms\":");
  out.append_int(rep.age_ms);
  out.append(",\"max_age_ms\":");
  out.append_int(w.opts.ready_max_age_ms);
  out.append(",\"commit\":");
  out.append_uint(w.state.commit_count);
  out.push('}');
  if (problem) rep.status = 503;
}

void handle_metrics(Worker& w, const Request&, Reply& rep, Buffer& out) {
  std::string text = w.metrics.registry.render();
  out.append(text);
  rep.content_type = "text/plain; version=0.0.4; charset=utf-8";
  rep.compressible = true;
}

}  // namespace tickfan::http
