// Direct quantizer of the fused op: fp16 rows -> the GEMM activation layout of decode_act
// (A int8 [rows, G, C, 64] even k then odd k, S int32 [rows, G], U float [rows, G]) without the
// bit-plane words in between. Invariant: bit-identical to pack_rows followed by decode_act (the
// magnitude rule is that of pack_group_scalar: m = (mant << 5) >> (E - e' + 16 - M), with the
// round-half-up + saturate of "nearest"). The AVX2 version computes the same integers in lanes.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "anda_group_avx2.h"
#include "anda_kern.h"

namespace anda {

static inline int even_odd_pos(int j) { return (j & 1) ? 32 + (j >> 1) : (j >> 1); }

bool quantize_group_scalar(const uint16_t* h, int n, int M, bool nearest, int8_t* A, int32_t* S,
                           float* U) {
  int E = 1;
  bool bad = false;
  for (int j = 0; j < n; ++j) {
    const int e = (h[j] >> 10) & 31;
    bad |= (e == 31);
    E = e > E ? e : E;
  }
  const int C = gemm_chunks(M);
  const uint32_t mmax = (1u << M) - 1u;
  std::memset(A, 0, (size_t)C * 64);
  int32_t tot = 0;
  for (int j = 0; j < n; ++j) {
    const uint32_t hj = h[j];
    const uint32_t e = (hj >> 10) & 31u;
    const uint32_t mant = (hj & 0x3FFu) | (e ? 0x400u : 0u);
    const uint32_t s = (uint32_t)E - (e ? e : 1u) + 16u - (uint32_t)M;
    const uint32_t v = mant << 5;
    uint32_t m;
    if (!nearest) {
      m = s >= 32 ? 0u : (v >> s);
    } else {
      m = s == 0 ? v : (s >= 32 ? 0u : ((v + (1u << (s - 1))) >> s));
      m = m > mmax ? mmax : m;
    }
    const bool neg = (hj >> 15) != 0;
    tot += neg ? -(int32_t)m : (int32_t)m;
    const int pos = even_odd_pos(j);
    for (int c = 0; c < C; ++c) {
      const int chunk = (int)((m >> (7 * c)) & 127u);
      A[c * 64 + pos] = (int8_t)(neg ? -chunk : chunk);
    }
  }
  *S = tot;
  *U = unit_scale(E, M);
  return bad;
}

// 16-bit lanes of a, b (values -127..127) -> 32 int8 in element order.
ANDA_AVX2 static inline __m256i narrow_s16(__m256i a, __m256i b) {
  return _mm256_permute4x64_epi64(_mm256_packs_epi16(a, b), 0xD8);
}

ANDA_AVX2 bool quantize_group_avx2(const uint16_t* h, int n, int M, bool nearest, int8_t* A,
                                   int32_t* S, float* U) {
  alignas(32) uint16_t buf[64];
  __m256i H[4];
  load_group_avx2(h, n, buf, H);
  bool bad;
  const int E = group_exponent_avx2(H, &bad);

  // even/odd split inside each 128-bit lane of a 32-byte vector: [e0..e7 o0..o7] per lane
  const __m256i eo = _mm256_setr_epi8(0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15,
                                      0, 2, 4, 6, 8, 10, 12, 14, 1, 3, 5, 7, 9, 11, 13, 15);
  const __m256i ones16 = _mm256_set1_epi16(1), c127 = _mm256_set1_epi16(127);
  const int C = gemm_chunks(M);
  __m256i m16[4];  // magnitudes as u16, elements 16i..16i+15
  group_magnitudes_avx2(H, E, M, nearest, m16);
  __m256i ssum = _mm256_setzero_si256();
  for (int c = 0; c < C; ++c) {
    __m256i ch[4];
    for (int i = 0; i < 4; ++i) {
      // chunk c of the magnitude, signed like the element (H < 0: negative; H == 0: m == 0)
      const __m256i u = _mm256_and_si256(_mm256_srli_epi16(m16[i], 7 * c), c127);
      ch[i] = _mm256_sign_epi16(u, _mm256_or_si256(H[i], ones16));
      ssum = _mm256_add_epi32(ssum, _mm256_slli_epi32(_mm256_madd_epi16(ch[i], ones16), 7 * c));
    }
    const __m256i v0 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(narrow_s16(ch[0], ch[1]), eo), 0xD8);
    const __m256i v1 = _mm256_permute4x64_epi64(_mm256_shuffle_epi8(narrow_s16(ch[2], ch[3]), eo), 0xD8);
    _mm256_storeu_si256((__m256i*)(A + c * 64), _mm256_permute2x128_si256(v0, v1, 0x20));
    _mm256_storeu_si256((__m256i*)(A + c * 64 + 32), _mm256_permute2x128_si256(v0, v1, 0x31));
  }
  __m128i s4 = _mm_add_epi32(_mm256_castsi256_si128(ssum), _mm256_extracti128_si256(ssum, 1));
  s4 = _mm_add_epi32(s4, _mm_srli_si128(s4, 8));
  s4 = _mm_add_epi32(s4, _mm_srli_si128(s4, 4));
  *S = _mm_cvtsi128_si32(s4);
  *U = unit_scale(E, M);
  return bad;
}

