// Packed GEMM of the andactl CPU extension: INT4 weight prepack (layout in anda_kern.h) and the
// scalar / AVX2 / AVX-512 VNNI micro-kernels over one 16-row prepacked block, chosen at run time.
// Each prepacked weight byte is loaded once per tile of TT tokens (AVX2 with 2+ tokens: once per
// row half) and split into two nibble vectors (rows 0..7 and 8..15 x 4 codes); a token's 4
// activation bytes are broadcast and multiplied with u8 x s8 dot products (maddubs/vpdpbusd), so
// weight rows stream once per tile. AVX2 at M = 8 reads magnitudes (u8) and signs instead of two
// 7-bit chunks (avx2_magsign, mk_avx2_ms_rows): one maddubs per value instead of two.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "anda_kern.h"

namespace anda {

#define ANDA_AVX2 __attribute__((target("avx2,fma,f16c")))
#define ANDA_AVX512 __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni")))

// ---------------------------------------------------------------- prepack
static void prepack_block_scalar(const uint8_t* w, int64_t wstride, int64_t N, int64_t Gw64,
                                 int64_t b, uint8_t* dst) {
  std::memset(dst, 0, (size_t)(Gw64 * kGroupBytes));
  for (int r = 0; r < 16; ++r) {
    const int64_t n = b * 16 + r;
    if (n >= N) break;
    const int shift = r < 8 ? 0 : 4;
    for (int64_t g = 0; g < Gw64; ++g) {
      const uint8_t* src = w + n * wstride + g * 32;
      uint8_t* d = dst + g * kGroupBytes + (r & 7) * 4;
      for (int p = 0; p < 64; ++p) {
        const uint8_t code = p < 32 ? (src[p] & 15) : (src[p - 32] >> 4);
        d[(p >> 2) * 32 + (p & 3)] |= (uint8_t)(code << shift);
      }
    }
  }
}

ANDA_AVX2 static inline void transpose8x8(__m256i r[8], __m256i o[8]) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int i = 0; i < 2; ++i) {
    u[4 * i + 0] = _mm256_unpacklo_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 1] = _mm256_unpackhi_epi64(t[4 * i + 0], t[4 * i + 2]);
    u[4 * i + 2] = _mm256_unpacklo_epi64(t[4 * i + 1], t[4 * i + 3]);
    u[4 * i + 3] = _mm256_unpackhi_epi64(t[4 * i + 1], t[4 * i + 3]);
  }
  for (int k = 0; k < 4; ++k) {
    o[k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x20);
    o[4 + k] = _mm256_permute2x128_si256(u[k], u[4 + k], 0x31);
  }
}

// Full block (16 valid rows): per group, rows 8h..8h+7 are transposed to [kq][8 rows][4 codes]
// (dword transposes of the even-column and odd-column nibbles), then rows 8..15 go high.
ANDA_AVX2 static void prepack_block_avx2(const uint8_t* w, int64_t wstride, int64_t Gw64,
                                         int64_t b, uint8_t* dst) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int64_t g = 0; g < Gw64; ++g) {
    __m256i half[2][16];
    for (int h = 0; h < 2; ++h) {
      __m256i lo[8], hi[8];
      for (int r = 0; r < 8; ++r) {
        const __m256i v =
            _mm256_loadu_si256((const __m256i*)(w + (b * 16 + 8 * h + r) * wstride + g * 32));
        lo[r] = _mm256_and_si256(v, low4);
        hi[r] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      }
      transpose8x8(lo, half[h]);
      transpose8x8(hi, half[h] + 8);
    }
    uint8_t* d = dst + g * kGroupBytes;
    for (int kq = 0; kq < 16; ++kq)
      _mm256_storeu_si256((__m256i*)(d + kq * 32),
                          _mm256_or_si256(half[0][kq], _mm256_slli_epi16(half[1][kq], 4)));
  }
}

