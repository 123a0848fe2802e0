// gzip.h — one-shot gzip of a whole response body with libdeflate: bodies are
// complete in memory before they are sent, so a streaming deflate (zlib) buys
// nothing and libdeflate is several times faster at the same ratio.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

struct libdeflate_compressor;

namespace tickfan::http {

class Gzip {
 public:
  explicit Gzip(int level);
  ~Gzip();
  Gzip(const Gzip&) = delete;
  Gzip& operator=(const Gzip&) = delete;
  // Compresses [in, in+n) into *out (resized to the result). Returns false
  // when compression fails or would not shrink the body (send it plain).
  bool compress(const char* in, size_t n, std::string* out);
  // The same as a raw deflate stream (RFC 1951), for BodyCache: a cached
  // list body is compressed once and each response wraps it (gzip_head,
  // a stored block with the per-response prefix, the stream, the trailer).
  bool deflate(const char* in, size_t n, std::string* out);

  static constexpr size_t kHeadLen = 10 + 5;  // gzip header + stored-block header
  // Writes the gzip header and the header of a non-final stored deflate
  // block of `stored_len` (<= 65535) bytes that follow it.
  static void head(char* out, size_t stored_len);
  static uint32_t crc32(uint32_t crc, const void* p, size_t n);
  // CRC-32 of A||B from crc32(A), crc32(B) and B's length (zlib's method).
  static uint32_t crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b);

 private:
  libdeflate_compressor* c_;
};

}  // namespace tickfan::http
