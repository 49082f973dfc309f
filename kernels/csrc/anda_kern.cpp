// CPU kernels of the andactl extension: scalar code for every ISA level plus AVX2 and
// AVX-512 (F/BW/VL/VNNI) GEMM micro-kernels compiled per function with target attributes and
// chosen at run time (never -march=native).
//
// GEMM dataflow (equal to the reference up to float32 accumulation order):
//  * activations are decoded from bit-planes to signed int8 "chunks" of 7 magnitude bits
//    (M <= 7: 1 chunk, 8..14: 2, 15..16: 3), stored per 64-group as even k then odd k;
//  * weights are repacked per block of 16 output rows into [group][k-quad][16 rows][4 codes]
//    (codes 0..15 as u8, same even/odd k order), so one vector holds 4 codes of 16 rows;
//  * per (token, row, group): integer sum_k a*q per chunk (u8 x s8 dot products: maddubs on
//    AVX2, vpdpbusd on AVX-512 VNNI), chunks combined as sum << 7c, minus z * sum_k a, then
//    converted to float, times scale * 2^(E-15-(M-1)) and accumulated over groups in float32.
#include "anda_kern.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace anda {

// ---------------------------------------------------------------- ISA selection
int detect_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  return avx512 ? ISA_AVX512 : (avx2 ? ISA_AVX2 : ISA_SCALAR);
#else
  return ISA_SCALAR;
#endif
}

int select_isa() {
  static const int best = detect_isa();
  const char* cap = std::getenv("ANDA_CPU_ISA");
  int want = best;
  if (cap && *cap) {
    if (!std::strcmp(cap, "scalar")) want = ISA_SCALAR;
    else if (!std::strcmp(cap, "avx2")) want = ISA_AVX2;
    else if (!std::strcmp(cap, "avx512")) want = ISA_AVX512;
  }
  return std::min(want, best);
}

const char* isa_name(int isa) {
  return isa == ISA_AVX512 ? "avx512" : (isa == ISA_AVX2 ? "avx2" : "scalar");
}

// ---------------------------------------------------------------- bit helpers
static inline uint64_t compress_even(uint64_t x) {
  x &= 0x5555555555555555ULL;
  x = (x | (x >> 1)) & 0x3333333333333333ULL;
  x = (x | (x >> 2)) & 0x0F0F0F0F0F0F0F0FULL;
  x = (x | (x >> 4)) & 0x00FF00FF00FF00FFULL;
  x = (x | (x >> 8)) & 0x0000FFFF0000FFFFULL;
  x = (x | (x >> 16)) & 0x00000000FFFFFFFFULL;
  return x;
}
// bit 2i -> bit i, bit 2i+1 -> bit 32+i (the GEMM's even/odd element order)
static inline uint64_t deinterleave(uint64_t w) {
  return compress_even(w) | (compress_even(w >> 1) << 32);
}
// 8 bytes, each 0 or 1 -> 8 bits (byte i -> bit i)
static inline uint64_t gather_bits8(uint64_t x) {
  return (x * 0x0102040810204080ULL) >> 56;
}
// byte b -> 8 bytes of 0/1 (bit i -> byte i)
struct ExpandLut {
  uint64_t v[256];
  ExpandLut() {
    for (int b = 0; b < 256; ++b) {
      uint64_t r = 0;
      for (int i = 0; i < 8; ++i) r |= (uint64_t)((b >> i) & 1) << (8 * i);
      v[b] = r;
    }
  }
};
static const ExpandLut kExpand;

