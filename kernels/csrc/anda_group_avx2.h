// AVX2 pieces shared by the compressor (anda_pack_avx2.cpp) and the fused quantizer
// (anda_quant.cpp): loading one 64-group of fp16 bits and its shared exponent.
// Invariant: group_exponent_avx2 returns max(1, max exponent field) over the 64 lanes, the same
// E as the scalar rule, and reports whether any lane has the Inf/NaN exponent field 31.
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

namespace anda {

#define ANDA_AVX2 __attribute__((target("avx2,fma")))

// Loads the 64 fp16 bit patterns of a group into H[0..3]; a short group (n < 64) is zero padded
// (exponent field 0, counted as 1; magnitude 0; sign 0) through the caller's 64-lane buffer.
ANDA_AVX2 static inline void load_group_avx2(const uint16_t* h, int n, uint16_t* buf, __m256i H[4]) {
  if (n < 64) {
    std::memset(buf, 0, 64 * sizeof(uint16_t));
    std::memcpy(buf, h, (size_t)n * 2);
    h = buf;
  }
  for (int i = 0; i < 4; ++i) H[i] = _mm256_loadu_si256((const __m256i*)(h + 16 * i));
}

// Shared exponent E of the group (exponent fields of 0 count as 1); *bad = any field is 31.
ANDA_AVX2 static inline int group_exponent_avx2(const __m256i H[4], bool* bad) {
  const __m256i f31 = _mm256_set1_epi16(31);
  __m256i emax = _mm256_set1_epi16(1), is31 = _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) {
    const __m256i e = _mm256_and_si256(_mm256_srli_epi16(H[i], 10), f31);
    emax = _mm256_max_epu16(emax, e);
    is31 = _mm256_or_si256(is31, _mm256_cmpeq_epi16(e, f31));
  }
  __m128i x = _mm_max_epu16(_mm256_castsi256_si128(emax), _mm256_extracti128_si256(emax, 1));
  x = _mm_max_epu16(x, _mm_srli_si128(x, 8));
  x = _mm_max_epu16(x, _mm_srli_si128(x, 4));
  x = _mm_max_epu16(x, _mm_srli_si128(x, 2));
  *bad = _mm256_movemask_epi8(is31) != 0;
  return _mm_extract_epi16(x, 0);
}

}  // namespace anda