void prepack_blocks(int isa, const uint8_t* w, int64_t wstride, int64_t N, int64_t Gw64,
                    int64_t b0, int64_t b1, uint8_t* out) {
  for (int64_t b = b0; b < b1; ++b) {
    uint8_t* dst = out + (b - b0) * Gw64 * kGroupBytes;
    if (isa >= ISA_AVX2 && (b + 1) * 16 <= N) prepack_block_avx2(w, wstride, Gw64, b, dst);
    else prepack_block_scalar(w, wstride, N, Gw64, b, dst);
  }
}

// ---------------------------------------------------------------- micro-kernels
// TT tokens starting at A (row stride tstride bytes), S/U row stride G; one prepacked 16-row
// block Wp; SC/Z [Gw][16] (weight group gw = g / gpw); out [TT][16].
struct MkArgs {
  const int8_t* A;
  int64_t tstride;
  const int32_t* S;
  const float* U;
  const uint8_t* Wp;
  BlockedScales SC;
  const uint8_t* Z;
  int G, C, gpw;
  float* out;
  const uint8_t* wend;  // end of the work item's weight stream: prefetches stop there
  int M;                // mantissa bits: chunk magnitudes are <= 2^min(M, 7) - 1
};

static void mk_scalar(const MkArgs& a, int TT) {
  for (int t = 0; t < TT; ++t) {
    for (int l = 0; l < 16; ++l) {
      float y = 0.0f;
      for (int g = 0; g < a.G; ++g) {
        const uint8_t* w = a.Wp + (int64_t)g * kGroupBytes + (l & 7) * 4;
        const int sh = l < 8 ? 0 : 4;
        int32_t tot = 0;
        for (int c = 0; c < a.C; ++c) {
          const int8_t* x = a.A + t * a.tstride + ((int64_t)g * a.C + c) * 64;
          int32_t s = 0;
          for (int p = 0; p < 64; ++p) s += (int32_t)x[p] * ((w[(p >> 2) * 32 + (p & 3)] >> sh) & 15);
          tot += s << (7 * c);
        }
        const int gw = g / a.gpw;
        const int32_t i = tot - (int32_t)a.Z[gw * 16 + l] * a.S[(int64_t)t * a.G + g];
        y += (float)i * (a.SC[gw * 16 + l] * a.U[(int64_t)t * a.G + g]);
      }
      a.out[t * 16 + l] = y;
    }
  }
}

// An empty asm that pins v to a register: stops GCC from re-associating an unrolled chain of
// integer adds into a tree whose partial sums spill (measured: 128 stack accesses per call).
ANDA_AVX2 static inline void keep_in_register(__m256i& v) { __asm__("" : "+x"(v)); }

// Scales and zero points of 8 (AVX2) or 16 (AVX-512) rows at element e of the blocked copies.
ANDA_AVX2 static inline __m256 scales8(const BlockedScales& sc, int64_t e) {
  return sc.f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i*)(sc.f16 + e))) : _mm256_loadu_ps(sc.f32 + e);
}
ANDA_AVX2 static inline __m256i zeros8(const uint8_t* z) {
  return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i*)z));
}
ANDA_AVX512 static inline __m512 scales16(const BlockedScales& sc, int64_t e) {
  return sc.f16 ? _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(sc.f16 + e))) : _mm512_loadu_ps(sc.f32 + e);
}
ANDA_AVX512 static inline __m512i zeros16(const uint8_t* z) {
  return _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)z));
}

// Group g's float update of the AVX2 kernels (weight group gw): y += (tot - z * S) * (scale * U)
// per token and row half, in group order. ShortS: |S| < 2^15, so z * S is one vpmaddwd (z's dwords
// are int16 pairs (z, 0)); else vpmulld.
template <int TT, int H0, int NH, bool ShortS>
ANDA_AVX2 static inline __attribute__((always_inline)) void group_to_float(const MkArgs& a, int g, int gw,
                                                                          const __m256i (&tot)[TT][NH],
                                                                          __m256 (&y)[TT][NH]) {
  for (int h = 0; h < NH; ++h) {
    const __m256i z = zeros8(a.Z + gw * 16 + 8 * (H0 + h));
    const __m256 sc = scales8(a.SC, gw * 16 + 8 * (H0 + h));
    for (int t = 0; t < TT; ++t) {
      const __m256i sv = _mm256_set1_epi32(a.S[(int64_t)t * a.G + g]);
      const __m256i zs = ShortS ? _mm256_madd_epi16(z, sv) : _mm256_mullo_epi32(z, sv);
      const __m256i i = _mm256_sub_epi32(tot[t][h], zs);
      const __m256 su = _mm256_mul_ps(sc, _mm256_set1_ps(a.U[(int64_t)t * a.G + g]));
      y[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), su, y[t][h]);
    }
  }
}