// ---------------------------------------------------------------- pack (compressor)
static inline bool pack_group(const uint16_t* h, int n, int M, bool nearest, int64_t* out,
                              uint8_t* e_out) {
  int E = 1;
  bool bad = false;
  for (int j = 0; j < n; ++j) {
    int e = (h[j] >> 10) & 31;
    bad |= (e == 31);
    E = e > E ? e : E;
  }
  alignas(64) uint8_t lo[64], hi[64];
  uint64_t sign = 0;
  const uint32_t mmax = (1u << M) - 1u;
  for (int j = 0; j < 64; ++j) {
    uint32_t m = 0;
    if (j < n) {
      uint32_t hj = h[j];
      sign |= (uint64_t)(hj >> 15) << j;
      uint32_t e = (hj >> 10) & 31u;
      uint32_t mant = (hj & 0x3FFu) | (e ? 0x400u : 0u);
      uint32_t ep = e ? e : 1u;
      uint32_t s = (uint32_t)E - ep + 16u - (uint32_t)M;  // >= 0; m = (mant << 5) >> s
      uint32_t v = mant << 5;
      if (!nearest) {
        m = s >= 32 ? 0u : (v >> s);
      } else {
        m = s == 0 ? v : (s >= 32 ? 0u : ((v + (1u << (s - 1))) >> s));
        m = m > mmax ? mmax : m;
      }
    }
    lo[j] = (uint8_t)(m & 0xFF);
    hi[j] = (uint8_t)(m >> 8);
  }
  out[0] = (int64_t)sign;
  for (int p = 0; p < M; ++p) {
    int b = M - 1 - p;
    const uint8_t* src = b >= 8 ? hi : lo;
    int sb = b & 7;
    uint64_t word = 0;
    for (int c = 0; c < 8; ++c) {
      uint64_t x;
      std::memcpy(&x, src + 8 * c, 8);
      word |= gather_bits8((x >> sb) & 0x0101010101010101ULL) << (8 * c);
    }
    out[1 + p] = (int64_t)word;
  }
  *e_out = (uint8_t)E;
  return bad;
}

bool pack_rows(int /*isa*/, const uint16_t* h, int64_t rows, int64_t K, int M, bool nearest,
               int64_t* words, uint8_t* exps) {
  const int64_t G = (K + 63) / 64;
  bool bad = false;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      int n = (int)std::min<int64_t>(64, K - g * 64);
      bad |= pack_group(h + r * K + g * 64, n, M, nearest, words + (r * G + g) * (1 + M),
                        exps + r * G + g);
    }
  }
  return bad;
}

// ---------------------------------------------------------------- unpack
void unpack_rows(const int64_t* words, const uint8_t* exps, int64_t rows, int64_t G, int M,
                 int64_t K, float* out) {
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      const uint64_t* w = (const uint64_t*)(words + (r * G + g) * (1 + M));
      const float u = std::ldexp(1.0f, (int)exps[r * G + g] - 15 - (M - 1));
      uint32_t m[64] = {0};
      for (int p = 0; p < M; ++p) {
        const uint64_t pl = w[1 + p];
        const int b = M - 1 - p;
        for (int j = 0; j < 64; ++j) m[j] |= (uint32_t)((pl >> j) & 1u) << b;
      }
      const int n = (int)std::min<int64_t>(64, K - g * 64);
      float* o = out + r * K + g * 64;
      for (int j = 0; j < n; ++j) {
        float v = (float)m[j] * u;
        o[j] = ((w[0] >> j) & 1u) ? -v : v;
      }
    }
  }
}

// ---------------------------------------------------------------- activation decode
void decode_act(const int64_t* words, const uint8_t* exps, int64_t rows, int64_t G, int M,
                int8_t* A, int32_t* S, float* U) {
  const int C = gemm_chunks(M);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      const uint64_t* w = (const uint64_t*)(words + (r * G + g) * (1 + M));
      alignas(64) uint8_t ch[3][64];
      std::memset(ch, 0, sizeof(ch));
      for (int p = 0; p < M; ++p) {
        const int b = M - 1 - p;
        const uint64_t dw = deinterleave(w[1 + p]);
        uint8_t* dst = ch[b / 7];
        const int sh = b % 7;
        for (int q = 0; q < 8; ++q) {
          uint64_t x;
          std::memcpy(&x, dst + 8 * q, 8);
          x += kExpand.v[(dw >> (8 * q)) & 0xFF] << sh;
          std::memcpy(dst + 8 * q, &x, 8);
        }
      }
      alignas(64) uint8_t sg[64];
      const uint64_t ds = deinterleave(w[0]);
      for (int q = 0; q < 8; ++q) {
        uint64_t x = kExpand.v[(ds >> (8 * q)) & 0xFF];
        std::memcpy(sg + 8 * q, &x, 8);
      }
      int8_t* a = A + (r * G + g) * C * 64;
      int32_t tot = 0;
      for (int c = 0; c < C; ++c) {
        int32_t s = 0;
        for (int i = 0; i < 64; ++i) {
          int v = sg[i] ? -(int)ch[c][i] : (int)ch[c][i];
          a[c * 64 + i] = (int8_t)v;
          s += v;
        }
        tot += s << (7 * c);
      }
      S[r * G + g] = tot;
      U[r * G + g] = std::ldexp(1.0f, (int)exps[r * G + g] - 15 - (M - 1));
    }
  }
}

