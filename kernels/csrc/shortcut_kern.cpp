// Kernels of andactl::shortcut_add (torch glue in shortcut_cpu.cpp, schema and reference in
// kernels/shortcut.py): out[t] = (r[t] @ S) rounded to the dtype, + u[t], for the few rows of a
// decode step. Each output's float32 sum runs over i in order, r[t, i] * S[i, j] added by a fused
// multiply-add on the vector levels (the scalar loop rounds the product first), then is rounded to
// the dtype and added to u as torch adds two tensors of that dtype (in float, rounded once).
// Vector levels (the same bits at AVX2 and AVX-512): a tile of up to 4 tokens x a block of columns
// keeps its sums in registers while S streams through once per tile (AVX-512: 384 / TT columns,
// AVX2: 96 / TT).
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "anda_kern.h"

namespace anda {
namespace {

constexpr int kTokenTile = 4;
// Rows of S ahead that the AVX-512 tiles prefetch (S of a decode step comes from L3 or DRAM). One
// token, 432 x 432 bfloat16, 1 thread of a 2-core Xeon, 60 / 240 distinct matrices (L3 / DRAM):
// none 36 / 48 us, 8 rows 29 / 44, 16 rows 29 / 41, 32 rows 35 / 47; in a sliced SmolLM2's decode
// step 8 and 16 measure the same (~50 us per call, torch's matmul ~75).
constexpr int64_t kShortcutAhead = 8;

// float32 value of element i of p, for element type DT (kAttn*).
template <int DT>
inline float load1(const void* p, int64_t i) {
  if constexpr (DT == kAttnF32) return static_cast<const float*>(p)[i];
  const uint16_t h = static_cast<const uint16_t*>(p)[i];
  if constexpr (DT == kAttnBF16) return bf16_bits_to_float(h);
  return f16_bits_to_float(h);
}

// float -> float16 bits, round to nearest even (c10::Half's conversion, scalar).
inline uint16_t f32_to_f16_bits(float f) {
  uint16_t h;
  f32_to_f16(ISA_SCALAR, &f, 1, &h);
  return h;
}

// Row t, columns c0..c1-1 of out from their float32 sums acc[c1 - c0].
template <int DT>
void finish_row(const ShortcutArgs& a, int64_t t, int64_t c0, int64_t c1, const float* acc) {
  for (int64_t j = c0; j < c1; ++j) {
    const int64_t o = t * a.dout + j;
    if constexpr (DT == kAttnF32) {
      static_cast<float*>(a.out)[o] = acc[j - c0] + static_cast<const float*>(a.u)[o];
    } else {
      constexpr bool bf = DT == kAttnBF16;
      const float p = bf ? bf16_bits_to_float(f32_to_bf16_bits(acc[j - c0]))
                         : f16_bits_to_float(f32_to_f16_bits(acc[j - c0]));  // r @ S, rounded
      const float v = p + load1<DT>(a.u, o);
      static_cast<uint16_t*>(a.out)[o] = bf ? f32_to_bf16_bits(v) : f32_to_f16_bits(v);
    }
  }
}

template <int DT>
void rows_scalar(const ShortcutArgs& a, int64_t c0, int64_t c1) {
  float acc[kShortcutCols];
  for (int64_t t = 0; t < a.T; ++t)
    for (int64_t b0 = c0; b0 < c1; b0 += kShortcutCols) {
      const int64_t b1 = std::min(c1, b0 + kShortcutCols);
      std::fill(acc, acc + (b1 - b0), 0.0f);
      for (int64_t i = 0; i < a.din; ++i) {
        const float x = load1<DT>(a.r, t * a.din + i);
        for (int64_t j = b0; j < b1; ++j) acc[j - b0] += x * load1<DT>(a.S, i * a.dout + j);
      }
      finish_row<DT>(a, t, b0, b1, acc);
    }
}

// f(std::integral_constant<int, tt>) for a token tile of tt = 1..kTokenTile rows: the tiles' token
// count is a template parameter, so that their sums stay in registers.
template <class F>
inline void by_tile(int tt, F&& f) {
  switch (tt) {
    case 1: return f(std::integral_constant<int, 1>{});
    case 2: return f(std::integral_constant<int, 2>{});
    case 3: return f(std::integral_constant<int, 3>{});
    default: return f(std::integral_constant<int, kTokenTile>{});
  }
}

// Rows t0..t0+tt-1 of r as float32 (exact), xf [tt][din]: the tiles broadcast from it.
template <int DT>
void to_float(const ShortcutArgs& a, int64_t t0, int64_t tt, float* xf) {
  for (int64_t k = 0; k < tt * a.din; ++k) xf[k] = load1<DT>(a.r, t0 * a.din + k);
}

// f(std::integral_constant<int, TT>, xf, t0) for each tile of up to kTokenTile rows of r, with xf
// holding the tile's rows as float32: the vector levels' outer loop.
template <int DT, class F>
void token_tiles(const ShortcutArgs& a, F&& f) {
  std::vector<float> xf((size_t)(kTokenTile * a.din));
  for (int64_t t0 = 0; t0 < a.T; t0 += kTokenTile) {
    const int tt = (int)std::min<int64_t>(kTokenTile, a.T - t0);
    to_float<DT>(a, t0, tt, xf.data());
    by_tile(tt, [&](auto TT) { f(TT, xf.data(), t0); });
  }
}

#if defined(__x86_64__)
#define ANDA_SC_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ANDA_SC_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl")))

// 8 float32 values of S at element k.
template <int DT>
ANDA_SC_AVX2 inline __m256 load8(const void* S, int64_t k) {
  if constexpr (DT == kAttnF32) return _mm256_loadu_ps(static_cast<const float*>(S) + k);
  const __m128i h = _mm_loadu_si128((const __m128i*)(static_cast<const uint16_t*>(S) + k));
  if constexpr (DT == kAttnF16) return _mm256_cvtph_ps(h);
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// Tokens t0..t0+TT-1, columns b0..b0+8V-1 (all present): TT x V sums in registers.
template <int DT, int TT, int V>
ANDA_SC_AVX2 void tile_avx2(const ShortcutArgs& a, const float* xf, int64_t t0, int64_t b0) {
  __m256 s[TT][V];
  for (int t = 0; t < TT; ++t)
    for (int v = 0; v < V; ++v) s[t][v] = _mm256_setzero_ps();
  for (int64_t i = 0; i < a.din; ++i)
    for (int v = 0; v < V; ++v) {
      const __m256 w = load8<DT>(a.S, i * a.dout + b0 + 8 * v);
      for (int t = 0; t < TT; ++t) s[t][v] = _mm256_fmadd_ps(_mm256_broadcast_ss(xf + t * a.din + i), w, s[t][v]);
    }
  alignas(32) float acc[8 * V];
  for (int t = 0; t < TT; ++t) {
    for (int v = 0; v < V; ++v) _mm256_store_ps(acc + 8 * v, s[t][v]);
    finish_row<DT>(a, t0 + t, b0, b0 + 8 * V, acc);
  }
}

// Blocks of 8V columns (V = 12 / TT: the sums fill 12 of the 16 registers), then single vectors,
// then the last < 8 columns.
template <int DT, int TT>
ANDA_SC_AVX2 void tiles_avx2(const ShortcutArgs& a, const float* xf, int64_t t0, int64_t c0, int64_t c1) {
  constexpr int V = 12 / TT;
  int64_t b0 = c0;
  for (; b0 + 8 * V <= c1; b0 += 8 * V) tile_avx2<DT, TT, V>(a, xf, t0, b0);
  for (; b0 + 8 <= c1; b0 += 8) tile_avx2<DT, TT, 1>(a, xf, t0, b0);
  if (b0 == c1) return;
  float acc[8];  // the last < 8 columns: fused multiply-adds in the same order, one lane at a time
  for (int t = 0; t < TT; ++t) {
    std::fill(acc, acc + (c1 - b0), 0.0f);
    for (int64_t i = 0; i < a.din; ++i)
      for (int64_t j = b0; j < c1; ++j) acc[j - b0] = __builtin_fmaf(xf[t * a.din + i], load1<DT>(a.S, i * a.dout + j), acc[j - b0]);
    finish_row<DT>(a, t0 + t, b0, c1, acc);
  }
}

template <int DT>
ANDA_SC_AVX2 void rows_avx2(const ShortcutArgs& a, int64_t c0, int64_t c1) {
  token_tiles<DT>(a, [&](auto TT, const float* xf, int64_t t0) { tiles_avx2<DT, TT.value>(a, xf, t0, c0, c1); });
}

// 16 float32 values of S at element k, lanes outside mask m zero.
template <int DT>
ANDA_SC_AVX512 inline __m512 load16(const void* S, int64_t k, __mmask16 m) {
  if constexpr (DT == kAttnF32) return _mm512_maskz_loadu_ps(m, static_cast<const float*>(S) + k);
  const __m256i h = _mm256_maskz_loadu_epi16(m, static_cast<const uint16_t*>(S) + k);
  if constexpr (DT == kAttnF16) return _mm512_cvtph_ps(h);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Tokens t0..t0+TT-1, columns b0..b0+16NV-1, the lanes past n masked (16(NV-1) < n <= 16NV): TT x NV
// sums in registers.
template <int DT, int TT, int NV>
ANDA_SC_AVX512 void tile_avx512(const ShortcutArgs& a, const float* xf, int64_t t0, int64_t b0, int64_t n) {
  const __mmask16 last = (__mmask16)((1u << (n - 16 * (NV - 1))) - 1u);
  __m512 s[TT][NV];
  for (int t = 0; t < TT; ++t)
    for (int v = 0; v < NV; ++v) s[t][v] = _mm512_setzero_ps();
  constexpr int64_t esize = DT == kAttnF32 ? 4 : 2;
  for (int64_t i = 0; i < a.din; ++i)
    for (int v = 0; v < NV; ++v) {
      if ((16 * v * esize) % 64 == 0 && i + kShortcutAhead < a.din)  // each cache line of the row kShortcutAhead ahead
        _mm_prefetch(static_cast<const char*>(a.S) + ((i + kShortcutAhead) * a.dout + b0 + 16 * v) * esize, _MM_HINT_T0);
      const __m512 w = load16<DT>(a.S, i * a.dout + b0 + 16 * v, v + 1 < NV ? (__mmask16)0xFFFF : last);
      for (int t = 0; t < TT; ++t) s[t][v] = _mm512_fmadd_ps(_mm512_set1_ps(xf[t * a.din + i]), w, s[t][v]);
    }
  alignas(64) float acc[16 * NV];
  for (int t = 0; t < TT; ++t) {
    for (int v = 0; v < NV; ++v) _mm512_store_ps(acc + 16 * v, s[t][v]);
    finish_row<DT>(a, t0 + t, b0, b0 + n, acc);
  }
}

// A block of n columns (n <= 16 * 24 / TT) for TT tokens, by its number of vectors.
template <int DT, int TT, int NV = 24 / TT>
ANDA_SC_AVX512 void block_avx512(const ShortcutArgs& a, const float* xf, int64_t t0, int64_t b0, int64_t n) {
  if constexpr (NV > 1)
    if (n <= 16 * (NV - 1)) return block_avx512<DT, TT, NV - 1>(a, xf, t0, b0, n);
  tile_avx512<DT, TT, NV>(a, xf, t0, b0, n);
}

template <int DT>
ANDA_SC_AVX512 void rows_avx512(const ShortcutArgs& a, int64_t c0, int64_t c1) {
  token_tiles<DT>(a, [&](auto TT, const float* xf, int64_t t0) {
    constexpr int64_t cols = 16 * (24 / TT.value);
    for (int64_t b0 = c0; b0 < c1; b0 += cols)
      block_avx512<DT, TT.value>(a, xf, t0, b0, std::min<int64_t>(cols, c1 - b0));
  });
}
#endif

template <int DT>
void rows_at(int isa, const ShortcutArgs& a, int64_t c0, int64_t c1) {
#if defined(__x86_64__)
  if (isa >= ISA_AVX512) return rows_avx512<DT>(a, c0, c1);
  if (isa >= ISA_AVX2) return rows_avx2<DT>(a, c0, c1);
#endif
  rows_scalar<DT>(a, c0, c1);
}

}  // namespace

void shortcut_rows(int isa, const ShortcutArgs& a, int64_t c0, int64_t c1) {
  if (a.dtype == kAttnF32) return rows_at<kAttnF32>(isa, a, c0, c1);
  if (a.dtype == kAttnBF16) return rows_at<kAttnBF16>(isa, a, c0, c1);
  rows_at<kAttnF16>(isa, a, c0, c1);
}

}  // namespace anda
