// Attention of a few query rows against a whole KV cache (decode): every query of head h attends
// to every key of KV head h / (H / KVH), with no mask. Per (batch, KV head) item the kernel reads
// each key and value row once for all the query rows of that group (grouped-query attention
// without repeating K/V), keeps the scores in float32 and sums the values in float32 registers.
// Scalar, AVX2 and AVX-512 paths (float32 FMA; for bf16 K/V on CPUs with AVX512-BF16, VDPBF16PS scores
// straight from the cache, which treats bf16 denormals as zero as the instruction does); they
// differ in float summation order and in exp (the AVX-512 one is a polynomial within ~2 ulp of
// expf). Each item fetches the next item's rows towards L2 while it runs: a decode step streams
// every layer's cache from memory once.
#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "anda_kern.h"

namespace anda {

namespace {

constexpr int kRowBlock = 4;  // query rows per pass over K and V (4 rows x 4 chunks of D = 64 in registers)
// e^x = 2^n e^r, x = n ln2 + r (ln2 split in a short high part and the rest, Cody-Waite), e^r by
// its degree-6 Taylor polynomial, coefficients from the highest power down (|r| <= ln2 / 2:
// relative error < 2e-7).
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr int kExpTerms = 7;
constexpr float kExpTaylor[kExpTerms] = {1.f / 720, 1.f / 120, 1.f / 24, 1.f / 6, 0.5f, 1.f, 1.f};

float load_scalar(const void* p, int64_t i, int dtype) {
  switch (dtype) {
    case kAttnF32:
      return ((const float*)p)[i];
    case kAttnBF16:
      return bf16_bits_to_float(((const uint16_t*)p)[i]);
    default:
      return f16_bits_to_float(((const uint16_t*)p)[i]);
  }
}

size_t elem_bytes(int dtype) { return dtype == kAttnF32 ? 4 : 2; }

const char* row_ptr(const void* base, int64_t off, int dtype) {
  return (const char*)base + off * (int64_t)elem_bytes(dtype);
}

// Fetch `rows` rows of `bytes` each (stride apart) towards L2: the next item's K / V, requested
// while the current item runs (streamed from memory, the kernel otherwise waits on every row).
inline void prefetch_rows(const char* p, int rows, int64_t stride, int64_t bytes) {
  for (int r = 0; r < rows; ++r) prefetch_l2(p + r * stride, bytes);
}

// Softmax of each of `rows` score rows of length S in place (max-subtracted); returns nothing, the
// row sums go to `sums`.
// A key range's softmax statistics (split attention, attn_items): row r's max score and sum of
// exp(score - max) at ml[2r], ml[2r + 1]; nothing when ml is null.
inline void keep_ml(float* ml, int rows, const float* maxes, const float* sums) {
  if (ml)
    for (int r = 0; r < rows; ++r) ml[2 * r] = maxes[r], ml[2 * r + 1] = sums[r];
}

void softmax_scalar(float* sc, int rows, int64_t S, float* sums, float* maxes) {
  for (int r = 0; r < rows; ++r) {
    float* s = sc + r * S;
    float m = -INFINITY;
    for (int64_t j = 0; j < S; ++j) m = std::max(m, s[j]);
    float sum = 0.f;
    for (int64_t j = 0; j < S; ++j) sum += (s[j] = std::exp(s[j] - m));
    sums[r] = sum;
    maxes[r] = m;
  }
}

void block_scalar(const AttnArgs& a, const float* q, int rows, const char* k, const char* v, float* sc,
                  float* out, float* ml) {
  const int64_t S = a.S, D = a.D;
  for (int64_t j = 0; j < S; ++j) {
    const char* kj = k + j * a.k_ss * (int64_t)elem_bytes(a.dtype);
    for (int r = 0; r < rows; ++r) {
      float acc = 0.f;
      for (int64_t d = 0; d < D; ++d) acc += q[r * D + d] * load_scalar(kj, d, a.dtype);
      sc[r * S + j] = acc;
    }
  }
  float sums[kRowBlock], maxes[kRowBlock];
  softmax_scalar(sc, rows, S, sums, maxes);
  keep_ml(ml, rows, maxes, sums);
  std::fill(out, out + rows * D, 0.f);
  for (int64_t j = 0; j < S; ++j) {
    const char* vj = v + j * a.v_ss * (int64_t)elem_bytes(a.dtype);
    for (int r = 0; r < rows; ++r) {
      const float p = sc[r * S + j];
      for (int64_t d = 0; d < D; ++d) out[r * D + d] += p * load_scalar(vj, d, a.dtype);
    }
  }
  for (int r = 0; r < rows; ++r)
    for (int64_t d = 0; d < D; ++d) out[r * D + d] /= sums[r];
}

// ---- AVX-512 ----

__attribute__((target("avx512f"))) inline __m512 load16(const char* p, int dtype) {
  if (dtype == kAttnF32) return _mm512_loadu_ps(p);
  const __m256i h = _mm256_loadu_si256((const __m256i*)p);
  if (dtype == kAttnF16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// e^x for x <= 0 (scores minus their max): 2^n * p(r), x = n ln2 + r, |r| <= ln2 / 2, p the degree-6
// Taylor polynomial of e^r (relative error < 2e-7); below -87.3 the result underflows to 0, as
// expf does.
__attribute__((target("avx512f"))) inline __m512 exp512(__m512 x) {
  x = _mm512_max_ps(x, _mm512_set1_ps(-87.5f));
  const __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(kLog2e)),
                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Lo), _mm512_fnmadd_ps(n, _mm512_set1_ps(kLn2Hi), x));
  __m512 p = _mm512_set1_ps(kExpTaylor[0]);
  for (int i = 1; i < kExpTerms; ++i) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpTaylor[i]));
  return _mm512_scalef_ps(p, n);
}

