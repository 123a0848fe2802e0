// state.h — persistence of the last-value state across apiserver restarts.
// The state itself is the arbiter's table of last accepted quotes
// (arbiter.h); the snapshot consistency argument is in docs/protocol.md.
//
// Persistence is optional (--state-file): a StatePersister thread writes the
// symbols changed since its last pass (coalesced, at most every
// --state-interval-ms) so the hot path never waits on it. On start the saved
// quotes seed both LastValues and the arbiter (stale ticks stay stale).
#pragma once
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "quote.h"

namespace tickfan::apiserver {

// Where saved state goes. load() runs once before anything else; save() runs
// on the persister thread only.
class StateBackend {
 public:
  virtual ~StateBackend() = default;
  virtual std::vector<Quote> load() = 0;
  virtual bool save(std::span<const Quote> changed, uint64_t epoch, uint64_t sequence) = 0;
};

// Opens the backend for --state-file PATH; throws std::runtime_error with a
// message naming the path when it cannot (store locked by another process,
// wrong version, no shm support in this build...).
std::unique_ptr<StateBackend> open_state_backend(const std::string& path);

// Runs StateBackend::save on its own thread.
class StatePersister {
 public:
  explicit StatePersister(std::unique_ptr<StateBackend> backend);
  ~StatePersister();
  // Hands over changed quotes (swapped out of *changed); never blocks on I/O.
  void submit(std::vector<Quote>* changed, uint64_t epoch, uint64_t sequence);
  // Waits until everything submitted is saved (shutdown).
  void drain();

 private:
  void run();
  std::unique_ptr<StateBackend> backend_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Quote> pending_;
  uint64_t epoch_ = 0, sequence_ = 0;
  bool busy_ = false, stop_ = false;
  std::thread thread_;
};

}  // namespace tickfan::apiserver