// ---------------------------------------------------------------- weight repack
// Wr[g][kq][16 rows][4]: codes of rows n0..n0+15 (rows >= N get code 0), k order as in A.
static void repack_scalar(const uint8_t* w, int64_t wstride, int64_t n0, int64_t N, int G,
                          uint8_t* Wr) {
  for (int r = 0; r < 16; ++r) {
    const int64_t n = n0 + r;
    for (int g = 0; g < G; ++g) {
      uint8_t* dst = Wr + (int64_t)g * 1024 + r * 4;
      if (n >= N) {
        for (int kq = 0; kq < 16; ++kq) std::memset(dst + kq * 64, 0, 4);
        continue;
      }
      const uint8_t* p = w + n * wstride + (int64_t)g * 32;
      for (int i = 0; i < 32; ++i) {
        dst[(i >> 2) * 64 + (i & 3)] = p[i] & 15;
        dst[((32 + i) >> 2) * 64 + (i & 3)] = p[i] >> 4;
      }
    }
  }
}

__attribute__((target("avx2,fma"))) static inline void transpose8x8(__m256i r[8], __m256i o[8]) {
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

__attribute__((target("avx2,fma"))) static void repack_avx2(const uint8_t* w, int64_t wstride,
                                                            int64_t n0, int64_t N, int G,
                                                            uint8_t* Wr) {
  if (n0 + 16 > N) {  // ragged last block: keep it simple
    repack_scalar(w, wstride, n0, N, G, Wr);
    return;
  }
  const __m256i low4 = _mm256_set1_epi8(0x0F);
  for (int g = 0; g < G; ++g) {
    uint8_t* dst = Wr + (int64_t)g * 1024;
    for (int h = 0; h < 2; ++h) {  // rows 8h..8h+7
      __m256i lo[8], hi[8], o[8];
      for (int r = 0; r < 8; ++r) {
        __m256i v = _mm256_loadu_si256(
            (const __m256i*)(w + (n0 + 8 * h + r) * wstride + (int64_t)g * 32));
        lo[r] = _mm256_and_si256(v, low4);
        hi[r] = _mm256_and_si256(_mm256_srli_epi16(v, 4), low4);
      }
      transpose8x8(lo, o);
      for (int kq = 0; kq < 8; ++kq) _mm256_storeu_si256((__m256i*)(dst + kq * 64 + 32 * h), o[kq]);
      transpose8x8(hi, o);
      for (int kq = 0; kq < 8; ++kq)
        _mm256_storeu_si256((__m256i*)(dst + (8 + kq) * 64 + 32 * h), o[kq]);
    }
  }
}

// ---------------------------------------------------------------- micro-kernels
// Arguments common to all micro-kernels: TT tokens starting at A (row stride tstride bytes),
// S/U row stride G; one 16-row weight block Wr, SC/Z [G][16]; out [TT][16].
struct MkArgs {
  const int8_t* A;
  int64_t tstride;
  const int32_t* S;
  const float* U;
  const uint8_t* Wr;
  const float* SC;
  const int32_t* Z;
  int G, C;
  float* out;
};

static void mk_scalar(const MkArgs& a, int TT) {
  for (int t = 0; t < TT; ++t) {
    for (int l = 0; l < 16; ++l) {
      float y = 0.0f;
      for (int g = 0; g < a.G; ++g) {
        const uint8_t* w = a.Wr + (int64_t)g * 1024 + l * 4;
        int32_t tot = 0;
        for (int c = 0; c < a.C; ++c) {
          const int8_t* x = a.A + t * a.tstride + ((int64_t)g * a.C + c) * 64;
          int32_t s = 0;
          for (int kq = 0; kq < 16; ++kq)
            for (int b = 0; b < 4; ++b) s += (int32_t)x[kq * 4 + b] * (int32_t)w[kq * 64 + b];
          tot += s << (7 * c);
        }
        const int32_t i = tot - a.Z[g * 16 + l] * a.S[(int64_t)t * a.G + g];
        y += (float)i * (a.SC[g * 16 + l] * a.U[(int64_t)t * a.G + g]);
      }
      a.out[t * 16 + l] = y;
    }
  }
}

template <int TT>
__attribute__((target("avx2,fma"))) static void mk_avx2(const MkArgs& a) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256 y[TT][2];
  for (int t = 0; t < TT; ++t) y[t][0] = y[t][1] = _mm256_setzero_ps();
  for (int g = 0; g < a.G; ++g) {
    const uint8_t* w = a.Wr + (int64_t)g * 1024;
    __m256i tot[TT][2];
    for (int c = 0; c < a.C; ++c) {
      __m256i s32[TT][2];
      for (int t = 0; t < TT; ++t) s32[t][0] = s32[t][1] = _mm256_setzero_si256();
      for (int half = 0; half < 2; ++half) {
        __m256i acc[TT][2];  // int16: 8 k-quads of |a| <= 127, q <= 15 stay below 2^15
        for (int t = 0; t < TT; ++t) acc[t][0] = acc[t][1] = _mm256_setzero_si256();
        for (int kq = 8 * half; kq < 8 * half + 8; ++kq) {
          const __m256i wa = _mm256_loadu_si256((const __m256i*)(w + kq * 64));
          const __m256i wb = _mm256_loadu_si256((const __m256i*)(w + kq * 64 + 32));
          for (int t = 0; t < TT; ++t) {
            int32_t q4;
            std::memcpy(&q4, a.A + t * a.tstride + ((int64_t)g * a.C + c) * 64 + kq * 4, 4);
            const __m256i x = _mm256_set1_epi32(q4);
            acc[t][0] = _mm256_add_epi16(acc[t][0], _mm256_maddubs_epi16(wa, x));
            acc[t][1] = _mm256_add_epi16(acc[t][1], _mm256_maddubs_epi16(wb, x));
          }
        }
        for (int t = 0; t < TT; ++t)
          for (int h = 0; h < 2; ++h)
            s32[t][h] = _mm256_add_epi32(s32[t][h], _mm256_madd_epi16(acc[t][h], ones));
      }
      for (int t = 0; t < TT; ++t)
        for (int h = 0; h < 2; ++h) {
          __m256i v = _mm256_slli_epi32(s32[t][h], 7 * c);
          tot[t][h] = c == 0 ? v : _mm256_add_epi32(tot[t][h], v);
        }
    }
    for (int h = 0; h < 2; ++h) {
      const __m256i z = _mm256_loadu_si256((const __m256i*)(a.Z + g * 16 + 8 * h));
      const __m256 sc = _mm256_loadu_ps(a.SC + g * 16 + 8 * h);
      for (int t = 0; t < TT; ++t) {
        const __m256i i = _mm256_sub_epi32(
            tot[t][h], _mm256_mullo_epi32(z, _mm256_set1_epi32(a.S[(int64_t)t * a.G + g])));
        const __m256 su = _mm256_mul_ps(sc, _mm256_set1_ps(a.U[(int64_t)t * a.G + g]));
        y[t][h] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(i), su, y[t][h]);
      }
    }
  }
  for (int t = 0; t < TT; ++t)
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(a.out + t * 16 + 8 * h, y[t][h]);
}