__attribute__((target("avx512f"))) void softmax_avx512(float* sc, int rows, int64_t S, float* sums, float* maxes) {
  for (int r = 0; r < rows; ++r) {
    float* s = sc + r * S;
    __m512 m = _mm512_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 16 <= S; j += 16) m = _mm512_max_ps(m, _mm512_loadu_ps(s + j));
    float mx = _mm512_reduce_max_ps(m);
    for (; j < S; ++j) mx = std::max(mx, s[j]);
    const __m512 mv = _mm512_set1_ps(mx);
    __m512 acc = _mm512_setzero_ps();
    for (j = 0; j + 16 <= S; j += 16) {
      const __m512 e = exp512(_mm512_sub_ps(_mm512_loadu_ps(s + j), mv));
      _mm512_storeu_ps(s + j, e);
      acc = _mm512_add_ps(acc, e);
    }
    if (j < S) {
      const __mmask16 k = (__mmask16)((1u << (S - j)) - 1);
      const __m512 e = exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, s + j), mv));
      _mm512_mask_storeu_ps(s + j, k, e);
      acc = _mm512_add_ps(acc, _mm512_maskz_mov_ps(k, e));
    }
    sums[r] = _mm512_reduce_add_ps(acc);
    maxes[r] = mx;
  }
}

// Sums of four vectors' lanes: {sum a, sum b, sum c, sum d}.
__attribute__((target("avx512f"))) inline __m128 hsum4(__m512 a, __m512 b, __m512 c, __m512 d) {
  const __m512 ab = _mm512_add_ps(_mm512_unpacklo_ps(a, b), _mm512_unpackhi_ps(a, b));
  const __m512 cd = _mm512_add_ps(_mm512_unpacklo_ps(c, d), _mm512_unpackhi_ps(c, d));
  const __m512 u = _mm512_add_ps(_mm512_shuffle_ps(ab, cd, 0x44), _mm512_shuffle_ps(ab, cd, 0xEE));
  const __m256 h = _mm256_add_ps(_mm512_castps512_ps256(u), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(u), 1)));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// D a multiple of 16; ROWS query rows. Scores: four key rows at a time, each chunk of 16 of their
