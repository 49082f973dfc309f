// CPU kernels of the andactl extension, portable part: ISA selection, the scalar compressor,
// unpack and the activation decode of the GEMM. SIMD code (anda_pack_avx2.cpp,
// anda_gemm_kern.cpp) is compiled per function with target attributes and chosen at run time
// (never -march=native).
//
// GEMM dataflow (anda_gemm_kern.cpp) (equal to the reference up to float32 accumulation order):
//  * activations are decoded from bit-planes to signed int8 "chunks" of 7 magnitude bits
//    (M <= 7: 1 chunk, 8..14: 2, 15..16: 3), stored per 64-group as even k then odd k;
//  * weights are prepacked per block of 16 output rows into [group][k-quad][8 rows][4 codes]
//    nibble pairs (rows r and 8 + r share a byte; same even/odd k order), so one 32-byte load
//    gives, after two mask/shift steps, 4 codes of 16 rows;
//  * per (token, row, group): integer sum_k a*q per chunk (u8 x s8 dot products: maddubs on
//    AVX2, vpdpbusd on AVX-512 VNNI), chunks combined as sum << 7c, minus z * sum_k a, then
//    converted to float, times scale * 2^(E-15-(M-1)) and accumulated over groups in float32.
#include "anda_kern.h"


#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace anda {

// ---------------------------------------------------------------- ISA selection
int detect_isa() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
              __builtin_cpu_supports("f16c");
  bool avx512 = avx2 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
  if (avx512 && amx_usable()) return ISA_AMX;
  return avx512 ? ISA_AVX512 : (avx2 ? ISA_AVX2 : ISA_SCALAR);
#else
  return ISA_SCALAR;
#endif
}

bool avx512bf16_usable() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  static const bool cpu = __builtin_cpu_supports("avx512bf16");
  const char* off = std::getenv("ANDA_NO_AVX512BF16");
  return cpu && !(off && *off);
#else
  return false;
#endif
}

int select_isa() {
  static const int best = detect_isa();
  const char* cap = std::getenv("ANDA_CPU_ISA");
  int want = best;
  if (cap && *cap) {
    if (!std::strcmp(cap, "amx-emulated")) return ISA_AMX_EMU;  // any CPU: software tiles
    if (!std::strcmp(cap, "scalar")) want = ISA_SCALAR;
    else if (!std::strcmp(cap, "avx2")) want = ISA_AVX2;
    else if (!std::strcmp(cap, "avx512")) want = ISA_AVX512;
    else if (!std::strcmp(cap, "amx")) want = ISA_AMX;
  }
  return std::min(want, best);
}

const char* isa_name(int isa) {
  switch (isa) {
    case ISA_AMX_EMU: return "amx-emulated";
    case ISA_AVX2: return "avx2";
    case ISA_AVX512: return "avx512";
    case ISA_AMX: return "amx";
    default: return "scalar";
  }
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
bool pack_group_scalar(const uint16_t* h, int n, int M, bool nearest, int64_t* out,
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

bool pack_rows(int isa, const uint16_t* h, int64_t rows, int64_t K, int M, bool nearest,
               int64_t* words, uint8_t* exps) {
  auto* group = isa >= ISA_AVX2 ? &pack_group_avx2 : &pack_group_scalar;
  const int64_t G = (K + 63) / 64;
  bool bad = false;
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t g = 0; g < G; ++g) {
      int n = (int)std::min<int64_t>(64, K - g * 64);
      bad |= group(h + r * K + g * 64, n, M, nearest, words + (r * G + g) * (1 + M),
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
      const float u = unit_scale((int)exps[r * G + g], M);
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
      U[r * G + g] = unit_scale((int)exps[r * G + g], M);
    }
  }
}

}  // namespace anda
