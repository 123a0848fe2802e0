// main.cpp — tickfan-http: parse flags (and --config), then hand over to the
// supervisor, which forks the workers. See docs/http.md.
#include <csignal>
#include <cstdio>

#include "log.h"
#include "options.h"
#include "supervisor.h"

int main(int argc, char** argv) {
  tickfan::http::Options opts;
  int rc = tickfan::http::parse_options(argc, argv, &opts);
  if (rc >= 0) return rc;
  tickfan::LogLevel level;
  if (!tickfan::log_parse_level(opts.log_level.c_str(), &level)) {
    fprintf(stderr, "tickfan-http: --log-level must be debug|info|warn|error, not %s\n", opts.log_level.c_str());
    return 2;
  }
  tickfan::log_set_level(level);
  signal(SIGPIPE, SIG_IGN);  // a client gone mid-write is an error code, not a death
  return tickfan::http::run_supervisor(opts);
}