// columns loaded once for all the rows, their dot products summed lane-wise by hsum4. Values: per
// 64 columns of D, every value row's chunks scaled by each row's weight.
template <int ROWS>
__attribute__((target("avx512f"))) void block_avx512(const AttnArgs& a, const float* q,
                                                              const char* k, const char* v, float* sc,
                                                              float* out, float* ml, const char* pk, const char* pv) {
  const int64_t S = a.S, D = a.D, eb = (int64_t)elem_bytes(a.dtype);
  const int64_t kstep = a.k_ss * eb, vstep = a.v_ss * eb;
  int64_t j = 0;
  for (; j + 4 <= S; j += 4) {
    const char* kj = k + j * kstep;
    if (pk) prefetch_rows(pk + j * kstep, 4, kstep, eb * a.D);
    __m512 acc[ROWS][4];
    for (int r = 0; r < ROWS; ++r)
      for (int u = 0; u < 4; ++u) acc[r][u] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
      __m512 kv[4];
      for (int u = 0; u < 4; ++u) kv[u] = load16(kj + u * kstep + d * eb, a.dtype);
      for (int r = 0; r < ROWS; ++r) {
        const __m512 qv = _mm512_loadu_ps(q + r * D + d);
        for (int u = 0; u < 4; ++u) acc[r][u] = _mm512_fmadd_ps(qv, kv[u], acc[r][u]);
      }
    }
    for (int r = 0; r < ROWS; ++r) _mm_storeu_ps(sc + r * S + j, hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]));
  }
  for (; j < S; ++j) {
    const char* kj = k + j * kstep;
    __m512 acc[ROWS];
    for (int r = 0; r < ROWS; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
      const __m512 kv = load16(kj + d * eb, a.dtype);
      for (int r = 0; r < ROWS; ++r) acc[r] = _mm512_fmadd_ps(_mm512_loadu_ps(q + r * D + d), kv, acc[r]);
    }
    for (int r = 0; r < ROWS; ++r) sc[r * S + j] = _mm512_reduce_add_ps(acc[r]);
  }
  float sums[kRowBlock], maxes[kRowBlock];
  softmax_avx512(sc, ROWS, S, sums, maxes);
  keep_ml(ml, ROWS, maxes, sums);
  for (int64_t d0 = 0; d0 < D; d0 += 64) {
    const int nc = (int)std::min<int64_t>(4, (D - d0) / 16);
    __m512 acc[ROWS][4];
    for (int r = 0; r < ROWS; ++r)
      for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_setzero_ps();
    const char* vj = v + d0 * eb;
    if (nc == 4) {
      for (int64_t jj = 0; jj < S; ++jj, vj += vstep) {
        if (pv && d0 == 0) prefetch_rows(pv + jj * vstep, 1, vstep, eb * a.D);
        __m512 vv[4];
        for (int c = 0; c < 4; ++c) vv[c] = load16(vj + 16 * c * eb, a.dtype);
        for (int r = 0; r < ROWS; ++r) {
          const __m512 p = _mm512_set1_ps(sc[r * S + jj]);
          for (int c = 0; c < 4; ++c) acc[r][c] = _mm512_fmadd_ps(p, vv[c], acc[r][c]);
        }
      }
    } else {
      for (int64_t jj = 0; jj < S; ++jj, vj += vstep)
        for (int c = 0; c < nc; ++c) {
          const __m512 vv = load16(vj + 16 * c * eb, a.dtype);
          for (int r = 0; r < ROWS; ++r) acc[r][c] = _mm512_fmadd_ps(_mm512_set1_ps(sc[r * S + jj]), vv, acc[r][c]);
        }
    }
    for (int r = 0; r < ROWS; ++r) {
      const __m512 inv = _mm512_set1_ps(1.f / sums[r]);
      for (int c = 0; c < nc; ++c) _mm512_storeu_ps(out + r * D + d0 + 16 * c, _mm512_mul_ps(acc[r][c], inv));
    }
  }
}