template <int TT>
__attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni"))) static void mk_avx512(
    const MkArgs& a) {
  __m512 y[TT];
  for (int t = 0; t < TT; ++t) y[t] = _mm512_setzero_ps();
  for (int g = 0; g < a.G; ++g) {
    const uint8_t* w = a.Wr + (int64_t)g * 1024;
    __m512i tot[TT];
    for (int c = 0; c < a.C; ++c) {
      __m512i acc[TT];
      for (int t = 0; t < TT; ++t) acc[t] = _mm512_setzero_si512();
      for (int kq = 0; kq < 16; ++kq) {
        const __m512i wv = _mm512_loadu_si512((const void*)(w + kq * 64));
        for (int t = 0; t < TT; ++t) {
          int32_t q4;
          std::memcpy(&q4, a.A + t * a.tstride + ((int64_t)g * a.C + c) * 64 + kq * 4, 4);
          acc[t] = _mm512_dpbusd_epi32(acc[t], wv, _mm512_set1_epi32(q4));
        }
      }
      for (int t = 0; t < TT; ++t) {
        __m512i v = _mm512_slli_epi32(acc[t], 7 * c);
        tot[t] = c == 0 ? v : _mm512_add_epi32(tot[t], v);
      }
    }
    const __m512i z = _mm512_loadu_si512((const void*)(a.Z + g * 16));
    const __m512 sc = _mm512_loadu_ps(a.SC + g * 16);
    for (int t = 0; t < TT; ++t) {
      const __m512i i = _mm512_sub_epi32(
          tot[t], _mm512_mullo_epi32(z, _mm512_set1_epi32(a.S[(int64_t)t * a.G + g])));
      const __m512 su = _mm512_mul_ps(sc, _mm512_set1_ps(a.U[(int64_t)t * a.G + g]));
      y[t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(i), su, y[t]);
    }
  }
  for (int t = 0; t < TT; ++t) _mm512_storeu_ps(a.out + t * 16, y[t]);
}

