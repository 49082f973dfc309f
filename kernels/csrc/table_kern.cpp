// Linear layer over a group-wise INT8 / INT4 table (the quantized LM head, formats/table_quant.py):
// y[t, r] = bias[r] + sum_g scale[r, g] * sum_{k in g} q[r, k] * x[t, k], with float32 sums, for
// rows [r0, r1). The codes are decoded in registers (never a float copy of the table), so a
// decode step streams the table's bytes once: 28 MB instead of a 113 MB float32 table that used to
// be rebuilt on every call. Scalar, AVX2 and AVX-512 paths; they differ only in float summation order.
// Any width K: a vector path's last step of a row (K not a multiple of its 8 / 16 columns) reads only
// the columns < K (masked loads, or a zero-padded copy on AVX2) and adds exact zeros for the others.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "anda_kern.h"

namespace anda {

static inline int code_at(const uint8_t* row, int bits, int64_t k) {
  if (bits == 8) return (int)row[k] - 128;
  const uint8_t b = row[k >> 1];
  return (int)((k & 1) ? (b >> 4) : (b & 15)) - 8;
}

void table_dequant_rows(const TableArgs& a, int64_t r0, int64_t r1, float* w) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = a.packed + r * a.pstride;
    float* out = w + (r - r0) * a.K;
    for (int64_t k0 = 0, g = 0; k0 < a.K; k0 += a.group, ++g) {
      const float s = f16_bits_to_float(a.scale[r * a.sstride + g]);
      const int64_t k1 = std::min<int64_t>(a.K, k0 + a.group);
      if (a.bits == 8)
        for (int64_t k = k0; k < k1; ++k) out[k] = (float)((int)row[k] - 128) * s;
      else
        for (int64_t k = k0; k < k1; ++k) out[k] = (float)code_at(row, 4, k) * s;
    }
  }
}

static void table_rows_scalar(const TableArgs& a, int64_t r0, int64_t r1) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = a.packed + r * a.pstride;
    for (int64_t t = 0; t < a.T; ++t) {
      const float* x = a.x + t * a.K;
      float tot = 0.0f;
      for (int64_t g0 = 0, gi = 0; g0 < a.K; g0 += a.group, ++gi) {
        const int64_t g1 = g0 + a.group < a.K ? g0 + a.group : a.K;
        float acc = 0.0f;
        for (int64_t k = g0; k < g1; ++k) acc += (float)code_at(row, a.bits, k) * x[k];
        tot += acc * f16_bits_to_float(a.scale[r * a.sstride + gi]);
      }
      a.y[t * a.R + r] = tot + (a.bias ? a.bias[r] : 0.0f);
    }
  }
}

#define ANDA_TABLE_AVX2 __attribute__((target("avx2,fma,f16c")))

// 8 codes of columns k..k+7 as float (INT8: 8 bytes; INT4: 4 bytes, low nibble first).
template <int BITS>
ANDA_TABLE_AVX2 static inline __m256 codes8(const uint8_t* row, int64_t k) {
  if (BITS == 8) {
    const __m128i b = _mm_loadl_epi64((const __m128i*)(row + k));
    return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(b), _mm256_set1_epi32(128)));
  }
  int32_t four;
  std::memcpy(&four, row + (k >> 1), 4);
  const __m128i v = _mm_cvtsi32_si128(four), m = _mm_set1_epi8(0x0F);
  const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
  return _mm256_cvtepi32_ps(_mm256_sub_epi32(_mm256_cvtepu8_epi32(nib), _mm256_set1_epi32(8)));
}

// The last n < 8 columns k..k+n-1 of a row: codes as codes8 (0 for columns >= n) and x's n values
// followed by zeros, both through zero-padded copies (nothing read past column K - 1 of either).
template <int BITS>
ANDA_TABLE_AVX2 static inline __m256 codes8_tail(const uint8_t* row, int64_t k, int n) {
  alignas(8) uint8_t buf[8];
  std::memset(buf, BITS == 8 ? 128 : 0x88, sizeof buf);  // code 0
  std::memcpy(buf, row + (BITS == 8 ? k : k >> 1), BITS == 8 ? n : (n + 1) / 2);
  if (BITS == 4 && (n & 1)) buf[n >> 1] = (uint8_t)((buf[n >> 1] & 0x0F) | 0x80);  // past K: code 0
  return codes8<BITS>(buf, 0);
}