void block_vec(const AttnArgs& a, const float* q, int rows, const char* k, const char* v, float* sc, float* out,
               float* ml, const char* pk, const char* pv) {
  switch (rows) {
    case 1: return block_avx512<1>(a, q, k, v, sc, out, ml, pk, pv);
    case 2: return block_avx512<2>(a, q, k, v, sc, out, ml, pk, pv);
    case 3: return block_avx512<3>(a, q, k, v, sc, out, ml, pk, pv);
    default: return block_avx512<4>(a, q, k, v, sc, out, ml, pk, pv);
  }
}

// bfloat16 K / V on a CPU with AVX512-BF16, D a multiple of 32. Scores: VDPBF16PS of the bfloat16
// query (unscaled) with each key row straight from the cache (pair products exact, float32 sums),
// times the scale. Values: a 64-byte load of 32 bfloat16 is 16 even elements (shifted up 16 bits)
// and 16 odd ones (low halves masked off): two float32 vectors without a shuffle; the sums are kept
// even / odd and interleaved once per row at the end.
template <int ROWS>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void block_bf16(const AttnArgs& a, const uint16_t* q,
                                                                       const char* k, const char* v, float* sc,
                                                                       float* out, float* ml, const char* pk,
                                                                       const char* pv) {
  const int64_t S = a.S, D = a.D, kstep = a.k_ss * 2, vstep = a.v_ss * 2;
  const __m512 scale = _mm512_set1_ps(a.scale);
  int64_t j = 0;
  for (; j + 4 <= S; j += 4) {
    const char* kj = k + j * kstep;
    if (pk) prefetch_rows(pk + j * kstep, 4, kstep, 2 * D);
    __m512 acc[ROWS][4];
    for (int r = 0; r < ROWS; ++r)
      for (int u = 0; u < 4; ++u) acc[r][u] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 32) {
      __m512bh kv[4];
      for (int u = 0; u < 4; ++u) kv[u] = (__m512bh)_mm512_loadu_si512(kj + u * kstep + 2 * d);
      for (int r = 0; r < ROWS; ++r) {
        const __m512bh qv = (__m512bh)_mm512_loadu_si512(q + r * D + d);
        for (int u = 0; u < 4; ++u) acc[r][u] = _mm512_dpbf16_ps(acc[r][u], qv, kv[u]);
      }
    }
    for (int r = 0; r < ROWS; ++r)
      _mm_storeu_ps(sc + r * S + j, _mm_mul_ps(hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]),
                                               _mm512_castps512_ps128(scale)));
  }
  for (; j < S; ++j) {
    const char* kj = k + j * kstep;
    __m512 acc[ROWS];
    for (int r = 0; r < ROWS; ++r) acc[r] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 32) {
      const __m512bh kv = (__m512bh)_mm512_loadu_si512(kj + 2 * d);
      for (int r = 0; r < ROWS; ++r) acc[r] = _mm512_dpbf16_ps(acc[r], (__m512bh)_mm512_loadu_si512(q + r * D + d), kv);
    }
    for (int r = 0; r < ROWS; ++r) sc[r * S + j] = _mm512_reduce_add_ps(acc[r]) * a.scale;
  }
  float sums[kRowBlock], maxes[kRowBlock];
  softmax_avx512(sc, ROWS, S, sums, maxes);
  keep_ml(ml, ROWS, maxes, sums);
  const __m512i hi = _mm512_set1_epi32((int)0xFFFF0000u);
  for (int64_t d0 = 0; d0 < D; d0 += 64) {
    const int nc = (int)std::min<int64_t>(2, (D - d0) / 32);  // 32-value chunks of this 64-wide slice
    __m512 ev[ROWS][2], od[ROWS][2];
    for (int r = 0; r < ROWS; ++r)
      for (int c = 0; c < 2; ++c) ev[r][c] = od[r][c] = _mm512_setzero_ps();
    const char* vj = v + 2 * d0;
    for (int64_t jj = 0; jj < S; ++jj, vj += vstep) {
      if (pv && d0 == 0) prefetch_rows(pv + jj * vstep, 1, vstep, 2 * D);
      __m512 ve[2], vo[2];
      for (int c = 0; c < nc; ++c) {
        const __m512i w = _mm512_loadu_si512(vj + 64 * c);
        ve[c] = _mm512_castsi512_ps(_mm512_slli_epi32(w, 16));
        vo[c] = _mm512_castsi512_ps(_mm512_and_si512(w, hi));
      }
      for (int r = 0; r < ROWS; ++r) {
        const __m512 p = _mm512_set1_ps(sc[r * S + jj]);
        for (int c = 0; c < nc; ++c) {
          ev[r][c] = _mm512_fmadd_ps(p, ve[c], ev[r][c]);
          od[r][c] = _mm512_fmadd_ps(p, vo[c], od[r][c]);
        }
      }
    }
    for (int r = 0; r < ROWS; ++r) {
      const __m512 inv = _mm512_set1_ps(1.f / sums[r]);
      alignas(64) float e[16], o[16];
      for (int c = 0; c < nc; ++c) {
        _mm512_store_ps(e, _mm512_mul_ps(ev[r][c], inv));
        _mm512_store_ps(o, _mm512_mul_ps(od[r][c], inv));
        float* dst = out + r * D + d0 + 32 * c;
        for (int i = 0; i < 16; ++i) dst[2 * i] = e[i], dst[2 * i + 1] = o[i];
      }
    }
  }
}

