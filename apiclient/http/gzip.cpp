// gzip.cpp — see gzip.h.
#include "gzip.h"

#include <libdeflate.h>

#include <cstring>
#include <stdexcept>

namespace tickfan::http {

Gzip::Gzip(int level) : c_(libdeflate_alloc_compressor(level)) {
  if (!c_) throw std::runtime_error("libdeflate_alloc_compressor failed");
}
Gzip::~Gzip() { libdeflate_free_compressor(c_); }

namespace {
// One-shot compression into *out with libdeflate's matching bound/compress
// pair (raw deflate or gzip); false when it fails or would not shrink `in`.
template <auto Bound, auto Compress>
bool compress_with(libdeflate_compressor* c, const char* in, size_t n, std::string* out) {
  size_t bound = Bound(c, n);
  if (out->size() < bound) out->resize(bound);
  size_t got = Compress(c, in, n, out->data(), bound);
  if (got == 0 || got >= n) return false;
  out->resize(got);
  return true;
}
}  // namespace

bool Gzip::deflate(const char* in, size_t n, std::string* out) {
  return compress_with<libdeflate_deflate_compress_bound, libdeflate_deflate_compress>(c_, in, n, out);
}

void Gzip::head(char* out, size_t stored_len) {
  // ID1 ID2 CM=deflate FLG=0 MTIME=0 XFL=0 OS=unknown (RFC 1952 §2.3).
  const unsigned char h[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff};
  std::memcpy(out, h, sizeof h);
  // BFINAL=0 BTYPE=00 (stored), padded to the byte; LEN, NLEN (RFC 1951
  // §3.2.4). The block ends on a byte boundary, so the raw stream that
  // follows starts exactly where a next block may.
  auto len = static_cast<uint16_t>(stored_len);
  out[10] = 0;
  out[11] = static_cast<char>(len & 0xff);
  out[12] = static_cast<char>(len >> 8);
  out[13] = static_cast<char>(~len & 0xff);
  out[14] = static_cast<char>((~len >> 8) & 0xff);
}

uint32_t Gzip::crc32(uint32_t crc, const void* p, size_t n) { return libdeflate_crc32(crc, p, n); }

namespace {
constexpr uint32_t kPoly = 0xedb88320;  // reflected CRC-32
// a * b modulo the CRC polynomial (bit-reflected).
uint32_t multmodp(uint32_t a, uint32_t b) {
  uint32_t m = 1u << 31, p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) == 0) break;
    }
    m >>= 1;
    b = b & 1 ? (b >> 1) ^ kPoly : b >> 1;
  }
  return p;
}
}  // namespace

uint32_t Gzip::crc32_combine(uint32_t crc_a, uint32_t crc_b, uint64_t len_b) {
  // x^(8 * len_b) mod P by squaring: x^(2^k) for k = 3 (one byte) upwards.
  uint32_t x2k = 1u << 30;  // x^1
  for (int k = 0; k < 3; ++k) x2k = multmodp(x2k, x2k);
  uint32_t p = 1u << 31;  // x^0
  for (uint64_t n = len_b; n; n >>= 1) {
    if (n & 1) p = multmodp(x2k, p);
    x2k = multmodp(x2k, x2k);
  }
  return multmodp(p, crc_a) ^ crc_b;
}

bool Gzip::compress(const char* in, size_t n, std::string* out) {
  return compress_with<libdeflate_gzip_compress_bound, libdeflate_gzip_compress>(c_, in, n, out);
}

}  // namespace tickfan::http
