// AMX-INT8 path of the packed GEMM (anda_gemm_kern.cpp dispatches here for 16+ tokens when the
// CPU and the OS allow AMX tiles), and the same code over software tiles ("amx-emulated"), which
// runs on any CPU so that the tests check this path's layout, tiling and epilogue everywhere.
//
// One TDPBSSD per (16 tokens, 16 weight rows, 64-group, chunk):
//  * A tile (int8, 16 rows x 64 bytes): the activation chunks of 16 tokens, loaded straight from
//    the decode_act layout with the token stride (positions p = even k then odd k);
//  * B tile (int8, 16 k-quads x 16 rows x 4 codes): the block's prepacked weight group with its
//    nibbles spread to bytes (k-quad kq, 32 bytes -> low nibbles = rows 0..7, high = rows 8..15),
//    exactly the "VNNI" layout TDPBSSD wants, so the prepacked layout serves AVX2, VNNI and AMX;
//  * C tile (int32, 16 tokens x 16 rows) per chunk, stored and combined in float32 registers:
//    y[t, r] += (sum_c C_c << 7c - z[r] * S[t]) * (scale[r] * U[t]), in group order.
// The B tile is built once per (block, group) and reused by every 16-token tile of the chunk.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#if defined(__linux__) && defined(__x86_64__)
#include <cpuid.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "anda_kern.h"

namespace anda {

#define ANDA_INLINE inline __attribute__((always_inline))
// The hardware instantiation's vector code (B unpack, epilogue) is compiled for AVX-512.
#define ANDA_AMX __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl,avx512vnni")))

namespace {

constexpr int kTile = 16;      // tokens per A/C tile and weight rows per B/C tile
constexpr int kMaxChunk = 256;  // tokens whose float32 sums a block keeps (16 KiB)

// Tile palette 1: B in tmm0, A chunk c in tmm(1 + c), C chunk c in tmm(4 + c); all 16 rows.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 7; ++t) colsb[t] = 64, rows[t] = kTile;
  }
};

// The documented semantics of TILELOADD / TILESTORED / TILEZERO / TDPBSSD on 16 x 64-byte tiles.
struct SoftTiles {
  alignas(64) int8_t t[7][kTile * 64];
  void begin() {}
  void end() {}
  void load(int r, const void* p, int64_t stride) {
    for (int i = 0; i < kTile; ++i) std::memcpy(t[r] + 64 * i, (const char*)p + i * stride, 64);
  }
  void store(int r, void* p, int64_t stride) {
    for (int i = 0; i < kTile; ++i) std::memcpy((char*)p + i * stride, t[r] + 64 * i, 64);
  }
  void loadB(const void* p) { load(0, p, 64); }
  template <int c> void loadA(const void* p, int64_t stride) { load(1 + c, p, stride); }
  template <int c> void zeroC() { std::memset(t[4 + c], 0, sizeof(t[0])); }
  template <int c> void dp() {  // C[m][n] += sum_kq sum_i A[m][4kq+i] * B[kq][4n+i]
    int32_t C[kTile * kTile];
    std::memcpy(C, t[4 + c], sizeof(C));
    const int8_t *A = t[1 + c], *B = t[0];
    for (int m = 0; m < kTile; ++m)
      for (int kq = 0; kq < 16; ++kq)
        for (int n = 0; n < kTile; ++n)
          for (int i = 0; i < 4; ++i) C[m * kTile + n] += (int32_t)A[m * 64 + 4 * kq + i] * B[kq * 64 + 4 * n + i];
    std::memcpy(t[4 + c], C, sizeof(C));
  }
  template <int c> void storeC(int32_t* p) { store(4 + c, p, 64); }
};

