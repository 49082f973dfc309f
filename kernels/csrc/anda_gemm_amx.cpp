// AMX-INT8 path of the packed GEMM (anda_gemm_kern.cpp dispatches here for 8+ tokens when the
// CPU and the OS allow AMX tiles), and the same code over software tiles ("amx-emulated"), which
// runs on any CPU so that the tests check this path's layout, tiling and epilogue everywhere.
//
// Register blocking 2 x 2: per 64-group and chunk, two A tiles (16 tokens each, int8 activation
// chunks loaded straight from the decode_act layout with the token stride), two B tiles (16 weight
// rows each) and four C tiles (int32, 16 tokens x 16 rows): four TDPBSSD per four tile loads.
//  * B tile (int8, 16 k-quads x 16 rows x 4): the prepacked group's nibbles spread to bytes with
//    the row's zero point already subtracted (q - z in -15..15), so the tile's dot product is
//    sum_k a_k (q_k - z) and the epilogue needs no zero-point term. Both blocks' B tiles of every
//    group are built once per block pair and reused by all token tiles.
//  * Epilogue, in float32: y[t, r] += float(sum_c C_c << 7c) * (scale[r] * U[t]). The C tiles of
//    a batch of groups are stored to a buffer; the batch's epilogue runs row by row (each output
//    row's 16 floats stay in a register across the batch) and is interleaved with the next
//    batch's tile operations, so the vector units work while the tile unit does.
// float(sum) is exact for up to two chunks (|sum| < 2^24); three chunks round once (rtol 2^-24).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <vector>

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

constexpr int kTile = 16;       // tokens per A/C tile and weight rows per B/C tile
constexpr int kTileBytes = kTile * 64;

// Tile registers: B of block 0/1 in tmm0/1, A of token tile 0/1 in tmm2/3, C[tile i][block j]
// in tmm(4 + 2i + j). Palette 1, every tile 16 rows x 64 bytes.
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  TileConfig() {
    for (int t = 0; t < 8; ++t) colsb[t] = 64, rows[t] = kTile;
  }
};

// The documented semantics of TILELOADD / TILESTORED / TILEZERO / TDPBSSD on 16 x 64-byte tiles.
struct SoftTiles {
  alignas(64) int8_t t[8][kTileBytes];
  void begin() {}
  void end() {}
  template <int r> void load(const void* p, int64_t stride) {
    for (int i = 0; i < kTile; ++i) std::memcpy(t[r] + 64 * i, (const char*)p + i * stride, 64);
  }
  template <int r> void zero() { std::memset(t[r], 0, kTileBytes); }
  template <int r> void store(void* p) { std::memcpy(p, t[r], kTileBytes); }
  template <int c, int a, int b> void dp() {  // C[m][n] += sum_kq sum_i A[m][4kq+i] * B[kq][4n+i]
    int32_t C[kTile * kTile];
    std::memcpy(C, t[c], sizeof(C));
    const int8_t *A = t[a], *B = t[b];
    for (int m = 0; m < kTile; ++m)
      for (int kq = 0; kq < 16; ++kq)
        for (int n = 0; n < kTile; ++n)
          for (int i = 0; i < 4; ++i) C[m * kTile + n] += (int32_t)A[m * 64 + 4 * kq + i] * B[kq * 64 + 4 * n + i];
    std::memcpy(t[c], C, sizeof(C));
  }
};