// Row halves H0 .. H0+NH-1 of the block (half h = rows 8h..8h+7: the low / high nibbles) for TT
// tokens. Per token and half the live registers are one int16 accumulator per chunk, one int32
// group total and one float32 sum: mk_avx2 runs both halves at once (weights loaded once) for one
// token and one half at a time for 2+ tokens, so that nothing spills from the 16 ymm registers.
// The float updates per (token, row) run in group order: y += i * (sc * u), fused, as before.
// SUB int16 sub-sums per group, of 16 / SUB k-quads each: a maddubs lane adds two products q * a
// (q <= 15) per k-quad, so the sub-sum stays within int16 for SUB = 2 with any chunk (|a| <= 127:
// 8 x 3810) and for SUB = 1 with one chunk of M <= kWholeGroupBits (|a| <= 63: 16 x 1890 =
// 30240), which halves the widening to int32. With C = 1 the group sum S fits int16 (64 x 127),
// so z * S is one vpmaddwd.
template <int TT, int C, int H0, int NH, int SUB>
ANDA_AVX2 static inline void mk_avx2_rows(const MkArgs& a) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m256 y[TT][NH];
  for (int t = 0; t < TT; ++t)
    for (int h = 0; h < NH; ++h) y[t][h] = _mm256_setzero_ps();
  for (int g = 0, gw = 0, gi = 0; g < a.G; ++g) {
    const uint8_t* w = a.Wp + (int64_t)g * kGroupBytes;
    const int8_t* ag = a.A + (int64_t)g * C * 64;
    __m256i tot[TT][NH];
    for (int t = 0; t < TT; ++t)
      for (int h = 0; h < NH; ++h) tot[t][h] = _mm256_setzero_si256();
    constexpr int KQ = 16 / SUB;  // k-quads per int16 sub-sum
#pragma GCC unroll 2
    for (int half = 0; half < SUB; ++half) {
      const uint8_t* wh = w + half * KQ * 32;
      const int8_t* ah = ag + half * KQ * 4;
      __m256i acc[TT][C][NH];
      for (int t = 0; t < TT; ++t)
        for (int c = 0; c < C; ++c)
          for (int h = 0; h < NH; ++h) acc[t][c][h] = _mm256_setzero_si256();
#pragma GCC unroll 16
      for (int kq = 0; kq < KQ; ++kq) {
        if ((kq & 1) == 0) prefetch_weights(wh + kq * 32, a.wend);
        const __m256i v = _mm256_loadu_si256((const __m256i*)(wh + kq * 32));
        __m256i wv[NH];
        for (int h = 0; h < NH; ++h)
          wv[h] = H0 + h == 0 ? _mm256_and_si256(v, low4)
                              : _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        for (int t = 0; t < TT; ++t)
          for (int c = 0; c < C; ++c) {
            int32_t q4;
            std::memcpy(&q4, ah + t * a.tstride + c * 64 + kq * 4, 4);
            const __m256i x = _mm256_set1_epi32(q4);
            for (int h = 0; h < NH; ++h) {
              acc[t][c][h] = _mm256_add_epi16(acc[t][c][h], _mm256_maddubs_epi16(wv[h], x));
              keep_in_register(acc[t][c][h]);
            }
          }
      }
      for (int c = 0; c < C; ++c) {
        const __m256i mul = _mm256_set1_epi16((int16_t)(1 << (7 * c)));  // chunk weight 2^7c
        for (int t = 0; t < TT; ++t)
          for (int h = 0; h < NH; ++h)
            tot[t][h] = _mm256_add_epi32(tot[t][h], _mm256_madd_epi16(acc[t][c][h], mul));
      }
    }
    group_to_float<TT, H0, NH, C == 1>(a, g, gw, tot, y);
    if (++gi == a.gpw) gi = 0, ++gw;  // gw = g / gpw without a division per group
  }
  for (int t = 0; t < TT; ++t)
    for (int h = 0; h < NH; ++h) _mm256_storeu_ps(a.out + t * 16 + 8 * (H0 + h), y[t][h]);
}

