// ring.h — the hand-off between a source thread and the core (publisher)
// thread: one single-producer/single-consumer ring of Quote slots per source,
// plus a doorbell the core sleeps on when every ring is empty.
//
// Why SPSC rings: each source has exactly one thread, the core exactly one, so
// no CAS is needed; the producer parses straight into a slot (no extra copy)
// and publishes a whole read() chunk with one release store, the consumer
// takes everything visible with one acquire load. A full ring blocks its
// producer (back-pressure to the file/TCP peer) instead of dropping ticks.
//
// Memory ordering: the producer writes slots, then head_.store(release); the
// consumer head_.load(acquire) makes those slot writes visible, reads them,
// then tail_.store(release) hands the slots back; the producer's
// tail_.load(acquire) orders its later overwrite after the consumer's reads.
#pragma once
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "quote.h"

namespace tickfan::apiserver {

// Wakes the core thread. Producers ring only when the core announced it is
// about to sleep, so the busy path costs one relaxed-ish load per publish.
class Doorbell {
 public:
  void ring() {
    // seq_cst pairs with the store in wait_for(): either the core sees the
    // producer's head update in its final check, or the producer sees
    // sleeping_ == true here and notifies (Dekker-style; no lost wake-up).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (sleeping_.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> lock(mu_);
      rung_ = true;
      cv_.notify_one();
    }
  }
  // Sleeps up to `timeout` unless `has_work()` (re-checked after announcing
  // sleep) or a ring() arrives.
  template <typename Pred>
  void wait_for(std::chrono::nanoseconds timeout, Pred has_work) {
    std::unique_lock<std::mutex> lock(mu_);
    sleeping_.store(true, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!rung_ && !has_work()) cv_.wait_for(lock, timeout, [&] { return rung_; });
    rung_ = false;
    sleeping_.store(false, std::memory_order_relaxed);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool rung_ = false;
  std::atomic<bool> sleeping_{false};
};

class QuoteRing {
 public:
  explicit QuoteRing(uint32_t capacity_pow2) : slots_(new Quote[capacity_pow2]), mask_(capacity_pow2 - 1) {}

  // --- producer side (one thread) ---
  // Next free slot, or nullptr when the ring is full (publish() first, then
  // wait for the consumer).
  Quote* claim() {
    if (local_head_ - cached_tail_ > mask_) {
      cached_tail_ = tail_.load(std::memory_order_acquire);
      if (local_head_ - cached_tail_ > mask_) return nullptr;
    }
    return &slots_[local_head_ & mask_];
  }
  void commit() { ++local_head_; }
  // Makes every committed slot visible to the consumer; true if any were new.
  bool publish() {
    if (local_head_ == published_) return false;
    head_.store(local_head_, std::memory_order_release);
    published_ = local_head_;
    return true;
  }
  uint64_t unpublished() const { return local_head_ - published_; }

  // --- consumer side (the core thread) ---
  uint64_t available() {
    cached_head_ = head_.load(std::memory_order_acquire);
    return cached_head_ - consumer_tail_;
  }
  bool empty() const { return head_.load(std::memory_order_acquire) == tail_.load(std::memory_order_relaxed); }
  const Quote& at(uint64_t i) const { return slots_[(consumer_tail_ + i) & mask_]; }
  void release(uint64_t n) {
    consumer_tail_ += n;
    tail_.store(consumer_tail_, std::memory_order_release);
  }
  // Total ticks ever published / consumed (for shutdown accounting).
  uint64_t produced() const { return head_.load(std::memory_order_acquire); }
  uint64_t consumed() const { return tail_.load(std::memory_order_acquire); }

 private:
  std::unique_ptr<Quote[]> slots_;
  uint64_t mask_;
  // Producer-owned.
  alignas(64) std::atomic<uint64_t> head_{0};
  uint64_t local_head_ = 0, published_ = 0, cached_tail_ = 0;
  // Consumer-owned.
  alignas(64) std::atomic<uint64_t> tail_{0};
  uint64_t consumer_tail_ = 0, cached_head_ = 0;
};

}  // namespace tickfan::apiserver