#if defined(__x86_64__)
// The hardware tiles, in inline assembly of our own (AT&T operand order: sources first): no
// target attribute is needed here, so amx_gemm can be instantiated for both tile kinds and take
// its vector width from the function it is inlined into. Memory clobbers order the tile loads and
// stores with the plain C++ reads and writes of the same buffers.
#define ANDA_TMM(r) "%%tmm" #r
struct HwTiles {
  TileConfig cfg;
  ANDA_INLINE void begin() { __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory"); }
  ANDA_INLINE void end() { __asm__ volatile("tilerelease" ::: "memory"); }
  template <int r>
  ANDA_INLINE void load(const void* p, int64_t stride) {
    if constexpr (r == 0) __asm__ volatile("tileloadd (%0,%1,1), " ANDA_TMM(0) ::"r"(p), "r"(stride) : "memory");
    else if constexpr (r == 1) __asm__ volatile("tileloadd (%0,%1,1), " ANDA_TMM(1) ::"r"(p), "r"(stride) : "memory");
    else if constexpr (r == 2) __asm__ volatile("tileloadd (%0,%1,1), " ANDA_TMM(2) ::"r"(p), "r"(stride) : "memory");
    else __asm__ volatile("tileloadd (%0,%1,1), " ANDA_TMM(3) ::"r"(p), "r"(stride) : "memory");
  }
  template <int r>
  ANDA_INLINE void zero() {
    if constexpr (r == 4) __asm__ volatile("tilezero " ANDA_TMM(4) ::);
    else if constexpr (r == 5) __asm__ volatile("tilezero " ANDA_TMM(5) ::);
    else if constexpr (r == 6) __asm__ volatile("tilezero " ANDA_TMM(6) ::);
    else __asm__ volatile("tilezero " ANDA_TMM(7) ::);
  }
  template <int c, int a, int b>
  ANDA_INLINE void dp() {  // tmm c += tmm a (activations) . tmm b (weights)
    if constexpr (c == 4) __asm__ volatile("tdpbssd " ANDA_TMM(0) ", " ANDA_TMM(2) ", " ANDA_TMM(4) ::);
    else if constexpr (c == 5) __asm__ volatile("tdpbssd " ANDA_TMM(1) ", " ANDA_TMM(2) ", " ANDA_TMM(5) ::);
    else if constexpr (c == 6) __asm__ volatile("tdpbssd " ANDA_TMM(0) ", " ANDA_TMM(3) ", " ANDA_TMM(6) ::);
    else __asm__ volatile("tdpbssd " ANDA_TMM(1) ", " ANDA_TMM(3) ", " ANDA_TMM(7) ::);
  }
  template <int r>
  ANDA_INLINE void store(void* p) {
    const int64_t s = 64;
    if constexpr (r == 4) __asm__ volatile("tilestored " ANDA_TMM(4) ", (%0,%1,1)" ::"r"(p), "r"(s) : "memory");
    else if constexpr (r == 5) __asm__ volatile("tilestored " ANDA_TMM(5) ", (%0,%1,1)" ::"r"(p), "r"(s) : "memory");
    else if constexpr (r == 6) __asm__ volatile("tilestored " ANDA_TMM(6) ", (%0,%1,1)" ::"r"(p), "r"(s) : "memory");
    else __asm__ volatile("tilestored " ANDA_TMM(7) ", (%0,%1,1)" ::"r"(p), "r"(s) : "memory");
  }
};
#undef ANDA_TMM
#endif

// 16 float32 / int32 lanes (one zmm with AVX-512; GCC splits them for narrower targets).
#pragma GCC diagnostic ignored "-Wpsabi"  // the vector helpers below are always inlined
typedef float v16f __attribute__((vector_size(64)));
typedef int32_t v16i __attribute__((vector_size(64)));
ANDA_INLINE v16f ldf(const float* p) { v16f v; std::memcpy(&v, p, 64); return v; }
ANDA_INLINE v16i ldi(const int32_t* p) { v16i v; std::memcpy(&v, p, 64); return v; }
ANDA_INLINE void stf(float* p, const v16f& v) { std::memcpy(p, &v, 64); }

struct AmxArgs {
  const int8_t* A;
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

// B tile of one block and group: byte kq*64 + j = (j < 32 ? low : high nibble of w[kq*32 + j%32])
// minus the zero point of row j/4 (rows 0..7 are the low nibbles, 8..15 the high ones).
ANDA_INLINE void build_b(const uint8_t* w, const int32_t* z, int8_t* bt) {
  int8_t zp[64];
  for (int j = 0; j < 64; ++j) zp[j] = (int8_t)z[j >> 2];
  for (int kq = 0; kq < 16; ++kq)
    for (int j = 0; j < 32; ++j) {
      bt[kq * 64 + j] = (int8_t)((w[kq * 32 + j] & 15) - zp[j]);
      bt[kq * 64 + 32 + j] = (int8_t)((w[kq * 32 + j] >> 4) - zp[32 + j]);
    }
}

// C tiles of one group: ct [C chunks][4 tiles (i, j) -> 2i + j][16 tokens][16 rows].
template <int C, class Tiles>
ANDA_INLINE void group_tiles(Tiles& tl, const int8_t* bg, const int8_t* at, int64_t tstride,
                             bool two, int32_t* ct) {
  tl.template load<0>(bg, 64);
  tl.template load<1>(bg + kTileBytes, 64);
  for (int c = 0; c < C; ++c) {
    int32_t* cc = ct + c * 4 * kTile * kTile;
    tl.template load<2>(at + 64 * c, tstride);
    tl.template zero<4>();
    tl.template zero<5>();
    tl.template dp<4, 2, 0>();
    tl.template dp<5, 2, 1>();
    if (two) {
      tl.template load<3>(at + 64 * c + kTile * tstride, tstride);
      tl.template zero<6>();
      tl.template zero<7>();
      tl.template dp<6, 3, 0>();
      tl.template dp<7, 3, 1>();
    }
    tl.template store<4>(cc);
    tl.template store<5>(cc + kTile * kTile);
    if (two) {
      tl.template store<6>(cc + 2 * kTile * kTile);
      tl.template store<7>(cc + 3 * kTile * kTile);
    }
  }
}

// Epilogue rows [r0, r1) of a batch (row r: tile q = r / 16, token row m = r % 16) of ng <= NB
// groups from g0, whose C tiles are at ct (group stride C * 4 tiles): y[q][m] += the groups'
// terms, in group order. A tile's scale vectors are loaded once for its rows.
template <int C, int NB>
ANDA_INLINE void epilogue_rows(const int32_t* ct, int g0, int ng, int r0, int r1, const AmxArgs& a,
                               int64_t t0, const float* const* sc, const int* gwo, float* y) {
  constexpr int kGroupInts = C * 4 * kTile * kTile;
  v16f scv[NB];
  for (int r = r0; r < r1; ++r) {
    const int q = r >> 4, m = r & 15;
    if (r == r0 || m == 0)
      for (int j = 0; j < NB; ++j)
        if (j < ng) scv[j] = ldf(sc[q & 1] + gwo[g0 + j]);
    const float* u = a.U + (t0 + 16 * (q >> 1) + m) * a.G + g0;
    float* yr = y + r * kTile;
    v16f acc = ldf(yr);
    for (int j = 0; j < NB; ++j) {
      if (j >= ng) break;
      const int32_t* c0 = ct + j * kGroupInts + r * kTile;
      v16i tot = ldi(c0);
      if constexpr (C > 1) tot += ldi(c0 + 4 * kTile * kTile) << 7;
      if constexpr (C > 2) tot += ldi(c0 + 8 * kTile * kTile) << 14;
      acc += __builtin_convertvector(tot, v16f) * (scv[j] * u[j]);
    }
    stf(yr, acc);
  }
}

template <int C, class Tiles>
ANDA_INLINE void amx_gemm(Tiles& tl, const AmxArgs& a) {
  constexpr int kBatch = C == 1 ? 4 : C == 2 ? 2 : 1;  // groups per epilogue batch
  constexpr int kGroupInts = C * 4 * kTile * kTile;
  alignas(64) int32_t ct[2][kBatch * kGroupInts];       // double-buffered batches (<= 32 KiB)
  alignas(64) float y[4 * kTile * kTile];
  const int G = a.G;
  const int64_t tstride = (int64_t)G * C * 64;
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  std::vector<int> gwo(G);  // offset of group g's weight-group scales in a block: 16 * (g / gpw)
  for (int g = 0; g < G; ++g) gwo[g] = 16 * (g / a.gpw);
  std::vector<int8_t> bbuf((size_t)G * 2 * kTileBytes);
  const int64_t T16 = (a.T + kTile - 1) / kTile * kTile;  // rows past T are zero padding
  const int nbatch = (G + kBatch - 1) / kBatch;
  tl.begin();
  for (int b = 0; b < nb; b += 2) {
    const bool twob = b + 1 < nb;
    const float* sc[2];
    for (int j = 0; j < 2; ++j) {
      const int bj = twob ? b + j : b;  // a missing second block: its results are discarded
      sc[j] = a.SCb + (int64_t)bj * a.sblock;
      const int32_t* Z = a.Zb + (int64_t)bj * a.zblock;
      const uint8_t* wb = a.Wp + (int64_t)bj * a.Gw64 * kGroupBytes;
      for (int g = 0; g < G; ++g) {
        int8_t* bt = bbuf.data() + ((size_t)g * 2 + j) * kTileBytes;
        if (j == 1 && !twob) std::memset(bt, 0, kTileBytes);
        else build_b(wb + (int64_t)g * kGroupBytes, Z + gwo[g], bt);
      }
    }
    for (int64_t t0 = 0; t0 < T16; t0 += 2 * kTile) {
      const bool two = t0 + kTile < T16;
      const int rows = (two ? 4 : 2) * kTile;  // epilogue rows: tiles 0, 1 (and 2, 3)
      std::fill(y, y + 4 * kTile * kTile, 0.0f);
      const int8_t* at = a.A + t0 * tstride;
      for (int k = 0; k <= nbatch; ++k) {
        // tile operations of batch k, each group followed by a share of batch k - 1's epilogue
        const int g0 = k * kBatch, ng = k < nbatch ? std::min(kBatch, G - g0) : 0;
        const int pg0 = g0 - kBatch, png = k > 0 ? kBatch : 0;  // batch k - 1 is always full
        const int share = (rows + kBatch - 1) / kBatch;
        int done = 0;
        for (int j = 0; j < ng; ++j) {
          group_tiles<C>(tl, bbuf.data() + (size_t)(g0 + j) * 2 * kTileBytes,
                         at + (int64_t)(g0 + j) * C * 64, tstride, two,
                         ct[k & 1] + j * kGroupInts);
          if (png) {
            const int r1 = std::min(rows, done + share);
            epilogue_rows<C, kBatch>(ct[(k - 1) & 1], pg0, png, done, r1, a, t0, sc, gwo.data(), y);
            done = r1;
          }
        }
        if (k == nbatch && nbatch > 0) {  // the last batch, possibly partial, drains here
          const int lg0 = (nbatch - 1) * kBatch, lng = G - lg0;
          epilogue_rows<C, kBatch>(ct[(k - 1) & 1], lg0, lng, 0, rows, a, t0, sc, gwo.data(), y);
        } else if (png) {
          epilogue_rows<C, kBatch>(ct[(k - 1) & 1], pg0, png, done, rows, a, t0, sc, gwo.data(), y);
        }
      }
      for (int i = 0; i < (two ? 2 : 1); ++i) {
        const int64_t ti = t0 + i * kTile;
        if (ti >= a.T) break;
        const int TT = (int)std::min<int64_t>(kTile, a.T - ti);
        for (int j = 0; j < (twob ? 2 : 1); ++j) {
          const int64_t bn0 = a.n0 + 16 * (b + j);
          write_tile(*a.os, y + (2 * i + j) * kTile * kTile, ti, TT, bn0,
                     (int)std::min<int64_t>(16, a.n1 - bn0), a.N);
        }
      }
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
  (void)S;  // the B tiles hold q - z: no zero-point term needs the activation sums
  const AmxArgs a{A, U, T, G, Wp, Gw64, SCb, Zb, sblock, zblock, (int)(group_size / 64),
                  n0, n1, N, &os};
#if defined(__x86_64__)
  if (hardware) return amx_hw(a, C);
#endif
  amx_soft(a, C);
}

}  // namespace anda