constexpr int kWholeGroupBits = 6;

// M = 8 as magnitude / sign (avx2_magsign; A per group: |m| u8 [64], sign s8 [64]): per k-quad and
// token one maddubs of the magnitudes against the codes given the activations' signs (vpsignb),
// instead of one per 7-bit chunk. A lane adds two products <= 255 x 15, so 4 k-quads (30600) fit
// an int16 sub-sum; |S| <= 64 x 255 < 2^15, so z * S is one vpmaddwd. Same integer sums as the
// two-chunk kernel.
template <int TT, int H0, int NH>
ANDA_AVX2 static inline void mk_avx2_ms_rows(const MkArgs& a) {
  constexpr int KQ = 4;  // k-quads per int16 sub-sum
  const __m256i low4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  __m256 y[TT][NH];
  for (int t = 0; t < TT; ++t)
    for (int h = 0; h < NH; ++h) y[t][h] = _mm256_setzero_ps();
  for (int g = 0, gw = 0, gi = 0; g < a.G; ++g) {
    const uint8_t* w = a.Wp + (int64_t)g * kGroupBytes;
    const int8_t* ag = a.A + (int64_t)g * 128;
    __m256i tot[TT][NH];
    for (int t = 0; t < TT; ++t)
      for (int h = 0; h < NH; ++h) tot[t][h] = _mm256_setzero_si256();
#pragma GCC unroll 4
    for (int q = 0; q < 16 / KQ; ++q) {
      __m256i acc[TT][NH];
      for (int t = 0; t < TT; ++t)
        for (int h = 0; h < NH; ++h) acc[t][h] = _mm256_setzero_si256();
#pragma GCC unroll 4
      for (int kk = 0; kk < KQ; ++kk) {
        const int kq = q * KQ + kk;
        if ((kq & 1) == 0) prefetch_weights(w + kq * 32, a.wend);
        const __m256i v = _mm256_loadu_si256((const __m256i*)(w + kq * 32));
        __m256i wv[NH];
        for (int h = 0; h < NH; ++h)
          wv[h] = H0 + h == 0 ? _mm256_and_si256(v, low4) : _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
        for (int t = 0; t < TT; ++t) {
          int32_t m4, s4;
          std::memcpy(&m4, ag + t * a.tstride + kq * 4, 4);
          std::memcpy(&s4, ag + t * a.tstride + 64 + kq * 4, 4);
          const __m256i xm = _mm256_set1_epi32(m4), xs = _mm256_set1_epi32(s4);
          for (int h = 0; h < NH; ++h) {
            acc[t][h] = _mm256_add_epi16(acc[t][h], _mm256_maddubs_epi16(xm, _mm256_sign_epi8(wv[h], xs)));
            keep_in_register(acc[t][h]);
          }
        }
      }
      for (int t = 0; t < TT; ++t)
        for (int h = 0; h < NH; ++h) tot[t][h] = _mm256_add_epi32(tot[t][h], _mm256_madd_epi16(acc[t][h], ones));
    }
    group_to_float<TT, H0, NH, true>(a, g, gw, tot, y);
    if (++gi == a.gpw) gi = 0, ++gw;
  }
  for (int t = 0; t < TT; ++t)
    for (int h = 0; h < NH; ++h) _mm256_storeu_ps(a.out + t * 16 + 8 * (H0 + h), y[t][h]);
}

