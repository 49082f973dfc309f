// Split-bfloat16 GEMM over AMX-BF16 tiles (split_gemm.h says what it computes). Per block of 32 x
// 32 outputs (four float32 C tiles, tmm0..tmm3, in registers for the whole reduction) and per step
// of 32 reduction values, 10 tile loads and 12 TDPBF16PS:
//     A hi (tmm4, tmm5) x B hi (tmm6, tmm7); B lo into tmm6, tmm7: A hi x B lo;
//     A lo into tmm4, tmm5, B hi again: A lo x B hi.
// The next step's 8 KB of A and B tiles are prefetched into L1 while a step runs (measured on a
// 2-core Xeon with AMX, 256 x 432 x 49152: 34 -> 27 ms without the A/B reuse above). Column blocks
// run in the outer loop and row blocks inside, so a column block's B tiles are read from memory
// once and the (small) A operand stays in L2; a long reduction (the gradient through a head: K =
// vocabulary) runs in chunks of kChunk steps, each chunk over every block, C reloaded per chunk.
// The same loops run over software tiles (SoftTiles: TDPBF16PS's documented arithmetic) where
// there are no AMX tiles, so the tests check layout, edges and chunking on any CPU.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "anda_kern.h"
#include "split_gemm.h"

namespace anda {

namespace {

constexpr int64_t kChunk = 16;      // steps per chunk of a long reduction (A + B chunk ~1.4 MB at M = 256, N = 432)
constexpr int64_t kLongSteps = 64;  // reductions of more steps than this run in chunks
constexpr float kMinNormal = 1.17549435e-38f;

inline float daz(float v) { return (v < kMinNormal && v > -kMinNormal) ? 0.0f * v : v; }

// hi / lo bf16 bits of v as the AVX-512 BF16 conversions make them: inputs below 2^-126 are zero,
// round to nearest even, results below 2^-126 flushed to zero (sign kept).
inline void split_bits(float v, uint16_t& hi, uint16_t& lo) {
  const float x = daz(v);
  hi = f32_to_bf16_bits(x);
  if ((hi & 0x7F80u) == 0) hi &= 0x8000u;
  const float r = daz(x - bf16_bits_to_float(hi));
  lo = f32_to_bf16_bits(r);
  if ((lo & 0x7F80u) == 0) lo &= 0x8000u;
}

// ---- tiles ----------------------------------------------------------------------------------
// Tile registers: C 0..3 (C[2 i + j]: row tile i, column tile j), A 4..5, B 6..7.

struct SoftTiles {
  float c[4][16][16];
  uint16_t ab[4][16][32];  // tmm4..tmm7: 16 rows of 64 bytes
  template <int T> void zero() { std::memset(c[T], 0, sizeof(c[T])); }
  template <int T> void load_c(const float* p, int64_t ld) {
    for (int r = 0; r < 16; ++r) std::memcpy(c[T][r], p + r * ld, 64);
  }
  template <int T> void store_c(float* p, int64_t ld) const {
    for (int r = 0; r < 16; ++r) std::memcpy(p + r * ld, c[T][r], 64);
  }
  template <int T> void load(const uint16_t* p) { std::memcpy(ab[T - 4], p, sizeof(ab[0])); }
  // TDPBF16PS: per row m and column n, for each pair i: c += a[m][2i] b[i][2n] + a[m][2i+1] b[i][2n+1],
  // one float32 addition per product (products of bf16 values are exact), DAZ on the inputs, FTZ on the result
  template <int C, int A, int B> void dp() {
    const uint16_t(*a)[32] = ab[A - 4], (*b)[32] = ab[B - 4];
    for (int m = 0; m < 16; ++m)
      for (int n = 0; n < 16; ++n) {
        float acc = c[C][m][n];
        for (int i = 0; i < 16; ++i)
          for (int e = 0; e < 2; ++e) acc += daz(bf16_bits_to_float(a[m][2 * i + e])) * daz(bf16_bits_to_float(b[i][2 * n + e]));
        c[C][m][n] = daz(acc);
      }
  }
  void prefetch(const uint16_t*, const uint16_t*) {}
  void begin() {}
  void end() {}
};

#if defined(__x86_64__)
#define ANDA_SPLIT_AMX __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512bf16")))

// AMX instructions as inline assembly (no target attribute needed: these loops stay baseline x86-64
// code and are only entered where split_tiles() found the tiles).
struct HardTiles {
  template <int T> void zero() { __asm__ volatile("tilezero %%tmm%c0" ::"i"(T)); }
  template <int T> void load_c(const float* p, int64_t ld) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(ld * 4), "i"(T) : "memory");
  }
  template <int T> void store_c(float* p, int64_t ld) const {
    __asm__ volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(ld * 4), "i"(T) : "memory");
  }
  template <int T> void load(const uint16_t* p) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"((int64_t)64), "i"(T) : "memory");
  }
  template <int C, int A, int B> void dp() {
    __asm__ volatile("tdpbf16ps %%tmm%c0, %%tmm%c1, %%tmm%c2" ::"i"(B), "i"(A), "i"(C));
  }
  // the next step's A and B tiles (4 KB each) towards L1
  void prefetch(const uint16_t* a, const uint16_t* b) {
    for (int64_t o = 0; o < kSplitStepValues; o += 32) {
      _mm_prefetch((const char*)(a + o), _MM_HINT_T0);
      _mm_prefetch((const char*)(b + o), _MM_HINT_T0);
    }
  }
  void begin() {
    AmxTileConfig cfg;
    for (int t = 0; t < 8; ++t) cfg.set(t, 16, 64);
    __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
  }
  void end() { __asm__ volatile("tilerelease" ::: "memory"); }
};
#endif

