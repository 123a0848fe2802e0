// gzip.cpp — see gzip.h.
#include "gzip.h"

#include <libdeflate.h>

#include <stdexcept>

namespace tickfan::http {

Gzip::Gzip(int level) : c_(libdeflate_alloc_compressor(level)) {
  if (!c_) throw std::runtime_error("libdeflate_alloc_compressor failed");
}
Gzip::~Gzip() { libdeflate_free_compressor(c_); }

bool Gzip::compress(const char* in, size_t n, std::string* out) {
  size_t bound = libdeflate_gzip_compress_bound(c_, n);
  if (out->size() < bound) out->resize(bound);
  size_t got = libdeflate_gzip_compress(c_, in, n, out->data(), bound);
  if (got == 0 || got >= n) return false;
  out->resize(got);
  return true;
}

}  // namespace tickfan::http