ANDA_AVX2 static void to_magsign_avx2(int8_t* A, int64_t rows, int64_t G) {
  const __m256i one = _mm256_set1_epi8(1), zero = _mm256_setzero_si256();
  for (int64_t i = 0; i < rows * G; ++i)
    for (int j = 0; j < 64; j += 32) {
      int8_t* p = A + i * 128 + j;
      const __m256i lo = _mm256_loadu_si256((const __m256i*)p), hi = _mm256_loadu_si256((const __m256i*)(p + 64));
      // |hi| <= 1 at M = 8: its bit 0 shifted to bit 7 of the same byte
      const __m256i mag = _mm256_or_si256(_mm256_abs_epi8(lo), _mm256_slli_epi16(_mm256_abs_epi8(hi), 7));
      const __m256i sign = _mm256_or_si256(_mm256_cmpgt_epi8(zero, _mm256_or_si256(lo, hi)), one);
      _mm256_storeu_si256((__m256i*)p, mag);
      _mm256_storeu_si256((__m256i*)(p + 64), sign);
    }
}

void to_magsign(int8_t* A, int64_t rows, int64_t G) { to_magsign_avx2(A, rows, G); }

template <int TT, int C, int SUB>
ANDA_AVX2 static void mk_avx2_sub(const MkArgs& a) {
  if (TT == 1) {
    mk_avx2_rows<TT, C, 0, 2, SUB>(a);
  } else {
    mk_avx2_rows<TT, C, 0, 1, SUB>(a);
    mk_avx2_rows<TT, C, 1, 1, SUB>(a);
  }
}

template <int TT, int C>
ANDA_AVX2 static void mk_avx2(const MkArgs& a) {
  if constexpr (C == 2) {
    if (avx2_magsign(ISA_AVX2, a.M)) {
      if (TT == 1) return mk_avx2_ms_rows<TT, 0, 2>(a);
      mk_avx2_ms_rows<TT, 0, 1>(a);
      return mk_avx2_ms_rows<TT, 1, 1>(a);
    }
  }
  if (C == 1 && a.M <= kWholeGroupBits) mk_avx2_sub<TT, C, 1>(a);
  else mk_avx2_sub<TT, C, 2>(a);
}

template <int TT, int C>
ANDA_AVX512 static void mk_avx512(const MkArgs& a) {
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  __m512 y[TT];
  for (int t = 0; t < TT; ++t) y[t] = _mm512_setzero_ps();
  for (int g = 0; g < a.G; ++g) {
    const uint8_t* w = a.Wp + (int64_t)g * kGroupBytes;
    const int8_t* ag = a.A + (int64_t)g * C * 64;
    __m512i acc[TT][C];
    for (int t = 0; t < TT; ++t)
      for (int c = 0; c < C; ++c) acc[t][c] = _mm512_setzero_si512();
    for (int kq = 0; kq < 16; ++kq) {
      if ((kq & 1) == 0) prefetch_weights(w + kq * 32, a.wend);
      const __m256i v = _mm256_loadu_si256((const __m256i*)(w + kq * 32));
      const __m512i wv =
          _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low4)),
                             _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), 1);
      for (int t = 0; t < TT; ++t)
        for (int c = 0; c < C; ++c) {
          int32_t q4;
          std::memcpy(&q4, ag + t * a.tstride + c * 64 + kq * 4, 4);
          acc[t][c] = _mm512_dpbusd_epi32(acc[t][c], wv, _mm512_set1_epi32(q4));
        }
    }
    const int gw = g / a.gpw;
    const __m512i z = zeros16(a.Z + gw * 16);
    const __m512 sc = scales16(a.SC, gw * 16);
    for (int t = 0; t < TT; ++t) {
      __m512i tot = acc[t][0];
      for (int c = 1; c < C; ++c) tot = _mm512_add_epi32(tot, _mm512_slli_epi32(acc[t][c], 7 * c));
      const __m512i i = _mm512_sub_epi32(
          tot, _mm512_mullo_epi32(z, _mm512_set1_epi32(a.S[(int64_t)t * a.G + g])));
      const __m512 su = _mm512_mul_ps(sc, _mm512_set1_ps(a.U[(int64_t)t * a.G + g]));
      y[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), su, y[t]);
    }
  }
  for (int t = 0; t < TT; ++t) _mm512_storeu_ps(a.out + t * 16, y[t]);
}

