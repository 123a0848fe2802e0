// supervisor.h — the parent process: forks N workers, restarts any that dies
// (logged, with a back-off when one keeps dying), forwards SIGTERM/SIGINT and
// exits when they are gone. Workers hold all the sockets; the parent only
// watches, so a crash in request handling never takes the port down.
#pragma once
#include "options.h"

namespace tickfan::http {

int run_supervisor(const Options& opts);

}  // namespace tickfan::http