void block_vec_bf16(const AttnArgs& a, const uint16_t* q, int rows, const char* k, const char* v, float* sc,
                    float* out, float* ml, const char* pk, const char* pv) {
  switch (rows) {
    case 1: return block_bf16<1>(a, q, k, v, sc, out, ml, pk, pv);
    case 2: return block_bf16<2>(a, q, k, v, sc, out, ml, pk, pv);
    case 3: return block_bf16<3>(a, q, k, v, sc, out, ml, pk, pv);
    default: return block_bf16<4>(a, q, k, v, sc, out, ml, pk, pv);
  }
}


// ---- AVX2 (8 lanes, 16 registers: two keys per step of the scores, 16 columns of D per pass over
// the values) ----

#define ANDA_ATTN_AVX2 __attribute__((target("avx2,fma,f16c")))

ANDA_ATTN_AVX2 inline __m256 load8(const char* p, int dtype) {
  if (dtype == kAttnF32) return _mm256_loadu_ps((const float*)p);
  const __m128i h = _mm_loadu_si128((const __m128i*)p);
  if (dtype == kAttnF16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// e^x for x <= 0 as exp512 (2^n built in the exponent field; below ~-87 the result is 0).
ANDA_ATTN_AVX2 inline __m256 exp256(__m256 x) {
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  const __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Lo), _mm256_fnmadd_ps(n, _mm256_set1_ps(kLn2Hi), x));
  __m256 p = _mm256_set1_ps(kExpTaylor[0]);
  for (int i = 1; i < kExpTerms; ++i) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpTaylor[i]));
  const __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

ANDA_ATTN_AVX2 void softmax_avx2(float* sc, int rows, int64_t S, float* sums, float* maxes) {
  for (int r = 0; r < rows; ++r) {
    float* s = sc + r * S;
    __m256 m = _mm256_set1_ps(-INFINITY);
    int64_t j = 0;
    for (; j + 8 <= S; j += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(s + j));
    alignas(32) float mb[8];
    _mm256_store_ps(mb, m);
    float mx = *std::max_element(mb, mb + 8);
    for (; j < S; ++j) mx = std::max(mx, s[j]);
    const __m256 mv = _mm256_set1_ps(mx);
    __m256 acc = _mm256_setzero_ps();
    for (j = 0; j + 8 <= S; j += 8) {
      const __m256 e = exp256(_mm256_sub_ps(_mm256_loadu_ps(s + j), mv));
      _mm256_storeu_ps(s + j, e);
      acc = _mm256_add_ps(acc, e);
    }
    alignas(32) float ab[8];
    _mm256_store_ps(ab, acc);
    float sum = 0.f;
    for (int i = 0; i < 8; ++i) sum += ab[i];
    for (; j < S; ++j) sum += (s[j] = std::exp(s[j] - mx));
    sums[r] = sum;
    maxes[r] = mx;
  }
}