// One token (decode), C <= 2 chunks: each 64-byte load covers two k-quads (dword lanes 0..7 =
// k-quad 2p, rows 0..7 / 8..15 in the low / high nibbles; lanes 8..15 = k-quad 2p + 1), against
// the token's activation dwords 2p (lanes 0..7) and 2p + 1 (lanes 8..15). Half the loads and
// nibble splits of mk_avx512 per weight byte; the two lane halves are added per group, giving
// the same int32 group sums (and the same floats) as mk_avx512<1, C>.
template <int C>
ANDA_AVX512 static void mk_avx512_1(const MkArgs& a) {
  const __m512i low4 = _mm512_set1_epi8(0x0F);
  const __m512i half = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0);
  const __m512i even = _mm512_set_epi32(23, 22, 21, 20, 19, 18, 17, 16, 7, 6, 5, 4, 3, 2, 1, 0);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(8));
  __m512i idx[8];
  for (int p = 0; p < 8; ++p) idx[p] = _mm512_add_epi32(half, _mm512_set1_epi32(2 * p));
  __m512 y = _mm512_setzero_ps();
  for (int g = 0, gw = 0, gi = 0; g < a.G; ++g) {
    const uint8_t* w = a.Wp + (int64_t)g * kGroupBytes;
    const int8_t* ag = a.A + (int64_t)g * C * 64;
    __m512i av[C], lo[C], hi[C];
    for (int c = 0; c < C; ++c) {
      av[c] = _mm512_loadu_si512((const void*)(ag + c * 64));
      lo[c] = hi[c] = _mm512_setzero_si512();
    }
#pragma GCC unroll 8
    for (int p = 0; p < 8; ++p) {
      prefetch_weights(w + p * 64, a.wend);
      const __m512i v = _mm512_loadu_si512((const void*)(w + p * 64));
      const __m512i wl = _mm512_and_si512(v, low4);
      const __m512i wh = _mm512_and_si512(_mm512_srli_epi16(v, 4), low4);
      for (int c = 0; c < C; ++c) {
        const __m512i x = _mm512_permutexvar_epi32(idx[p], av[c]);
        lo[c] = _mm512_dpbusd_epi32(lo[c], wl, x);
        hi[c] = _mm512_dpbusd_epi32(hi[c], wh, x);
      }
    }
    __m512i tot = _mm512_setzero_si512();
    for (int c = 0; c < C; ++c) {
      const __m512i r = _mm512_add_epi32(_mm512_permutex2var_epi32(lo[c], even, hi[c]),
                                         _mm512_permutex2var_epi32(lo[c], odd, hi[c]));
      tot = _mm512_add_epi32(tot, _mm512_slli_epi32(r, 7 * c));
    }
    const __m512i z = zeros16(a.Z + gw * 16);
    const __m512 sc = scales16(a.SC, gw * 16);
    const __m512i i = _mm512_sub_epi32(tot, _mm512_mullo_epi32(z, _mm512_set1_epi32(a.S[g])));
    y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), _mm512_mul_ps(sc, _mm512_set1_ps(a.U[g])), y);
    if (++gi == a.gpw) gi = 0, ++gw;
  }
  _mm512_storeu_ps(a.out, y);
}

// Largest token tile of the micro-kernel for (isa, M); run_mk takes any TT in 1..that.
static int tile_tokens(int isa, int M) {
  const int C = gemm_chunks(M);
  if (isa >= ISA_AVX512) return C == 1 ? 8 : 4;
  if (avx2_magsign(isa, M)) return 4;  // one int16 accumulator per token, like C = 1 (2: 9% slower)
  // AVX2, one row half at a time: per token C int16 accumulators + an int32 total + a float sum,
  // plus weights, broadcast and mask; C = 1 with 4 tokens uses 15 of the 16 ymm registers (6
  // tokens of a whole-group int16 sum measured no faster)
  if (isa == ISA_AVX2) return C == 1 ? 4 : 2;
  return 1;
}

