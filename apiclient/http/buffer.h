// buffer.h — a growable byte buffer that, unlike std::string, does not zero
// the space it hands out: records are copied from the store straight into
// reserved tail space (tail(n) then commit(len)), so the body of a 500-symbol
// response is written exactly once before it goes to the socket.
#pragma once
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string_view>

namespace tickfan::http {

class Buffer {
 public:
  Buffer() = default;
  ~Buffer() { std::free(data_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : data_(o.data_), size_(o.size_), cap_(o.cap_) {
    o.data_ = nullptr, o.size_ = o.cap_ = 0;
  }
  void swap(Buffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
    std::swap(cap_, o.cap_);
  }

  char* data() { return data_; }
  const char* data() const { return data_; }
  size_t size() const { return size_; }
  size_t capacity() const { return cap_; }
  bool empty() const { return size_ == 0; }
  void clear() { size_ = 0; }
  void resize(size_t n) {
    reserve(n);
    size_ = n;
  }
  // Returns room for n more bytes at the end; commit(k<=n) keeps k of them.
  char* tail(size_t n) {
    reserve(size_ + n);
    return data_ + size_;
  }
  void commit(size_t n) { size_ += n; }
  void append(const char* p, size_t n) {
    if (n == 0) return;  // p may be null (an empty Buffer's data())
    std::memcpy(tail(n), p, n);
    size_ += n;
  }
  void append(std::string_view s) { append(s.data(), s.size()); }
  // Like append, but an empty buffer allocates exactly n bytes (a stash
  // kept by thousands of waiting connections should not round up to 8 KB).
  void append_exact(const char* p, size_t n) {
    if (n && !data_) {
      data_ = static_cast<char*>(std::malloc(n));
      if (!data_) throw std::bad_alloc();
      cap_ = n;
    }
    append(p, n);
  }
  // Like append, but grows to exactly the size needed.
  void append_grow_exact(const char* p, size_t n) {
    reserve_exact(size_ + n);
    append(p, n);
  }
  void push(char c) {
    *tail(1) = c;
    ++size_;
  }
  void append_uint(unsigned long long v) {
    char tmp[24];
    int n = 0;
    do {
      tmp[n++] = static_cast<char>('0' + v % 10);
      v /= 10;
    } while (v);
    char* p = tail(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) p[i] = tmp[n - 1 - i];
    size_ += static_cast<size_t>(n);
  }
  void append_int(long long v) {
    if (v < 0) {
      push('-');
      append_uint(static_cast<unsigned long long>(-(v + 1)) + 1);
    } else {
      append_uint(static_cast<unsigned long long>(v));
    }
  }
  // Frees the memory if it grew beyond `keep` (idle connections stay small).
  void shrink(size_t keep) {
    if (cap_ > keep && size_ == 0) {
      std::free(data_);
      data_ = nullptr;
      cap_ = 0;
    }
  }
  // Capacity exactly n if it must grow (no doubling).
  void reserve_exact(size_t n) {
    if (n <= cap_) return;
    void* p = std::realloc(data_, n);
    if (!p) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
    cap_ = n;
  }
  void reserve(size_t n) {
    if (n <= cap_) return;
    size_t c = cap_ ? cap_ : 4096;
    while (c < n) c *= 2;
    void* p = std::realloc(data_, c);
    if (!p) throw std::bad_alloc();
    data_ = static_cast<char*>(p);
    cap_ = c;
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  size_t cap_ = 0;
};

}  // namespace tickfan::http