ANDA_TABLE_AVX2 static inline __m256 x8_tail(const float* x, int n) {
  alignas(32) float buf[8] = {};
  std::memcpy(buf, x, sizeof(float) * n);
  return _mm256_load_ps(buf);
}

ANDA_TABLE_AVX2 static inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// TT tokens x one row: codes decoded once per 8 columns and used for every token of the tile.
template <int BITS, int TT, bool TAIL>
ANDA_TABLE_AVX2 static void table_row_avx2(const TableArgs& a, int64_t r, int64_t t0) {
  const uint8_t* row = a.packed + r * a.pstride;
  __m256 tot[TT];
  for (int t = 0; t < TT; ++t) tot[t] = _mm256_setzero_ps();
  for (int64_t g0 = 0, gi = 0; g0 < a.K; g0 += a.group, ++gi) {
    __m256 acc[TT];
    for (int t = 0; t < TT; ++t) acc[t] = _mm256_setzero_ps();
    const int64_t g1 = std::min<int64_t>(a.K, g0 + a.group);  // the last group may be partial
    int64_t k = g0;
    for (; TAIL ? k + 8 <= g1 : k < g1; k += 8) {
      const __m256 q = codes8<BITS>(row, k);
      for (int t = 0; t < TT; ++t)
        acc[t] = _mm256_fmadd_ps(q, _mm256_loadu_ps(a.x + (t0 + t) * a.K + k), acc[t]);
    }
    if (TAIL && k < g1) {  // the row's last columns (K not a multiple of 8)
      const int n = (int)(g1 - k);
      const __m256 q = codes8_tail<BITS>(row, k, n);
      for (int t = 0; t < TT; ++t) acc[t] = _mm256_fmadd_ps(q, x8_tail(a.x + (t0 + t) * a.K + k, n), acc[t]);
    }
    const __m256 s = _mm256_set1_ps(_cvtsh_ss(a.scale[r * a.sstride + gi]));
    for (int t = 0; t < TT; ++t) tot[t] = _mm256_fmadd_ps(acc[t], s, tot[t]);
  }
  const float b = a.bias ? a.bias[r] : 0.0f;
  for (int t = 0; t < TT; ++t) a.y[(t0 + t) * a.R + r] = hsum8(tot[t]) + b;
}

// One token x RT rows (a decode step's head), as table_rows1_avx512: x loaded once per 8 columns
// for RT independent FMA chains, the next RT rows prefetched; each row summed in exactly the order
// of table_row_avx2<BITS, 1, TAIL> (bit-identical).
template <int BITS, int RT, bool TAIL>
ANDA_TABLE_AVX2 static void table_rows1_avx2(const TableArgs& a, int64_t r, int64_t t) {
  const uint8_t* row[RT];
  __m256 tot[RT];
  for (int i = 0; i < RT; ++i) row[i] = a.packed + (r + i) * a.pstride, tot[i] = _mm256_setzero_ps();
  const float* x = a.x + t * a.K;
  for (int64_t g0 = 0, gi = 0; g0 < a.K; g0 += a.group, ++gi) {
    __m256 acc[RT];
    for (int i = 0; i < RT; ++i) acc[i] = _mm256_setzero_ps();
    const int64_t g1 = std::min<int64_t>(a.K, g0 + a.group);
    int64_t k = g0;
    for (; TAIL ? k + 8 <= g1 : k < g1; k += 8) {
      if ((k & 63) == 0)
        for (int i = 0; i < RT; ++i) _mm_prefetch((const char*)(row[i] + RT * a.pstride + (BITS == 8 ? k : k / 2)),
                                                  _MM_HINT_T0);
      const __m256 xv = _mm256_loadu_ps(x + k);
      for (int i = 0; i < RT; ++i) acc[i] = _mm256_fmadd_ps(codes8<BITS>(row[i], k), xv, acc[i]);
    }
    if (TAIL && k < g1) {  // as table_row_avx2
      const int n = (int)(g1 - k);
      const __m256 xv = x8_tail(x + k, n);
      for (int i = 0; i < RT; ++i) acc[i] = _mm256_fmadd_ps(codes8_tail<BITS>(row[i], k, n), xv, acc[i]);
    }
    for (int i = 0; i < RT; ++i)
      tot[i] = _mm256_fmadd_ps(acc[i], _mm256_set1_ps(_cvtsh_ss(a.scale[(r + i) * a.sstride + gi])), tot[i]);
  }
  for (int i = 0; i < RT; ++i) a.y[t * a.R + r + i] = hsum8(tot[i]) + (a.bias ? a.bias[r + i] : 0.0f);
}