template <int C>
static void run_mk_c(int isa, const MkArgs& a, int TT) {
  if (isa >= ISA_AVX512) {
    if (TT > 4) mk_avx512<8, C>(a);
    else if (TT > 2) mk_avx512<4, C>(a);
    else if (TT > 1) mk_avx512<2, C>(a);
    else if constexpr (C <= 2) mk_avx512_1<C>(a);
    else mk_avx512<1, C>(a);
  } else if (TT > 2) {
    mk_avx2<4, C>(a);
  } else if (TT > 1) {
    mk_avx2<2, C>(a);
  } else {
    mk_avx2<1, C>(a);
  }
}

// Runs the micro-kernel of `isa` on TT <= tile_tokens(isa, M) tokens. A TT between the
// templated sizes runs the next larger one: it reads up to tile_tokens rows of A/S/U, so callers
// allocate them with zero padding up to a multiple of kTokenPad rows; the extra outputs are discarded.
static void run_mk(int isa, const MkArgs& a, int TT) {
  if (isa <= ISA_SCALAR) return mk_scalar(a, TT);
  if (a.C == 1) run_mk_c<1>(isa, a, TT);
  else if (a.C == 2) run_mk_c<2>(isa, a, TT);
  else run_mk_c<3>(isa, a, TT);
}

static inline __attribute__((always_inline)) void write_rows(const OutSpec& os, float* out, int64_t t0,
                                                          int TT, int64_t n0, int nl, int64_t N) {
  if (os.bias)
    for (int t = 0; t < TT; ++t)
      for (int l = 0; l < nl; ++l) out[t * 16 + l] += os.bias[n0 + l];
  if (os.f32) {
    for (int t = 0; t < TT; ++t) std::memcpy(os.f32 + (t0 + t) * N + n0, out + t * 16, nl * 4);
  } else {
    for (int t = 0; t < TT; ++t)
      for (int l = 0; l < nl; ++l) os.bf16[(t0 + t) * N + n0 + l] = f32_to_bf16_bits(out[t * 16 + l]);
  }
}

// Fewest tokens for which the AMX tile path runs (fewer: AVX-512 VNNI), per chunk count C: a
// tile operation costs about the same for 1..8 tokens (8-row tiles) and for 9..16 while VNNI's
// cost grows per token tile (8 tokens at C = 1, 4 at C > 1). Measured on a 2-core Xeon with AMX
// (bf16 in/out, K x N = 576 x 960, 576 x 576, 576 x 3072, 1536 x 576, 2 threads): C = 1 even
// with VNNI up to 8 tokens and ahead from 9; C = 2 even at 5 tokens and ahead from 6.
constexpr int64_t kAmxMinTokens1 = 9, kAmxMinTokensN = 6;

bool amx_path(int isa, int64_t T, int C) {
  return isa == ISA_AMX_EMU || (isa == ISA_AMX && T >= (C == 1 ? kAmxMinTokens1 : kAmxMinTokensN));
}

// Micro-kernel paths: 4..16 blocks per item, aiming at 4 items per thread (a descheduled thread
// holds little back; fewer where the rows are too few for 4-block items). Longer items stream
// longer runs of weights and cut the prefetches lost at item ends (96 DRAM-resident 2048 x 5632
// linears, 2 threads, one token: 4 blocks 23.7-25.4 GB/s, 8 26.2-26.3, 16 26.4-26.8, 32 25.1-25.3).
static int64_t micro_item_blocks(int64_t NB, int64_t threads) {
  constexpr int64_t kMin = 4, kMax = 16, kItemsPerThread = 4;
  return std::clamp<int64_t>(NB / (std::max<int64_t>(threads, 1) * kItemsPerThread), kMin, kMax);
}

int64_t item_blocks(int isa, int64_t T, int M, int64_t G, int64_t NB, int64_t threads) {
  constexpr int64_t kPanelKiB = 1024;
  if (!amx_path(isa, T, gemm_chunks(M))) return micro_item_blocks(NB, threads);
  // equal items, a multiple of the thread count of them, each at most ~kPanelKiB of B tiles
  const int64_t step_kib = amx_folds(T, M) ? 2 : 1;  // KiB of B tiles per group of a block
  const int64_t th = std::max<int64_t>(threads, 1),
                panel = std::max<int64_t>(1, kPanelKiB / (std::max<int64_t>(G, 1) * step_kib));
  const int64_t rounds = (NB + th * panel - 1) / (th * panel);  // items per thread
  return std::max<int64_t>(1, (NB + th * rounds - 1) / (th * rounds));
}

