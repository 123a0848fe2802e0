// queue.h — hands NATS messages and connection events from the library's
// threads to the one apply thread, which alone touches the store.
//
// Why a queue and not work in the callbacks: NATS runs each subscription's
// callbacks and its connection callbacks on different library threads, and
// the store has exactly one writer thread. The queue keeps arrival order
// across the delta and reply subscriptions and the events (a "reconnected"
// must be seen after the messages that preceded it).
//
// Bounded by message count and bytes (the daemon's pending limits): past the
// limit a message is dropped and `lost` is raised, which the apply thread
// turns into a resync — the same handling as a NATS slow-consumer drop.
// The consumer takes everything queued in one swap, so the lock is taken once
// per wake-up, not once per message; producers only signal a consumer that is
// actually asleep.
#pragma once
#include <nats/nats.h>

#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <vector>

#include "clock.h"

namespace tickfan::apiclient {

enum class ItemKind : uint8_t { delta, reply, disconnected, reconnected, slow_consumer };

struct Item {
  ItemKind kind;
  natsMsg* msg;       // delta/reply: owned by the item's holder until natsMsg_Destroy
  int64_t queued_ns;  // monotonic, when the library handed it over (hand-off delay metric)
};

class MsgQueue {
 public:
  MsgQueue(size_t max_msgs, size_t max_bytes) : max_msgs_(max_msgs), max_bytes_(max_bytes) {}
  ~MsgQueue() {
    for (Item& it : items_)
      if (it.msg) natsMsg_Destroy(it.msg);
  }

  // From library threads. Takes ownership of msg (destroys it when dropped).
  void push_msg(ItemKind kind, natsMsg* msg) {
    size_t size = static_cast<size_t>(natsMsg_GetDataLength(msg));
    int64_t now = mono_ns();
    std::unique_lock<std::mutex> lock(mu_);
    if (items_.size() >= max_msgs_ || bytes_ + size > max_bytes_) {
      lost_ = true;
      ++dropped_;
      lock.unlock();
      natsMsg_Destroy(msg);
      return;
    }
    bytes_ += size;
    items_.push_back({kind, msg, now});
    if (waiting_) cv_.notify_one();
  }
  void push_event(ItemKind kind) {
    std::lock_guard<std::mutex> lock(mu_);
    items_.push_back({kind, nullptr, 0});
    if (waiting_) cv_.notify_one();
  }
  void wake() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }

  // From the apply thread: swaps everything queued into `out` (emptied first),
  // waiting up to timeout_ns when nothing is queued. *lost is set when messages
  // were dropped since the last call. Returns false once wake() was called.
  bool pop_all(std::vector<Item>& out, int64_t timeout_ns, bool* lost, uint64_t* dropped_total) {
    out.clear();
    std::unique_lock<std::mutex> lock(mu_);
    if (items_.empty() && !stop_) {
      waiting_ = true;
      cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [&] { return !items_.empty() || stop_; });
      waiting_ = false;
    }
    out.swap(items_);
    bytes_ = 0;
    *lost = lost_;
    lost_ = false;
    *dropped_total = dropped_;
    return !stop_;
  }

 private:
  const size_t max_msgs_, max_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Item> items_;
  size_t bytes_ = 0;
  bool waiting_ = false, lost_ = false, stop_ = false;
  uint64_t dropped_ = 0;
};

}  // namespace tickfan::apiclient