// One step of a 32 x 32 block: the 12 products of split_gemm.h, 10 tile loads.
template <class Tiles>
inline void block_step(Tiles& t, const uint16_t* a, const uint16_t* b) {
  t.template load<4>(a), t.template load<5>(a + kSplitTile);
  t.template load<6>(b), t.template load<7>(b + kSplitTile);
  t.template dp<0, 4, 6>(), t.template dp<1, 4, 7>(), t.template dp<2, 5, 6>(), t.template dp<3, 5, 7>();
  t.template load<6>(b + 2 * kSplitTile), t.template load<7>(b + 3 * kSplitTile);
  t.template dp<0, 4, 6>(), t.template dp<1, 4, 7>(), t.template dp<2, 5, 6>(), t.template dp<3, 5, 7>();
  t.template load<4>(a + 2 * kSplitTile), t.template load<5>(a + 3 * kSplitTile);
  t.template load<6>(b), t.template load<7>(b + kSplitTile);
  t.template dp<0, 4, 6>(), t.template dp<1, 4, 7>(), t.template dp<2, 5, 6>(), t.template dp<3, 5, 7>();
}

template <class Tiles>
void run(Tiles& t, const uint16_t* A, const uint16_t* B, int64_t M, int64_t N, int64_t K, float* C, int64_t ldc,
         int64_t nb0, int64_t nb1, int64_t s0, int64_t s1, bool accumulate) {
  const int64_t steps = split_steps(K), mblocks = split_blocks(M);
  const int64_t chunk = s1 - s0 > kLongSteps ? kChunk : std::max<int64_t>(s1 - s0, 1);
  alignas(64) float edge[kSplitBlock * kSplitBlock];  // a block that crosses M or N, zero-padded
  t.begin();
  for (int64_t c0 = s0; c0 < s1; c0 += chunk) {
    const int64_t c1 = std::min(c0 + chunk, s1);
    const bool load = accumulate || c0 > s0;
    for (int64_t nb = nb0; nb < nb1; ++nb) {
      const uint16_t* bblock = B + nb * steps * kSplitStepValues;
      const int64_t n = nb * kSplitBlock, nn = std::min(kSplitBlock, N - n);
      for (int64_t mb = 0; mb < mblocks; ++mb) {
        const uint16_t* ablock = A + mb * steps * kSplitStepValues;
        const int64_t m = mb * kSplitBlock, mm = std::min(kSplitBlock, M - m);
        const bool whole = mm == kSplitBlock && nn == kSplitBlock;
        float* cp = whole ? C + m * ldc + n : edge;
        const int64_t ld = whole ? ldc : kSplitBlock;
        if (load && !whole) {
          std::memset(edge, 0, sizeof(edge));
          for (int64_t r = 0; r < mm; ++r) std::memcpy(edge + r * kSplitBlock, C + (m + r) * ldc + n, nn * 4);
        }
        if (load) {
          t.template load_c<0>(cp, ld), t.template load_c<1>(cp + 16, ld);
          t.template load_c<2>(cp + 16 * ld, ld), t.template load_c<3>(cp + 16 * ld + 16, ld);
        } else {
          t.template zero<0>(), t.template zero<1>(), t.template zero<2>(), t.template zero<3>();
        }
        for (int64_t s = c0; s < c1; ++s) {
          if (s + 1 < c1) t.prefetch(ablock + (s + 1) * kSplitStepValues, bblock + (s + 1) * kSplitStepValues);
          block_step(t, ablock + s * kSplitStepValues, bblock + s * kSplitStepValues);
        }
        t.template store_c<0>(cp, ld), t.template store_c<1>(cp + 16, ld);
        t.template store_c<2>(cp + 16 * ld, ld), t.template store_c<3>(cp + 16 * ld + 16, ld);
        if (!whole)
          for (int64_t r = 0; r < mm; ++r) std::memcpy(C + (m + r) * ldc + n, edge + r * kSplitBlock, nn * 4);
      }
    }
  }
  t.end();
}