constexpr int64_t kTableTokens = 64;  // tokens per pass over the rows: x stays in L2

// TAIL: K is not a multiple of the path's step, so rows end in a partial step. Whole-step widths
// run code without the tail's branches (a first version with them in every width measured INT4
// tables at 8 tokens 5-10% slower in two alternating pairs).
template <int BITS, bool TAIL>
ANDA_TABLE_AVX2 static void table_rows_avx2(const TableArgs& a, int64_t r0, int64_t r1) {
  if (a.T == 1) {  // one token: rows four at a time
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) table_rows1_avx2<BITS, 4, TAIL>(a, r, 0);
    for (; r < r1; ++r) table_row_avx2<BITS, 1, TAIL>(a, r, 0);
    return;
  }
  for (int64_t tb = 0; tb < a.T; tb += kTableTokens) {
    const int64_t te = tb + kTableTokens < a.T ? tb + kTableTokens : a.T;
    for (int64_t r = r0; r < r1; ++r) {
      int64_t t = tb;
      for (; t + 4 <= te; t += 4) table_row_avx2<BITS, 4, TAIL>(a, r, t);
      for (; t < te; ++t) table_row_avx2<BITS, 1, TAIL>(a, r, t);
    }
  }
}

#define ANDA_TABLE_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

// 16 codes of columns k..k+15 as float (INT8: 16 bytes; INT4: 8 bytes, low nibble first).
template <int BITS>
ANDA_TABLE_AVX512 static inline __m512 codes16(const uint8_t* row, int64_t k) {
  if (BITS == 8) {
    const __m128i b = _mm_loadu_si128((const __m128i*)(row + k));
    return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(b), _mm512_set1_epi32(128)));
  }
  const __m128i v = _mm_loadl_epi64((const __m128i*)(row + (k >> 1))), m = _mm_set1_epi8(0x0F);
  const __m128i nib = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
  return _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(nib), _mm512_set1_epi32(8)));
}

// The last n < 16 columns k..k+n-1 of a row (masked loads: nothing read past column K - 1): codes
// as codes16 with 0 in the lanes >= n, and x's n values followed by zeros.
template <int BITS>
ANDA_TABLE_AVX512 static inline __m512 codes16_tail(const uint8_t* row, int64_t k, int n) {
  const __mmask16 lanes = (__mmask16)((1u << n) - 1);
  __m128i b;
  if (BITS == 8) {
    b = _mm_maskz_loadu_epi8(lanes, row + k);
  } else {
    const __m128i v = _mm_maskz_loadu_epi8((__mmask16)((1u << ((n + 1) / 2)) - 1), row + (k >> 1)),
                  m = _mm_set1_epi8(0x0F);
    b = _mm_unpacklo_epi8(_mm_and_si128(v, m), _mm_and_si128(_mm_srli_epi16(v, 4), m));
  }
  const __m512i off = _mm512_set1_epi32(BITS == 8 ? 128 : 8);
  return _mm512_maskz_cvtepi32_ps(lanes, _mm512_sub_epi32(_mm512_cvtepu8_epi32(b), off));
}

ANDA_TABLE_AVX512 static inline __m512 x16_tail(const float* x, int n) {
  return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), x);
}

