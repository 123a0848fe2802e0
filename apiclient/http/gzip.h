// gzip.h — one-shot gzip of a whole response body with libdeflate: bodies are
// complete in memory before they are sent, so a streaming deflate (zlib) buys
// nothing and libdeflate is several times faster at the same ratio.
#pragma once
#include <cstddef>
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

 private:
  libdeflate_compressor* c_;
};

}  // namespace tickfan::http