#if defined(__x86_64__)
// 32 float32 values -> their hi and lo bf16 bits (32 each), as split_bits does.
ANDA_SPLIT_AMX inline void split32(const float* x, uint16_t* hi, uint16_t* lo) {
  const __m512 x0 = _mm512_loadu_ps(x), x1 = _mm512_loadu_ps(x + 16);
  const __m512i h = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);
  const __m512 h0 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_castsi512_si256(h)), 16));
  const __m512 h1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm512_extracti64x4_epi64(h, 1)), 16));
  _mm512_storeu_si512(hi, h);
  _mm512_storeu_si512(lo, (__m512i)_mm512_cvtne2ps_pbh(_mm512_sub_ps(x1, h1), _mm512_sub_ps(x0, h0)));
}

ANDA_SPLIT_AMX void pack_a_avx512(const float* x, int64_t lda, int64_t M, int64_t K, uint16_t* out, int64_t mb0,
                                  int64_t mb1) {
  const int64_t steps = split_steps(K), full = K / kSplitStep;
  alignas(64) float row[kSplitStep];
  for (int64_t mb = mb0; mb < mb1; ++mb)
    for (int64_t s = 0; s < steps; ++s) {
      uint16_t* o = out + (mb * steps + s) * kSplitStepValues;
      for (int t = 0; t < 2; ++t)
        for (int r = 0; r < 16; ++r) {
          const int64_t i = mb * kSplitBlock + 16 * t + r;
          uint16_t* hi = o + t * kSplitTile + r * kSplitStep;
          uint16_t* lo = hi + 2 * kSplitTile;
          if (i < M && s < full) {
            split32(x + i * lda + s * kSplitStep, hi, lo);
          } else {
            const int64_t n = i < M ? K - s * kSplitStep : 0;
            for (int64_t j = 0; j < kSplitStep; ++j) row[j] = j < n ? x[i * lda + s * kSplitStep + j] : 0.0f;
            split32(row, hi, lo);
          }
        }
    }
}
#endif

}  // namespace

int split_tiles() {
  static const bool bf16 = amx_bf16_cpu();
  const int isa = select_isa();
  if (isa == ISA_AMX_EMU) return kSplitEmulated;
  return isa == ISA_AMX && bf16 && avx512bf16_usable() ? kSplitHardware : kSplitSoftware;
}

void split_pack_b(const float* w, int64_t sk, int64_t sn, int64_t K, int64_t N, uint16_t* out, int64_t nb0, int64_t nb1) {
  const int64_t steps = split_steps(K);
  for (int64_t nb = nb0; nb < nb1; ++nb)
    for (int64_t s = 0; s < steps; ++s) {
      uint16_t* o = out + (nb * steps + s) * kSplitStepValues;
      for (int t = 0; t < 2; ++t)
        for (int i = 0; i < 16; ++i)
          for (int c = 0; c < 16; ++c)
            for (int e = 0; e < 2; ++e) {
              const int64_t k = s * kSplitStep + 2 * i + e, n = nb * kSplitBlock + 16 * t + c;
              uint16_t hi = 0, lo = 0;
              if (k < K && n < N) split_bits(w[k * sk + n * sn], hi, lo);
              const int64_t at = (i * 16 + c) * 2 + e;
              o[t * kSplitTile + at] = hi, o[(2 + t) * kSplitTile + at] = lo;
            }
    }
}

void split_pack_a(const float* x, int64_t lda, int64_t M, int64_t K, uint16_t* out, int64_t mb0, int64_t mb1) {
#if defined(__x86_64__)
  if (avx512bf16_usable() && select_isa() >= ISA_AVX512) return pack_a_avx512(x, lda, M, K, out, mb0, mb1);
#endif
  const int64_t steps = split_steps(K);
  for (int64_t mb = mb0; mb < mb1; ++mb)
    for (int64_t s = 0; s < steps; ++s) {
      uint16_t* o = out + (mb * steps + s) * kSplitStepValues;
      for (int t = 0; t < 2; ++t)
        for (int r = 0; r < 16; ++r)
          for (int j = 0; j < kSplitStep; ++j) {
            const int64_t i = mb * kSplitBlock + 16 * t + r, k = s * kSplitStep + j;
            uint16_t hi = 0, lo = 0;
            if (i < M && k < K) split_bits(x[i * lda + k], hi, lo);
            o[t * kSplitTile + r * kSplitStep + j] = hi, o[(2 + t) * kSplitTile + r * kSplitStep + j] = lo;
          }
    }
}

void split_gemm(int tiles, const uint16_t* A, const uint16_t* B, int64_t M, int64_t N, int64_t K, float* C,
                int64_t ldc, int64_t nb0, int64_t nb1, int64_t s0, int64_t s1, bool accumulate) {
#if defined(__x86_64__)
  if (tiles == kSplitHardware) {
    HardTiles t;
    return run(t, A, B, M, N, K, C, ldc, nb0, nb1, s0, s1, accumulate);
  }
#endif
  SoftTiles t;
  run(t, A, B, M, N, K, C, ldc, nb0, nb1, s0, s1, accumulate);
}

}  // namespace anda