#define ANDA_AVX512Q __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl")))

// The same integers on 32 u16 lanes per register (AVX-512 BW): v = mant << 5 fits 16 bits,
// so m = v >> s needs no widening (vpsrlvw gives 0 for s >= 16, as the scalar rule does for
// 16 <= s < 32), and "nearest" is (v >> s) + bit s - 1 of v, which equals (v + 2^(s-1)) >> s
// without its 17-bit intermediate. Word permutations then vpmovwb write the even/odd order.
ANDA_AVX512Q bool quantize_group_avx512(const uint16_t* h, int n, int M, bool nearest, int8_t* A,
                                        int32_t* S, float* U) {
  const __mmask32 lo = n >= 32 ? ~0u : (1u << n) - 1u, hi = n >= 64 ? ~0u : n <= 32 ? 0u : (1u << (n - 32)) - 1u;
  const __m512i H0 = _mm512_maskz_loadu_epi16(lo, h), H1 = _mm512_maskz_loadu_epi16(hi, h + 32);
  const __m512i f31 = _mm512_set1_epi16(31), one = _mm512_set1_epi16(1);
  const __m512i e0 = _mm512_and_si512(_mm512_srli_epi16(H0, 10), f31);
  const __m512i e1 = _mm512_and_si512(_mm512_srli_epi16(H1, 10), f31);
  const bool bad = (_mm512_cmpeq_epi16_mask(e0, f31) | _mm512_cmpeq_epi16_mask(e1, f31)) != 0;
  // shared exponent: max over the lanes, at least 1 (16-bit max, reduced in 32-bit lanes)
  const __m512i em = _mm512_max_epu16(_mm512_max_epu16(e0, e1), one);
  const int E = (int)_mm512_reduce_max_epu32(_mm512_max_epu32(_mm512_and_si512(em, _mm512_set1_epi32(0xFFFF)),
                                                              _mm512_srli_epi32(em, 16)));
  const __m512i base = _mm512_set1_epi16((int16_t)(E + 16 - M)), hid = _mm512_set1_epi16(0x400);
  const __m512i m10 = _mm512_set1_epi16(0x3FF), mmax = _mm512_set1_epi16((int16_t)((1u << M) - 1u));
  const __m512i Hv[2] = {H0, H1}, ev[2] = {e0, e1};
  __m512i m16[2];
  for (int i = 0; i < 2; ++i) {
    const __m512i e = ev[i];
    const __mmask32 nz = _mm512_test_epi16_mask(e, e);
    const __m512i frac = _mm512_and_si512(Hv[i], m10);  // the hidden bit where e != 0
    const __m512i v = _mm512_slli_epi16(_mm512_mask_mov_epi16(frac, nz, _mm512_or_si512(frac, hid)), 5);
    const __m512i s = _mm512_sub_epi16(base, _mm512_max_epu16(e, one));
    __m512i m = _mm512_srlv_epi16(v, s);
    if (nearest) {  // s = 0: no rounding bit (s - 1 wraps to 0xFFFF, a shift >= 16 gives 0)
      const __m512i bit = _mm512_and_si512(_mm512_srlv_epi16(v, _mm512_sub_epi16(s, one)), one);
      m = _mm512_min_epu16(_mm512_add_epi16(m, bit), mmax);
    }
    m16[i] = m;
  }
  // word indices of the even elements of H0:H1 (element k: word k), then of the odd ones
  alignas(64) static const uint16_t even_odd[2][32] = {
      {0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30,
       32, 34, 36, 38, 40, 42, 44, 46, 48, 50, 52, 54, 56, 58, 60, 62},
      {1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31,
       33, 35, 37, 39, 41, 43, 45, 47, 49, 51, 53, 55, 57, 59, 61, 63}};
  const __m512i ie = _mm512_load_si512(even_odd[0]), io = _mm512_load_si512(even_odd[1]);
  const __mmask32 neg0 = _mm512_movepi16_mask(H0), neg1 = _mm512_movepi16_mask(H1);
  const __m512i c127 = _mm512_set1_epi16(127), zero = _mm512_setzero_si512();
  __m512i ssum = zero;
  for (int c = 0, C = gemm_chunks(M); c < C; ++c) {
    __m512i ch0 = _mm512_and_si512(_mm512_srli_epi16(m16[0], 7 * c), c127);
    __m512i ch1 = _mm512_and_si512(_mm512_srli_epi16(m16[1], 7 * c), c127);
    ch0 = _mm512_mask_sub_epi16(ch0, neg0, zero, ch0);
    ch1 = _mm512_mask_sub_epi16(ch1, neg1, zero, ch1);
    const __m512i sum = _mm512_add_epi32(_mm512_madd_epi16(ch0, one), _mm512_madd_epi16(ch1, one));
    ssum = _mm512_add_epi32(ssum, _mm512_slli_epi32(sum, 7 * c));
    _mm256_storeu_si256((__m256i*)(A + c * 64), _mm512_cvtepi16_epi8(_mm512_permutex2var_epi16(ch0, ie, ch1)));
    _mm256_storeu_si256((__m256i*)(A + c * 64 + 32), _mm512_cvtepi16_epi8(_mm512_permutex2var_epi16(ch0, io, ch1)));
  }
  *S = _mm512_reduce_add_epi32(ssum);
  *U = unit_scale(E, M);
  return bad;
}