// {sum a, sum b} of two vectors' lanes.
ANDA_ATTN_AVX2 inline __m128 hsum2(__m256 a, __m256 b) {
  const __m256 t = _mm256_hadd_ps(a, b);
  const __m128 u = _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
  return _mm_hadd_ps(u, u);
}

// D a multiple of 8; ROWS query rows (q float32, scaled).
template <int ROWS>
ANDA_ATTN_AVX2 void block_avx2(const AttnArgs& a, const float* q, const char* k, const char* v, float* sc,
                              float* out, float* ml, const char* pk, const char* pv) {
  const int64_t S = a.S, D = a.D, eb = (int64_t)elem_bytes(a.dtype);
  const int64_t kstep = a.k_ss * eb, vstep = a.v_ss * eb;
  int64_t j = 0;
  for (; j + 2 <= S; j += 2) {
    const char* kj = k + j * kstep;
    if (pk) prefetch_rows(pk + j * kstep, 2, kstep, eb * D);
    __m256 acc[ROWS][2];
    for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
      const __m256 k0 = load8(kj + d * eb, a.dtype), k1 = load8(kj + kstep + d * eb, a.dtype);
      for (int r = 0; r < ROWS; ++r) {
        const __m256 qv = _mm256_loadu_ps(q + r * D + d);
        acc[r][0] = _mm256_fmadd_ps(qv, k0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(qv, k1, acc[r][1]);
      }
    }
    for (int r = 0; r < ROWS; ++r) {
      const __m128 h = hsum2(acc[r][0], acc[r][1]);
      sc[r * S + j] = _mm_cvtss_f32(h);
      sc[r * S + j + 1] = _mm_cvtss_f32(_mm_shuffle_ps(h, h, 1));
    }
  }
  for (; j < S; ++j) {
    const char* kj = k + j * kstep;
    __m256 acc[ROWS];
    for (int r = 0; r < ROWS; ++r) acc[r] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 8) {
      const __m256 kv = load8(kj + d * eb, a.dtype);
      for (int r = 0; r < ROWS; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(q + r * D + d), kv, acc[r]);
    }
    for (int r = 0; r < ROWS; ++r) sc[r * S + j] = _mm_cvtss_f32(hsum2(acc[r], _mm256_setzero_ps()));
  }
  float sums[kRowBlock], maxes[kRowBlock];
  softmax_avx2(sc, ROWS, S, sums, maxes);
  keep_ml(ml, ROWS, maxes, sums);
  for (int64_t d0 = 0; d0 < D; d0 += 16) {
    const int nc = D - d0 >= 16 ? 2 : 1;
    __m256 acc[ROWS][2];
    for (int r = 0; r < ROWS; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    const char* vj = v + d0 * eb;
    for (int64_t jj = 0; jj < S; ++jj, vj += vstep) {
      if (pv && d0 == 0) prefetch_rows(pv + jj * vstep, 1, vstep, eb * D);
      const __m256 v0 = load8(vj, a.dtype), v1 = nc == 2 ? load8(vj + 8 * eb, a.dtype) : _mm256_setzero_ps();
      for (int r = 0; r < ROWS; ++r) {
        const __m256 p = _mm256_broadcast_ss(sc + r * S + jj);
        acc[r][0] = _mm256_fmadd_ps(p, v0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(p, v1, acc[r][1]);
      }
    }
    for (int r = 0; r < ROWS; ++r) {
      const __m256 inv = _mm256_set1_ps(1.f / sums[r]);
      for (int c = 0; c < nc; ++c) _mm256_storeu_ps(out + r * D + d0 + 8 * c, _mm256_mul_ps(acc[r][c], inv));
    }
  }
}

void block_vec_avx2(const AttnArgs& a, const float* q, int rows, const char* k, const char* v, float* sc,
                    float* out, float* ml, const char* pk, const char* pv) {
  switch (rows) {
    case 1: return block_avx2<1>(a, q, k, v, sc, out, ml, pk, pv);
    case 2: return block_avx2<2>(a, q, k, v, sc, out, ml, pk, pv);
    case 3: return block_avx2<3>(a, q, k, v, sc, out, ml, pk, pv);
    default: return block_avx2<4>(a, q, k, v, sc, out, ml, pk, pv);
  }
}

void store_row(const float* src, int64_t D, void* dst, int dtype) {
  if (dtype == kAttnF32) {
    std::memcpy(dst, src, D * sizeof(float));
  } else if (dtype == kAttnBF16) {
    uint16_t* o = (uint16_t*)dst;
    for (int64_t d = 0; d < D; ++d) o[d] = f32_to_bf16_bits(src[d]);
  } else {
    f32_to_f16(ISA_SCALAR, src, D, (uint16_t*)dst);
  }
}

}  // namespace