// TT tokens x one row, 16 columns per step: codes decoded once per step for every token of the
// tile; group sums scaled into one float32 total per token, reduced once per row.
// A row's codes are prefetched two rows ahead: a head larger than the caches streams from memory,
// where the hardware prefetcher stops at every page (2 tokens of a 32000 x 3264 INT8 head, 2-core
// Xeon: 22.9 -> 11.2-11.4 ms at 1 thread, 8.6 -> 4.8-5.2 at 2; docs/BENCH.md, fifteenth round).
template <int BITS, int TT, bool TAIL>
ANDA_TABLE_AVX512 static inline void table_row_avx512(const TableArgs& a, int64_t r, int64_t t0) {
  const uint8_t* row = a.packed + r * a.pstride;
  const uint8_t* ahead = r + 2 < a.R ? row + 2 * a.pstride : row;  // (no pointer past the table)
  __m512 tot[TT];
  for (int t = 0; t < TT; ++t) tot[t] = _mm512_setzero_ps();
  for (int64_t g0 = 0, gi = 0; g0 < a.K; g0 += a.group, ++gi) {
    __m512 acc[TT];
    for (int t = 0; t < TT; ++t) acc[t] = _mm512_setzero_ps();
    const int64_t g1 = std::min<int64_t>(a.K, g0 + a.group);  // the last group may be partial
    int64_t k = g0;
    for (; TAIL ? k + 16 <= g1 : k < g1; k += 16) {
      if ((k & 63) == 0)  // the line two rows ahead at this column: a head streamed from memory
        _mm_prefetch((const char*)(ahead + (BITS == 8 ? k : k / 2)), _MM_HINT_T0);
      const __m512 q = codes16<BITS>(row, k);
      for (int t = 0; t < TT; ++t)
        acc[t] = _mm512_fmadd_ps(q, _mm512_loadu_ps(a.x + (t0 + t) * a.K + k), acc[t]);
    }
    if (TAIL && k < g1) {  // the row's last columns (K not a multiple of 16)
      const int n = (int)(g1 - k);
      const __m512 q = codes16_tail<BITS>(row, k, n);
      for (int t = 0; t < TT; ++t) acc[t] = _mm512_fmadd_ps(q, x16_tail(a.x + (t0 + t) * a.K + k, n), acc[t]);
    }
    const __m512 s = _mm512_set1_ps(_cvtsh_ss(a.scale[r * a.sstride + gi]));
    for (int t = 0; t < TT; ++t) tot[t] = _mm512_fmadd_ps(acc[t], s, tot[t]);
  }
  const float b = a.bias ? a.bias[r] : 0.0f;
  for (int t = 0; t < TT; ++t) a.y[(t0 + t) * a.R + r] = _mm512_reduce_add_ps(tot[t]) + b;
}

// One token x RT rows (a decode step's head): x is loaded once per 16 columns for all RT rows,
// and the RT independent FMA chains hide the latency that a single row's one chain waits on.
// Each row's sums run in exactly the order of table_row_avx512<BITS, 1, TAIL> (bit-identical).
template <int BITS, int RT, bool TAIL>
ANDA_TABLE_AVX512 static inline void table_rows1_avx512(const TableArgs& a, int64_t r, int64_t t) {
  const uint8_t* row[RT];
  __m512 tot[RT];
  for (int i = 0; i < RT; ++i) row[i] = a.packed + (r + i) * a.pstride, tot[i] = _mm512_setzero_ps();
  const float* x = a.x + t * a.K;
  for (int64_t g0 = 0, gi = 0; g0 < a.K; g0 += a.group, ++gi) {
    __m512 acc[RT];
    for (int i = 0; i < RT; ++i) acc[i] = _mm512_setzero_ps();
    const int64_t g1 = std::min<int64_t>(a.K, g0 + a.group);
    int64_t k = g0;
    for (; TAIL ? k + 16 <= g1 : k < g1; k += 16) {
      if ((k & 63) == 0)  // the next RT rows' line at this column: a head streamed from DRAM
        for (int i = 0; i < RT; ++i) _mm_prefetch((const char*)(row[i] + RT * a.pstride + (BITS == 8 ? k : k / 2)),
                                                  _MM_HINT_T0);
      const __m512 xv = _mm512_loadu_ps(x + k);
      for (int i = 0; i < RT; ++i) acc[i] = _mm512_fmadd_ps(codes16<BITS>(row[i], k), xv, acc[i]);
    }
    if (TAIL && k < g1) {  // as table_row_avx512
      const int n = (int)(g1 - k);
      const __m512 xv = x16_tail(x + k, n);
      for (int i = 0; i < RT; ++i) acc[i] = _mm512_fmadd_ps(codes16_tail<BITS>(row[i], k, n), xv, acc[i]);
    }
    for (int i = 0; i < RT; ++i)
      tot[i] = _mm512_fmadd_ps(acc[i], _mm512_set1_ps(_cvtsh_ss(a.scale[(r + i) * a.sstride + gi])), tot[i]);
  }
  for (int i = 0; i < RT; ++i)
    a.y[t * a.R + r + i] = _mm512_reduce_add_ps(tot[i]) + (a.bias ? a.bias[r + i] : 0.0f);
}

