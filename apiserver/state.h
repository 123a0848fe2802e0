// state.h — last-value state: the latest published quote of every symbol,
// which snapshot replies are made of, and its persistence across restarts.
//
// LastValues lives in the core thread and is updated exactly when a batch is
// given its sequence number, so "state" and "sequences published" never
// disagree (the snapshot consistency argument in docs/protocol.md).
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

class LastValues {
 public:
  void set(uint32_t id, const Quote& q) {
    if (id >= values_.size()) {
      values_.resize(id + 1);
      has_.resize(id + 1, 0);
      dirty_flag_.resize(id + 1, 0);
    }
    values_[id] = q;
    has_[id] = 1;
    if (!dirty_flag_[id]) {
      dirty_flag_[id] = 1;
      dirty_.push_back(id);
    }
  }
  bool has(uint32_t id) const { return id < has_.size() && has_[id]; }
  const Quote& get(uint32_t id) const { return values_[id]; }
  uint32_t capacity() const { return static_cast<uint32_t>(values_.size()); }
  size_t count() const {
    size_t n = 0;
    for (uint8_t h : has_) n += h;
    return n;
  }
  // Moves the quotes changed since the last call into *out.
  void take_dirty(std::vector<Quote>* out) {
    out->clear();
    for (uint32_t id : dirty_) {
      out->push_back(values_[id]);
      dirty_flag_[id] = 0;
    }
    dirty_.clear();
  }

 private:
  std::vector<Quote> values_;
  std::vector<uint8_t> has_, dirty_flag_;
  std::vector<uint32_t> dirty_;
};

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