#if defined(__x86_64__)
// The hardware tiles, in inline assembly of our own (AT&T operand order: sources first): no
// target attribute is needed here, so amx_gemm can be instantiated for both tile kinds and take
// its vector width from the function it is inlined into. Memory clobbers order the tile loads and
// stores with the plain C++ reads and writes of the same buffers.
struct HwTiles {
  TileConfig cfg;
  ANDA_INLINE void begin() { __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory"); }
  ANDA_INLINE void end() { __asm__ volatile("tilerelease" ::: "memory"); }
  ANDA_INLINE void loadB(const void* p) {
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm0" ::"r"(p), "r"((int64_t)64) : "memory");
  }
  template <int c>
  ANDA_INLINE void loadA(const void* p, int64_t stride) {
    if constexpr (c == 0) __asm__ volatile("tileloadd (%0,%1,1), %%tmm1" ::"r"(p), "r"(stride) : "memory");
    else if constexpr (c == 1) __asm__ volatile("tileloadd (%0,%1,1), %%tmm2" ::"r"(p), "r"(stride) : "memory");
    else __asm__ volatile("tileloadd (%0,%1,1), %%tmm3" ::"r"(p), "r"(stride) : "memory");
  }
  template <int c>
  ANDA_INLINE void zeroC() {
    if constexpr (c == 0) __asm__ volatile("tilezero %%tmm4" ::);
    else if constexpr (c == 1) __asm__ volatile("tilezero %%tmm5" ::);
    else __asm__ volatile("tilezero %%tmm6" ::);
  }
  template <int c>
  ANDA_INLINE void dp() {  // tmm(4 + c) += tmm(1 + c) (activations) . tmm0 (weights)
    if constexpr (c == 0) __asm__ volatile("tdpbssd %%tmm0, %%tmm1, %%tmm4" ::);
    else if constexpr (c == 1) __asm__ volatile("tdpbssd %%tmm0, %%tmm2, %%tmm5" ::);
    else __asm__ volatile("tdpbssd %%tmm0, %%tmm3, %%tmm6" ::);
  }
  template <int c>
  ANDA_INLINE void storeC(int32_t* p) {
    if constexpr (c == 0) __asm__ volatile("tilestored %%tmm4, (%0,%1,1)" ::"r"(p), "r"((int64_t)64) : "memory");
    else if constexpr (c == 1) __asm__ volatile("tilestored %%tmm5, (%0,%1,1)" ::"r"(p), "r"((int64_t)64) : "memory");
    else __asm__ volatile("tilestored %%tmm6, (%0,%1,1)" ::"r"(p), "r"((int64_t)64) : "memory");
  }
};
#endif

struct AmxArgs {
  const int8_t* A;
  const int32_t* S;
  const float* U;
  int64_t T;
  int G;
  const uint8_t* Wp;
  int64_t Gw64;
  const float* SCb;
  const int32_t* Zb;
  int64_t sblock, zblock;
  int gpw;
  int64_t n0, n1, N;
  const OutSpec* os;
};

// C tile of chunk c: the int32 dot products of 16 tokens' chunk c (at + 64c, token stride
// tstride) with the loaded B tile, stored to ct [16 tokens][16 rows].
template <int c, class Tiles>
ANDA_INLINE void chunk_tile(Tiles& tl, const int8_t* at, int64_t tstride, int32_t* ct) {
  tl.template loadA<c>(at + 64 * c, tstride);
  tl.template zeroC<c>();
  tl.template dp<c>();
  tl.template storeC<c>(ct);
}

template <int C, class Tiles>
ANDA_INLINE void amx_gemm(Tiles& tl, const AmxArgs& a) {
  alignas(64) int8_t bt[16 * 64];
  alignas(64) int32_t ct[C][kTile * kTile];
  alignas(64) float y[kMaxChunk * kTile];
  const int64_t tstride = (int64_t)a.G * C * 64;
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  tl.begin();
  for (int64_t c0 = 0; c0 < a.T; c0 += kMaxChunk) {
    const int64_t c1 = std::min(a.T, c0 + kMaxChunk);
    const int tiles = (int)((c1 - c0 + kTile - 1) / kTile);  // rows past T are zero padding
    for (int b = 0; b < nb; ++b) {
      const uint8_t* wb = a.Wp + (int64_t)b * a.Gw64 * kGroupBytes;
      const float* SC = a.SCb + (int64_t)b * a.sblock;
      const int32_t* Z = a.Zb + (int64_t)b * a.zblock;
      std::fill(y, y + tiles * kTile * kTile, 0.0f);
      for (int g = 0, gw = 0, gi = 0; g < a.G; ++g) {
        const uint8_t* w = wb + (int64_t)g * kGroupBytes;
        for (int kq = 0; kq < 16; ++kq)
          for (int j = 0; j < 32; ++j) {
            bt[kq * 64 + j] = (int8_t)(w[kq * 32 + j] & 15);
            bt[kq * 64 + 32 + j] = (int8_t)(w[kq * 32 + j] >> 4);
          }
        tl.loadB(bt);
        const float* sc = SC + gw * 16;
        const int32_t* z = Z + gw * 16;
        for (int i = 0; i < tiles; ++i) {
          const int64_t t0 = c0 + (int64_t)i * kTile;
          const int8_t* at = a.A + t0 * tstride + (int64_t)g * C * 64;
          chunk_tile<0>(tl, at, tstride, ct[0]);
          if constexpr (C > 1) chunk_tile<1>(tl, at, tstride, ct[1]);
          if constexpr (C > 2) chunk_tile<2>(tl, at, tstride, ct[2]);
          float* yt = y + (int64_t)i * kTile * kTile;
          for (int m = 0; m < kTile; ++m) {
            const int32_t s = a.S[(t0 + m) * a.G + g];
            const float u = a.U[(t0 + m) * a.G + g];
            for (int n = 0; n < kTile; ++n) {
              int32_t tot = ct[0][m * kTile + n];
              if constexpr (C > 1) tot += ct[1][m * kTile + n] << 7;
              if constexpr (C > 2) tot += ct[2][m * kTile + n] << 14;
              yt[m * kTile + n] += (float)(tot - z[n] * s) * (sc[n] * u);
            }
          }
        }
        if (++gi == a.gpw) gi = 0, ++gw;
      }
      const int64_t bn0 = a.n0 + 16 * b;
      write_tile(*a.os, y, c0, (int)(c1 - c0), bn0, (int)std::min<int64_t>(16, a.n1 - bn0), a.N);
    }
  }
  tl.end();
}

template <class Tiles>
ANDA_INLINE void amx_dispatch(const AmxArgs& a, int C) {
  Tiles tl;
  if (C == 1) amx_gemm<1>(tl, a);
  else if (C == 2) amx_gemm<2>(tl, a);
  else amx_gemm<3>(tl, a);
}

void amx_soft(const AmxArgs& a, int C) { amx_dispatch<SoftTiles>(a, C); }

#if defined(__x86_64__)
ANDA_AMX void amx_hw(const AmxArgs& a, int C) { amx_dispatch<HwTiles>(a, C); }
#endif

}  // namespace