// Round-to-nearest-even float -> half on the bit patterns (finite or Inf inputs; NaN -> a NaN).
static inline uint16_t f32_to_f16_scalar(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
  const uint32_t a = u & 0x7FFFFFFFu;
  if (a > 0x7F800000u) return sign | 0x7E00u;                      // NaN
  if (a >= 0x477FF000u) return sign | 0x7C00u;                     // >= 65520: Inf
  if (a < 0x38800000u) {                                            // below 2^-14: subnormal
    // adding 0.5 aligns the value to the half subnormal unit 2^-24 with the FPU's own RNE
    float r;
    std::memcpy(&r, &a, 4);
    r += 0.5f;
    uint32_t ru;
    std::memcpy(&ru, &r, 4);
    return sign | (uint16_t)(ru - 0x3F000000u);
  }
  const uint32_t odd = (a >> 13) & 1u;
  return sign | (uint16_t)((a + ((uint32_t)(15 - 127) << 23) + 0xFFFu + odd) >> 13);
}

#define ANDA_F16C __attribute__((target("avx2,fma,f16c")))

// The portable conversion of either source (the same bits as to_f16_avx2).
template <class T>
static bool to_f16_scalar(const T* x, int64_t n, uint16_t* h) {
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) {
    const float f = sizeof(T) == 4 ? (float)x[i] : bf16_bits_to_float((uint16_t)x[i]);
    bad |= !(std::fabs(f) <= 65504.0f);  // NaN fails the comparison
    h[i] = f32_to_f16_scalar(f);
  }
  return bad;
}

// Eight floats from x: float32 values, or bfloat16 bit patterns (exact in float32).
template <class T>
ANDA_F16C static inline __m256 load8(const T* x) {
  if constexpr (sizeof(T) == 4) return _mm256_loadu_ps((const float*)x);
  else return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i*)x)), 16));
}

template <class T>
ANDA_F16C static bool to_f16_avx2(const T* x, int64_t n, uint16_t* h) {
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
  const __m256 lim = _mm256_set1_ps(65504.0f);
  __m256 out = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 v = load8(x + i);
    out = _mm256_or_ps(out, _mm256_cmp_ps(_mm256_and_ps(v, absmask), lim, _CMP_NLE_UQ));
    _mm_storeu_si128((__m128i*)(h + i), _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
  const bool tail_bad = to_f16_scalar(x + i, n - i, h + i);  // the last n % 8 values
  return tail_bad || _mm256_movemask_ps(out) != 0;
}

bool f32_to_f16(int isa, const float* x, int64_t n, uint16_t* h) {
  return isa >= ISA_AVX2 ? to_f16_avx2(x, n, h) : to_f16_scalar(x, n, h);
}

bool bf16_to_f16(int isa, const uint16_t* x, int64_t n, uint16_t* h) {
  return isa >= ISA_AVX2 ? to_f16_avx2(x, n, h) : to_f16_scalar(x, n, h);
}

bool quantize_rows(int isa, const uint16_t* h, int64_t rows, int64_t K, int M, bool nearest,
                   int8_t* A, int32_t* S, float* U) {
  auto* group = isa >= ISA_AVX512 ? &quantize_group_avx512
                : isa >= ISA_AVX2  ? &quantize_group_avx2
                                   : &quantize_group_scalar;
  const int64_t G = (K + 63) / 64;
  const int C = gemm_chunks(M);
  bool bad = false;
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t g = 0; g < G; ++g) {
      const int n = (int)std::min<int64_t>(64, K - g * 64);
      bad |= group(h + r * K + g * 64, n, M, nearest, A + (r * G + g) * C * 64, S + r * G + g,
                   U + r * G + g);
    }
  return bad;
}

}  // namespace anda
