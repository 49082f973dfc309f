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

// Magnitudes of the 64 elements as u16 lanes (m16[i] = elements 16i..16i+15), bit-identical to
// pack_group_scalar: m = (mant << 5) >> (E - e' + 16 - M) on 32-bit lanes (vpsrlvd gives 0 for
// shifts >= 32, exactly the scalar rule), with the round-half-up + saturate of "nearest".
ANDA_AVX2 static inline void group_magnitudes_avx2(const __m256i H[4], int E, int M, bool nearest,
                                                   __m256i m16[4]) {
  const __m256i base = _mm256_set1_epi32(E + 16 - M);  // s = base - e'
  const __m256i m10 = _mm256_set1_epi32(0x3FF), hid = _mm256_set1_epi32(0x400);
  const __m256i f31d = _mm256_set1_epi32(31), one = _mm256_set1_epi32(1);
  const __m256i mmax = _mm256_set1_epi32((1 << M) - 1), zero = _mm256_setzero_si256();
  for (int i = 0; i < 4; ++i) {
    __m256i m32[2];
    for (int hh = 0; hh < 2; ++hh) {
      const __m256i q = _mm256_cvtepu16_epi32(hh ? _mm256_extracti128_si256(H[i], 1)
                                                 : _mm256_castsi256_si128(H[i]));
      const __m256i e = _mm256_and_si256(_mm256_srli_epi32(q, 10), f31d);
      const __m256i ez = _mm256_cmpeq_epi32(e, zero);
      const __m256i mant = _mm256_or_si256(_mm256_and_si256(q, m10), _mm256_andnot_si256(ez, hid));
      const __m256i s = _mm256_sub_epi32(base, _mm256_max_epu32(e, one));
      const __m256i v = _mm256_slli_epi32(mant, 5);
      if (!nearest) {
        m32[hh] = _mm256_srlv_epi32(v, s);
      } else {
        const __m256i rnd = _mm256_srli_epi32(_mm256_sllv_epi32(one, s), 1);  // 0 for s = 0, >= 32
        m32[hh] = _mm256_min_epu32(_mm256_srlv_epi32(_mm256_add_epi32(v, rnd), s), mmax);
      }
    }
    m16[i] = _mm256_permute4x64_epi64(_mm256_packus_epi32(m32[0], m32[1]), 0xD8);  // element order
  }
}

}  // namespace anda