bool amx_usable() {
#if defined(__linux__) && defined(__x86_64__)
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  const bool tile = edx & (1u << 24), int8 = edx & (1u << 25);
  if (!tile || !int8) return false;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx) || !(ecx & (1u << 27))) return false;  // OSXSAVE
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & (3u << 17)) != (3u << 17)) return false;  // XTILECFG and XTILEDATA enabled by the OS
  // Linux hands out the tile data state per process on request (ARCH_REQ_XCOMP_PERM).
  constexpr long kReqXcompPerm = 0x1023, kXfeatureXtiledata = 18;
  return syscall(SYS_arch_prctl, kReqXcompPerm, kXfeatureXtiledata) == 0;
#else
  return false;
#endif
}

void gemm_amx(bool hardware, const int8_t* A, const int32_t* S, const float* U, int64_t T, int G,
              int C, const uint8_t* Wp, int64_t Gw64, const float* SCb, const int32_t* Zb,
              int64_t sblock, int64_t zblock, int64_t group_size, int64_t n0, int64_t n1,
              int64_t N, const OutSpec& os) {
  const AmxArgs a{A, S, U, T, G, Wp, Gw64, SCb, Zb, sblock, zblock, (int)(group_size / 64),
                  n0, n1, N, &os};
#if defined(__x86_64__)
  if (hardware) return amx_hw(a, C);
#endif
  amx_soft(a, C);
}

}  // namespace anda