bool attn_has_avx512(int isa, int64_t D) { return isa >= ISA_AVX512 && D % 16 == 0; }
bool attn_vectorized(int isa, int64_t D) { return attn_has_avx512(isa, D) || (isa >= ISA_AVX2 && D % 8 == 0); }

namespace {

// Work item i: (batch b, KV head kvh) = i / nsplit, keys [s0, s1) of split i % nsplit (S split
// evenly; nsplit = 1: every key). Returns the item's K / V base pointers and its key range.
struct Item {
  int64_t b, kvh, s0, s1;
  const char *k, *v;
};

Item item_at(const AttnArgs& a, int64_t i, int64_t eb) {
  const int64_t bk = i / a.nsplit, sp = i % a.nsplit;
  Item it{bk / a.KVH, bk % a.KVH, a.S * sp / a.nsplit, a.S * (sp + 1) / a.nsplit, nullptr, nullptr};
  it.k = (const char*)a.k + (it.b * a.k_sb + it.kvh * a.k_sh + it.s0 * a.k_ss) * eb;
  it.v = (const char*)a.v + (it.b * a.v_sb + it.kvh * a.v_sh + it.s0 * a.v_ss) * eb;
  return it;
}

}  // namespace

void attn_items(int isa, const AttnArgs& a, int64_t i0, int64_t i1) {
  const int64_t G = a.H / a.KVH, rows_all = G * a.T, D = a.D;
  const bool vec = attn_has_avx512(isa, D), vec2 = !vec && attn_vectorized(isa, D);
  const bool vec_bf16 = vec && a.dtype == kAttnBF16 && D % 32 == 0 && avx512bf16_usable();
  const int64_t eb = (int64_t)elem_bytes(a.dtype);
  thread_local std::vector<float> work;
  work.resize((size_t)(kRowBlock * a.S + 3 * kRowBlock * D));
  float* sc = work.data();
  float* q = sc + kRowBlock * a.S;
  float* out = q + kRowBlock * D;
  uint16_t* qb = (uint16_t*)(out + kRowBlock * D);  // bf16 query rows as given (block_bf16)
  if ((vec || vec2) && i0 < i1) {  // this range's first item: asked for at once (the others while their predecessor runs)
    const Item it = item_at(a, i0, eb);
    prefetch_rows(it.k, (int)(it.s1 - it.s0), a.k_ss * eb, eb * D);
    prefetch_rows(it.v, (int)(it.s1 - it.s0), a.v_ss * eb, eb * D);
  }
  for (int64_t item = i0; item < i1; ++item) {
    const Item it = item_at(a, item, eb);
    AttnArgs ar = a;  // this item's keys only
    ar.S = it.s1 - it.s0;
    // the next item's K / V rows, fetched into L2 while this item runs (its last row block only;
    // as many rows as this item has, at most the next one's)
    const char *pk = nullptr, *pv = nullptr;
    if (item + 1 < i1) {
      const Item nx = item_at(a, item + 1, eb);
      if (nx.s1 - nx.s0 >= ar.S) pk = nx.k, pv = nx.v;
    }
    for (int64_t r0 = 0; r0 < rows_all; r0 += kRowBlock) {
      const int rows = (int)std::min<int64_t>(kRowBlock, rows_all - r0);
      const bool last = r0 + kRowBlock >= rows_all;
      for (int r = 0; r < rows; ++r) {  // row r0 + r = query (head kvh * G + g, token t)
        const int64_t g = (r0 + r) / a.T, t = (r0 + r) % a.T, h = it.kvh * G + g;
        const char* src = row_ptr(a.q, it.b * a.q_sb + h * a.q_sh + t * a.q_st, a.dtype);
        if (vec_bf16)
          std::memcpy(qb + r * D, src, (size_t)D * 2);
        else
          for (int64_t d = 0; d < D; ++d) q[r * D + d] = load_scalar(src, d, a.dtype) * a.scale;
      }
      // split items keep their rows (normalised over their keys) and (max, sum) in a.part
      float* ml = a.nsplit > 1 ? a.part + (item * rows_all + r0) * (D + 2) + rows * D : nullptr;
      if (vec_bf16)
        block_vec_bf16(ar, qb, rows, it.k, it.v, sc, out, ml, last ? pk : nullptr, last ? pv : nullptr);
      else if (vec)
        block_vec(ar, q, rows, it.k, it.v, sc, out, ml, last ? pk : nullptr, last ? pv : nullptr);
      else if (vec2)
        block_vec_avx2(ar, q, rows, it.k, it.v, sc, out, ml, last ? pk : nullptr, last ? pv : nullptr);
      else
        block_scalar(ar, q, rows, it.k, it.v, sc, out, ml);
      if (ml) {
        std::memcpy(ml - rows * D, out, sizeof(float) * rows * D);
        continue;
      }
      for (int r = 0; r < rows; ++r) {
        const int64_t g = (r0 + r) / a.T, t = (r0 + r) % a.T, h = it.kvh * G + g;
        store_row(out + r * D, D, (char*)a.o + (it.b * a.o_sb + h * a.o_sh + t * a.o_st) * eb, a.dtype);
      }
    }
  }
}