// TAIL: as table_rows_avx2.
template <int BITS, bool TAIL>
ANDA_TABLE_AVX512 static void table_rows_avx512(const TableArgs& a, int64_t r0, int64_t r1) {
  if (a.T == 1) {  // one token: rows four at a time
    int64_t r = r0;
    for (; r + 4 <= r1; r += 4) table_rows1_avx512<BITS, 4, TAIL>(a, r, 0);
    for (; r < r1; ++r) table_row_avx512<BITS, 1, TAIL>(a, r, 0);
    return;
  }
  for (int64_t tb = 0; tb < a.T; tb += kTableTokens) {
    const int64_t te = tb + kTableTokens < a.T ? tb + kTableTokens : a.T;
    for (int64_t r = r0; r < r1; ++r) {
      int64_t t = tb;
      for (; t + 8 <= te; t += 8) table_row_avx512<BITS, 8, TAIL>(a, r, t);
      if (t + 4 <= te) table_row_avx512<BITS, 4, TAIL>(a, r, t), t += 4;
      if (t + 2 <= te) table_row_avx512<BITS, 2, TAIL>(a, r, t), t += 2;
      if (t < te) table_row_avx512<BITS, 1, TAIL>(a, r, t);
    }
  }
}

#define ANDA_TABLE_BF16 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))

ANDA_TABLE_BF16 static void table_dequant_rows_bf16_avx512(const TableArgs& a, int64_t r0, int64_t r1,
                                                           uint16_t* w) {
  for (int64_t r = r0; r < r1; ++r) {
    const uint8_t* row = a.packed + r * a.pstride;
    uint16_t* out = w + (r - r0) * a.K;
    for (int64_t g0 = 0, gi = 0; g0 < a.K; g0 += a.group, ++gi) {
      const __m512 s = _mm512_set1_ps(_cvtsh_ss(a.scale[r * a.sstride + gi]));
      const int64_t g1 = std::min<int64_t>(a.K, g0 + a.group);
      int64_t k = g0;
      for (; k + 16 <= g1; k += 16) {
        const __m512 v = _mm512_mul_ps(a.bits == 8 ? codes16<8>(row, k) : codes16<4>(row, k), s);
        _mm256_storeu_si256((__m256i*)(out + k), (__m256i)_mm512_cvtneps_pbh(v));
      }
      if (k < g1) {  // the row's last columns: only they are stored
        const int n = (int)(g1 - k);
        const __m512 v = _mm512_mul_ps(a.bits == 8 ? codes16_tail<8>(row, k, n) : codes16_tail<4>(row, k, n), s);
        _mm256_mask_storeu_epi16(out + k, (__mmask16)((1u << n) - 1), (__m256i)_mm512_cvtneps_pbh(v));
      }
    }
  }
}

bool table_has_bf16_dequant(int isa, int64_t K, int group) {
#if defined(__x86_64__)
  // whole 16-column steps inside every group but the last, which may be partial (any K)
  return avx512bf16_usable() && isa >= ISA_AVX512 && group % 16 == 0;
#else
  return false;
#endif
}

void table_dequant_rows_bf16(const TableArgs& a, int64_t r0, int64_t r1, uint16_t* w) {
  table_dequant_rows_bf16_avx512(a, r0, r1, w);
}

void table_rows(int isa, const TableArgs& a, int64_t r0, int64_t r1) {
  // a vector path needs whole 16- (AVX-512) or 8-column (AVX2) steps inside every group but the
  // last, which may be shorter than the others and end in a partial step (any K)
  if (isa >= ISA_AVX512 && a.group % 16 == 0) {
    const bool tail = a.K % 16 != 0;
    if (a.bits == 8) tail ? table_rows_avx512<8, true>(a, r0, r1) : table_rows_avx512<8, false>(a, r0, r1);
    else tail ? table_rows_avx512<4, true>(a, r0, r1) : table_rows_avx512<4, false>(a, r0, r1);
  } else if (isa >= ISA_AVX2 && a.group % 8 == 0) {
    const bool tail = a.K % 8 != 0;
    if (a.bits == 8) tail ? table_rows_avx2<8, true>(a, r0, r1) : table_rows_avx2<8, false>(a, r0, r1);
    else tail ? table_rows_avx2<4, true>(a, r0, r1) : table_rows_avx2<4, false>(a, r0, r1);
  } else {
    table_rows_scalar(a, r0, r1);
  }
}

}  // namespace anda
