// AVX2 compressor (anda_pack) for one 64-group, bit-identical to pack_group_scalar:
//  * exponent field max over the group (fields of 0 count as 1) and the Inf/NaN check on 16-bit
//    lanes;
//  * magnitudes m = (mant << 5) >> (E - e' + 16 - M) on 32-bit lanes (vpsrlvd gives 0 for
//    shifts >= 32, exactly the scalar rule), with the round-half-up + saturate of "nearest";
//  * bit-plane transposition: m is narrowed to low/high bytes in element order; for bit b,
//    shifting each 16-bit lane left by 7 - (b & 7) puts bit b of every byte in its top bit and
//    _mm256_movemask_epi8 gathers 32 elements' bits at a time (two per 64-bit plane word).
#include <immintrin.h>

#include <cstring>

#include "anda_group_avx2.h"
#include "anda_kern.h"

namespace anda {

// 16-bit lanes of a, b (16 each, 0..255) -> 32 bytes in element order (a's then b's).
ANDA_AVX2 static inline __m256i narrow16(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_packus_epi16(a, b), 0xD8);
}
// 16-bit lanes of a, b in -1..0 -> 32 bytes 0xFF/0x00 in element order (signed saturation).
ANDA_AVX2 static inline __m256i narrow_mask16(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8);
}

ANDA_AVX2 bool pack_group_avx2(const uint16_t* h, int n, int M, bool nearest, int64_t* out,
                               uint8_t* e_out) {
  alignas(32) uint16_t buf[64];
  __m256i H[4];
  load_group_avx2(h, n, buf, H);
  bool bad;
  const int E = group_exponent_avx2(H, &bad);

  // sign word: top bit of every 16-bit lane
  const uint32_t s_lo = (uint32_t)_mm256_movemask_epi8(
      narrow_mask16(_mm256_srai_epi16(H[0], 15), _mm256_srai_epi16(H[1], 15)));
  const uint32_t s_hi = (uint32_t)_mm256_movemask_epi8(
      narrow_mask16(_mm256_srai_epi16(H[2], 15), _mm256_srai_epi16(H[3], 15)));
  out[0] = (int64_t)((uint64_t)s_lo | ((uint64_t)s_hi << 32));

  __m256i m16[4];  // magnitudes as u16, elements 16i..16i+15
  group_magnitudes_avx2(H, E, M, nearest, m16);
  const __m256i lowb = _mm256_set1_epi16(0xFF);
  __m256i lo[2], hi[2];
  for (int j = 0; j < 2; ++j) {
    lo[j] = narrow16(_mm256_and_si256(m16[2 * j], lowb), _mm256_and_si256(m16[2 * j + 1], lowb));
    if (M > 8)
      hi[j] = narrow16(_mm256_srli_epi16(m16[2 * j], 8), _mm256_srli_epi16(m16[2 * j + 1], 8));
  }
  for (int p = 0; p < M; ++p) {
    const int b = M - 1 - p;
    const __m256i* src = b >= 8 ? hi : lo;
    const __m128i sh = _mm_cvtsi32_si128(7 - (b & 7));
    const uint32_t w0 = (uint32_t)_mm256_movemask_epi8(_mm256_sll_epi16(src[0], sh));
    const uint32_t w1 = (uint32_t)_mm256_movemask_epi8(_mm256_sll_epi16(src[1], sh));
    out[1 + p] = (int64_t)((uint64_t)w0 | ((uint64_t)w1 << 32));
  }
  *e_out = (uint8_t)E;
  return bad;
}

}  // namespace anda