void attn_combine(const AttnArgs& a, int64_t i0, int64_t i1) {
  const int64_t G = a.H / a.KVH, rows_all = G * a.T, D = a.D, eb = (int64_t)elem_bytes(a.dtype);
  std::vector<float> row((size_t)D);
  for (int64_t bk = i0; bk < i1; ++bk) {
    const int64_t b = bk / a.KVH, kvh = bk % a.KVH;
    for (int64_t r0 = 0; r0 < rows_all; r0 += kRowBlock) {
      const int rows = (int)std::min<int64_t>(kRowBlock, rows_all - r0);
      for (int r = 0; r < rows; ++r) {
        // split sp's block: rows x D values, then rows x (max, sum)
        auto block = [&](int64_t sp) { return a.part + ((bk * a.nsplit + sp) * rows_all + r0) * (D + 2); };
        float m = -INFINITY;
        for (int64_t sp = 0; sp < a.nsplit; ++sp) m = std::max(m, block(sp)[rows * D + 2 * r]);
        float total = 0.f;
        std::fill(row.begin(), row.end(), 0.f);
        for (int64_t sp = 0; sp < a.nsplit; ++sp) {
          const float* blk = block(sp);
          const float w = blk[rows * D + 2 * r + 1] * std::exp(blk[rows * D + 2 * r] - m);
          total += w;
          for (int64_t d = 0; d < D; ++d) row[d] += w * blk[r * D + d];
        }
        for (int64_t d = 0; d < D; ++d) row[d] /= total;
        const int64_t g = (r0 + r) / a.T, t = (r0 + r) % a.T, h = kvh * G + g;
        store_row(row.data(), D, (char*)a.o + (b * a.o_sb + h * a.o_sh + t * a.o_st) * eb, a.dtype);
      }
    }
  }
}

}  // namespace anda
