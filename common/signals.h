// signals.h — how tickfan's daemons take SIGINT/SIGTERM: blocked in every
// thread (threads started later inherit the mask) and taken by one thread
// with sigwait, so no handler ever runs at an arbitrary instruction inside
// the NATS library or a store update. SIGPIPE is ignored: a dead peer is an
// error code, never a death.
#pragma once
#include <pthread.h>
#include <signal.h>

namespace tickfan {

// Call first thing in main(), before any thread starts; returns the set to
// pass to sigwait().
inline sigset_t block_stop_signals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return set;
}

}  // namespace tickfan