// Runs the micro-kernel of `isa` on `TT` (1..8) tokens.
static void run_mk(int isa, const MkArgs& a, int TT) {
  if (isa == ISA_AVX512) {
    if (TT > 4) mk_avx512<8>(a);
    else if (TT > 2) mk_avx512<4>(a);
    else if (TT > 1) mk_avx512<2>(a);
    else mk_avx512<1>(a);
  } else if (isa == ISA_AVX2) {
    if (TT > 1) mk_avx2<2>(a);
    else mk_avx2<1>(a);
  } else {
    mk_scalar(a, TT);
  }
}

static int tile_tokens(int isa) { return isa == ISA_AVX512 ? 8 : (isa == ISA_AVX2 ? 2 : 1); }

void gemm_nblock(int isa, const int8_t* A, const int32_t* S, const float* U, int64_t T,
                 int64_t Tpad, int G, int C, const uint8_t* w, int64_t wstride,
                 const float* scales, int64_t sstride, const uint8_t* zeros, int64_t group_size,
                 int64_t n0, int64_t n1, int64_t N, float* y) {
  (void)Tpad;
  const int nb = (int)((n1 - n0 + 15) / 16);
  std::vector<uint8_t> Wr((size_t)nb * G * 1024);
  std::vector<float> SC((size_t)nb * G * 16, 0.0f);
  std::vector<int32_t> Z((size_t)nb * G * 16, 0);
  for (int b = 0; b < nb; ++b) {
    const int64_t bn0 = n0 + 16 * b;
    if (isa >= ISA_AVX2) repack_avx2(w, wstride, bn0, N, G, Wr.data() + (size_t)b * G * 1024);
    else repack_scalar(w, wstride, bn0, N, G, Wr.data() + (size_t)b * G * 1024);
    for (int l = 0; l < 16; ++l) {
      const int64_t n = bn0 + l;
      if (n >= N) continue;
      for (int g = 0; g < G; ++g) {
        const int64_t gw = (int64_t)g * 64 / group_size;
        SC[((size_t)b * G + g) * 16 + l] = scales[n * sstride + gw];
        Z[((size_t)b * G + g) * 16 + l] = zeros ? (int32_t)zeros[n * sstride + gw] : 8;
      }
    }
  }
  const int tt = tile_tokens(isa);
  const int64_t tstride = (int64_t)G * C * 64;
  alignas(64) float out[8 * 16];
  for (int64_t t0 = 0; t0 < T; t0 += tt) {
    const int TT = (int)std::min<int64_t>(tt, T - t0);
    for (int b = 0; b < nb; ++b) {
      MkArgs a{A + t0 * tstride, tstride, S + t0 * G, U + t0 * G,
               Wr.data() + (size_t)b * G * 1024, SC.data() + (size_t)b * G * 16,
               Z.data() + (size_t)b * G * 16, G, C, out};
      run_mk(isa, a, TT);
      const int64_t bn0 = n0 + 16 * b;
      const int nl = (int)std::min<int64_t>(16, n1 - bn0);
      for (int t = 0; t < TT; ++t) std::memcpy(y + (t0 + t) * N + bn0, out + t * 16, nl * 4);
    }
  }
}

}  // namespace anda