void gemm_blocked(int isa, const int8_t* A, const int32_t* S, const float* U, int64_t T, int G,
                  int M, const uint8_t* Wp, int64_t Gw64, BlockedScales SCb, const uint8_t* Zb,
                  int64_t sblock, int64_t zblock, int64_t group_size, int64_t n0, int64_t n1,
                  int64_t N, const OutSpec& os) {
  const int C = gemm_chunks(M);
  if (amx_path(isa, T, C))
    return gemm_amx(isa == ISA_AMX, A, S, U, T, G, M, Wp, Gw64, SCb, Zb, sblock, zblock,
                    group_size, n0, n1, N, os);
  const int gpw = (int)(group_size / 64);
  const int nb = (int)((n1 - n0 + 15) / 16);
  const int tt = tile_tokens(isa, M);
  const int64_t tstride = (int64_t)G * C * 64;
  // tokens per chunk: the chunk's activations (<= ~128 KiB) stay cached across the blocks
  const int64_t tc = std::max<int64_t>(tt, (131072 / std::max<int64_t>(tstride, 1)) / tt * tt);
  alignas(64) float out[8 * 16];
  const uint8_t* wend = Wp + (int64_t)nb * Gw64 * kGroupBytes;
  for (int64_t c0 = 0; c0 < T; c0 += tc) {
    const int64_t c1 = std::min(T, c0 + tc);
    for (int b = 0; b < nb; ++b) {
      const int64_t bn0 = n0 + 16 * b;
      const int nl = (int)std::min<int64_t>(16, n1 - bn0);
      for (int64_t t0 = c0; t0 < c1; t0 += tt) {
        const int TT = (int)std::min<int64_t>(tt, c1 - t0);
        MkArgs a{A + t0 * tstride, tstride, S + t0 * G, U + t0 * G,
                 Wp + (int64_t)b * Gw64 * kGroupBytes, SCb.at((int64_t)b * sblock),
                 Zb + (int64_t)b * zblock, G, C, gpw, out, wend, M};
        run_mk(isa, a, TT);
        write_rows(os, out, t0, TT, bn0, nl, N);  // inlined: called once per micro-kernel tile
      }
    }
  }
}

void gemm_prepacked(int isa, const int8_t* A, const int32_t* S, const float* U, int64_t T, int G,
                    int M, const uint8_t* Wp, int64_t Gw64, const float* scales, int64_t sstride,
                    const uint8_t* zeros, int64_t group_size, int64_t n0, int64_t n1, int64_t N,
                    float* y) {
  const int gpw = (int)(group_size / 64);
  const int nb = (int)((n1 - n0 + 15) / 16);
  const int gwn = (G + gpw - 1) / gpw;  // weight groups the activations reach
  std::vector<float> SC((size_t)nb * gwn * 16, 0.0f);
  std::vector<uint8_t> Z((size_t)nb * gwn * 16, 0);
  for (int b = 0; b < nb; ++b)
    for (int l = 0; l < 16; ++l) {
      const int64_t n = n0 + 16 * b + l;
      if (n >= N) break;
      for (int gw = 0; gw < gwn; ++gw) {
        SC[((size_t)b * gwn + gw) * 16 + l] = scales[n * sstride + gw];
        Z[((size_t)b * gwn + gw) * 16 + l] = zeros ? zeros[n * sstride + gw] : 8;
      }
    }
  gemm_blocked(isa, A, S, U, T, G, M, Wp, Gw64, BlockedScales{SC.data(), nullptr}, Z.data(), (int64_t)gwn * 16,
               (int64_t)gwn * 16, group_size,
               n0, n1, N, OutSpec{y, nullptr, nullptr});
}

}  // namespace anda
