// AMX-INT8 path of the packed GEMM (anda_gemm_kern.cpp dispatches here from 6-9 tokens,
// amx_path, when the CPU and the OS allow AMX tiles), and the same code over software tiles
// ("amx-emulated"), which runs on any CPU so that the tests check this path's layout, tiling and
// epilogue everywhere.
//
// One TDPBSSD per step (16 tokens, 16 weight rows, one 64-group, one chunk; a call of at most 8
// tokens configures its A and C tiles with 8 rows instead, token_rows):
//  * A tile (int8, 16 rows x 64 bytes): the activation chunks of 16 tokens, loaded straight from
//    the decode_act layout with the token stride (positions p = even k then odd k);
//  * B tile (int8, 16 k-quads x 16 rows x 4): the prepacked weight group with its nibbles spread
//    to bytes minus the row's zero point (code - z in [-15, 15]), in the "VNNI" layout TDPBSSD
//    wants. Every block of the call is unpacked once and reused by every token tile (a call with
//    a single token tile unpacks each group just before its step instead);
//  * C tile (int32, 16 tokens x 16 rows), stored and scaled into 16 float32 accumulators that stay
//    in registers across a block's groups: y[t, r] += (sum_c C_c << 7c) * (scale[r] * U[t]),
//    in group order, then written once per block (bias, float32 or bfloat16).
//  * Two chunks of at most 10 mantissa bits on calls of more than 16 tokens (amx_folds) go into ONE
//    C tile: the high chunk times 16 (a per-token-tile copy, fold_tokens) against weights times 8
//    (a second B tile per group), so such a step stores one C tile and runs the one-chunk epilogue.
// Steps run in order over (block, group) for one token tile, the tile operations kAhead steps ahead
// of the epilogue; for one chunk the tile registers rotate (B/A pairs alternate, C cycles through
// four) and a C tile is stored one step late, so consecutive steps do not wait on each other.
// Zero points above 15 (the op accepts any uint8) are folded as 15, the rest subtracted in the
// epilogue as rest * S[t] (S = the activation sums of decode_act).
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <utility>
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

constexpr int kTile = 16;      // tokens per A/C tile and weight rows per B/C tile
constexpr int kShortTile = 8;  // tokens per A/C tile of a call with at most this many tokens

// Chunk kinds (template parameter C): 1, 2, 3 chunks, each against the same B tile into its own C
// tile; or kFold: two chunks whose mantissas have at most kFoldMaxBits bits (|high chunk| <= 7),
// both summed into ONE C tile: the low chunk against B = code - z, the high chunk times kFoldA
// against B' = B times kFoldB (kFoldA * kFoldB = 2^7: the high chunk's weight), so the epilogue is
// that of one chunk. |16 * 7| <= 127 and |8 * 15| <= 127 keep both operands int8.
constexpr int kFold = 0, kFoldMaxBits = 10, kFoldA = 16, kFoldB = 8;
static_assert(kFoldA * kFoldB == 128 && kFoldA * ((1 << (kFoldMaxBits - 7)) - 1) <= 127 && kFoldB * 15 <= 127,
              "folded operands must stay int8");
constexpr int a_chunks(int C) { return C == kFold ? 2 : C; }  // activation chunks per group
constexpr int c_tiles(int C) { return C == kFold ? 1 : C; }   // C tiles per step

// Tile palette 1: all eight tiles 16 rows x 64 bytes (A and C tiles 8 rows for short calls).
// Tile registers per step (group_tiles):
// C = 1: B/A in tmm0/tmm1 or tmm2/tmm3 (alternating), C in tmm4..tmm7 (cycling); kFold: B/A-low in
// tmm0/tmm1, B'/A-high in tmm2/tmm3, C in tmm4..tmm7 (cycling); C > 1: B in tmm0, A chunk c in
// tmm(1 + c), C chunk c in tmm(4 + c).
struct TileConfig : AmxTileConfig {
  TileConfig() {
    for (int t = 0; t < 8; ++t) set(t, kTile, 64);
  }
  // A and C tiles of R token rows (R <= 16; B tiles keep their 16 k-quads) for C chunks
  void token_rows(int R, int C) {
    static constexpr int kOne[6] = {1, 3, 4, 5, 6, 7}, kMany[6] = {1, 2, 3, 4, 5, 6};  // group_tiles
    for (int i = 0; i < 6; ++i) rows[(C == 1 || C == kFold ? kOne : kMany)[i]] = (uint8_t)R;
  }
};

// The documented semantics of TILELOADD / TILESTORED / TILEZERO / TDPBSSD on 16 x 64-byte tiles.
struct SoftTiles {
  alignas(64) int8_t t[8][kTile * 64];
  static void write_block(const OutSpec& os, const float* out, int64_t t0, int TT, int64_t n0, int nl,
                          int64_t N);
  // Short token tiles: the buffers hold 16 rows (zero padding past T), so 16-row emulation gives
  // the hardware's first R rows unchanged.
  void token_rows(int, int) {}
  void begin() {}
  void end() {}
  template <int r> void load(const void* p, int64_t stride) {
    for (int i = 0; i < kTile; ++i) std::memcpy(t[r] + 64 * i, (const char*)p + i * stride, 64);
  }
  template <int r> void store(int32_t* p) { std::memcpy(p, t[r], sizeof(t[r])); }
  template <int r> void zero() { std::memset(t[r], 0, sizeof(t[r])); }
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
// The hardware tiles, in inline assembly of our own (AT&T operand order: sources first): the tile
// operations need no target attribute, so amx_gemm can be instantiated for both tile kinds and
// take its vector width from the function it is inlined into (write_block, called once per block
// and not inlined, carries the AVX-512 target itself). Memory clobbers order the tile loads and
// stores with the plain C++ reads and writes of the same buffers.
#define ANDA_TILES(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
struct HwTiles {
  TileConfig cfg;
  ANDA_AMX static void write_block(const OutSpec& os, const float* out, int64_t t0, int TT, int64_t n0,
                                   int nl, int64_t N);
  void token_rows(int R, int C) { cfg.token_rows(R, C); }
  ANDA_INLINE void begin() { __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory"); }
  ANDA_INLINE void end() { __asm__ volatile("tilerelease" ::: "memory"); }
  template <int r>
  ANDA_INLINE void load(const void* p, int64_t stride) {
#define ANDA_LOAD(n) \
  if constexpr (r == n) __asm__ volatile("tileloadd (%0,%1,1), %%tmm" #n ::"r"(p), "r"(stride) : "memory");
    ANDA_TILES(ANDA_LOAD)
#undef ANDA_LOAD
  }
  template <int r>
  ANDA_INLINE void store(int32_t* p) {
#define ANDA_STORE(n) \
  if constexpr (r == n) __asm__ volatile("tilestored %%tmm" #n ", (%0,%1,1)" ::"r"(p), "r"((int64_t)64) : "memory");
    ANDA_TILES(ANDA_STORE)
#undef ANDA_STORE
  }
  template <int r>
  ANDA_INLINE void zero() {
#define ANDA_ZERO(n) \
  if constexpr (r == n) __asm__ volatile("tilezero %%tmm" #n ::);
    ANDA_TILES(ANDA_ZERO)
#undef ANDA_ZERO
  }
  template <int c, int a, int b>
  ANDA_INLINE void dp() {  // tmm c += tmm a (activations) . tmm b (weights)
#define ANDA_DP(cc, aa, bb)                       \
  if constexpr (c == cc && a == aa && b == bb)    \
    __asm__ volatile("tdpbssd %%tmm" #bb ", %%tmm" #aa ", %%tmm" #cc ::);
    ANDA_DP(4, 1, 0) ANDA_DP(5, 3, 2) ANDA_DP(6, 1, 0) ANDA_DP(7, 3, 2)  // C = 1 and kFold
    ANDA_DP(4, 3, 2) ANDA_DP(5, 1, 0) ANDA_DP(6, 3, 2) ANDA_DP(7, 1, 0)  // kFold
    ANDA_DP(5, 2, 0) ANDA_DP(6, 3, 0)                                     // C > 1
#undef ANDA_DP
    static_assert((a == 1 || a == 2 || a == 3) && (b == 0 || b == 2) && c >= 4, "no such tile product");
  }
};
#undef ANDA_TILES
#endif

struct AmxArgs {
  const int8_t* A;
  const int32_t* S;
  const float* U;
  int64_t T;
  int G;
  const uint8_t* Wp;
  int64_t Gw64;
  const float* SCb;  // float32 (gemm_amx widens float16 scales once per call)
  const uint8_t* Zb;
  int64_t sblock, zblock;
  int gpw;
  int64_t n0, n1, N;
  const OutSpec* os;
};

// GCC vector extensions: AVX-512 registers inside amx_hw (its target), plain code in amx_soft.
typedef float f32x16 __attribute__((vector_size(64)));
typedef int32_t i32x16 __attribute__((vector_size(64)));
typedef int8_t i8x32 __attribute__((vector_size(32)));
typedef uint8_t u8x32 __attribute__((vector_size(32)));

template <class V>
ANDA_INLINE V vload(const void* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

// The zero points of one block as B-tile bytes, zv[gw][64] (byte 4r + e of the low half: row r,
// of the high half: row 8 + r), capped at 15 so that code - zero fits [-15, 15]; the rest of a
// larger zero point goes to zrest[gw][16] (the epilogue subtracts rest * S). Returns whether any
// rest is non-zero.
ANDA_INLINE bool block_zeros(const uint8_t* Z, int gwn, int8_t* zv, int32_t* zrest) {
  bool rest = false;
  for (int gw = 0; gw < gwn; ++gw)
    for (int l = 0; l < 16; ++l) {
      const int32_t z = Z[gw * 16 + l], zf = std::min<int32_t>(z, 15);
      zrest[gw * 16 + l] = z - zf;
      rest |= z != zf;
      for (int e = 0; e < 4; ++e) zv[gw * 64 + (l < 8 ? 4 * l : 32 + 4 * (l - 8)) + e] = (int8_t)zf;
    }
  return rest;
}

// One B tile: the prepacked group w (512 bytes) with its nibbles spread to bytes, minus the zero
// points zv (64 bytes of block_zeros): bt[kq][64], low nibbles then high nibbles of each k-quad.
// Folded (kFold): a second tile B' = B * kFoldB follows at bt + 1024.
template <bool Folded>
ANDA_INLINE void unpack_group(const uint8_t* w, const int8_t* zv, int8_t* bt) {
  const i8x32 zlo = vload<i8x32>(zv), zhi = vload<i8x32>(zv + 32);
  for (int kq = 0; kq < 16; ++kq) {
    const u8x32 v = vload<u8x32>(w + kq * 32);
    const i8x32 lo = (i8x32)(v & (uint8_t)15) - zlo, hi = (i8x32)(v >> 4) - zhi;
    std::memcpy(bt + kq * 64, &lo, 32);
    std::memcpy(bt + kq * 64 + 32, &hi, 32);
    if constexpr (Folded) {  // times 8 in uint8 arithmetic (modulo 256: the int8 product, in range)
      const i8x32 lo8 = (i8x32)((u8x32)lo * (uint8_t)kFoldB), hi8 = (i8x32)((u8x32)hi * (uint8_t)kFoldB);
      std::memcpy(bt + 1024 + kq * 64, &lo8, 32);
      std::memcpy(bt + 1024 + kq * 64 + 32, &hi8, 32);
    }
  }
}

// The activation chunks of tokens t0..t0+15 (kTile rows of a padded A) for kFold, [16][G][2][64]:
// the low chunk as it is, the high chunk times kFoldA.
ANDA_INLINE void fold_tokens(const int8_t* A, int64_t t0, int G, int8_t* out) {
  const int64_t n = (int64_t)kTile * G;
  const int8_t* src = A + t0 * G * 128;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(out + i * 128, src + i * 128, 64);
    for (int j = 0; j < 64; ++j) out[i * 128 + 64 + j] = (int8_t)(src[i * 128 + 64 + j] * kFoldA);
  }
}

// The tile operations of one step (a group of one block) for a 16-token tile. C > 1: the C
// tiles of every chunk against the group's B tile, stored to ct[c] [16 tokens][16 rows]. C = 1,
// phase P = step % 4: the tile registers rotate so that consecutive steps never wait on each
// other, and the C tile is stored one step late (to prev, the previous step's ct; both at once
// for the last step of a chain, none before its first).
template <int C, int P, class Tiles>
ANDA_INLINE void group_tiles(Tiles& tl, const int8_t* at, int64_t tstride, const int8_t* bt,
                             int32_t (*ct)[kTile * kTile], int32_t (*prev)[kTile * kTile], bool last) {
  if constexpr (C == kFold) {  // both chunks into C tile c; rotation and late store as for C = 1
    constexpr int c = 4 + P, pc = 4 + (P + 3) % 4;
    tl.template load<0>(bt, 64);
    tl.template load<1>(at, tstride);
    tl.template zero<c>();
    tl.template dp<c, 1, 0>();
    tl.template load<2>(bt + 1024, 64);
    tl.template load<3>(at + 64, tstride);
    tl.template dp<c, 3, 2>();
    if (prev) tl.template store<pc>(prev[0]);
    if (last) tl.template store<c>(ct[0]);
  } else if constexpr (C == 1) {
    constexpr int b = P & 1 ? 2 : 0, a = b + 1, c = 4 + P, pc = 4 + (P + 3) % 4;
    tl.template load<b>(bt, 64);
    tl.template load<a>(at, tstride);
    tl.template zero<c>();
    tl.template dp<c, a, b>();
    if (prev) tl.template store<pc>(prev[0]);
    if (last) tl.template store<c>(ct[0]);
  } else {
    tl.template load<0>(bt, 64);
    tl.template load<1>(at, tstride);
    tl.template zero<4>();
    tl.template dp<4, 1, 0>();
    tl.template load<2>(at + 64, tstride);
    tl.template zero<5>();
    tl.template dp<5, 2, 0>();
    if constexpr (C > 2) {
      tl.template load<3>(at + 128, tstride);
      tl.template zero<6>();
      tl.template dp<6, 3, 0>();
    }
    tl.template store<4>(ct[0]);
    tl.template store<5>(ct[1]);
    if constexpr (C > 2) tl.template store<6>(ct[2]);
  }
}

// One token row m of a group's epilogue: acc += (sum_c C_c << 7c - rest * s) * (scale * u)
// (kFold: one C tile, as C = 1).
template <int C, bool Rest>
ANDA_INLINE void epilogue_row(f32x16& acc, const int32_t (*ct)[kTile * kTile], int m, f32x16 vsc,
                              float u, int32_t s, const int32_t* zr) {
  i32x16 tot = vload<i32x16>(ct[0] + m * kTile);
  if constexpr (C > 1) tot += vload<i32x16>(ct[1] + m * kTile) << 7;
  if constexpr (C > 2) tot += vload<i32x16>(ct[2] + m * kTile) << 14;
  if constexpr (Rest) tot -= vload<i32x16>(zr) * s;
  acc += __builtin_convertvector(tot, f32x16) * (vsc * u);
}

// A group's epilogue for the 16 tokens of a tile, unrolled in the source: every acc index is a
// constant, so the 16 accumulators live in registers across the group loop.
template <int C, bool Rest, int... M>
ANDA_INLINE void group_epilogue(f32x16* acc, const int32_t (*ct)[kTile * kTile], const float* sc,
                                const float* u, const int32_t* s, const int32_t* zr,
                                std::integer_sequence<int, M...>) {
  const f32x16 vsc = vload<f32x16>(sc);
  (epilogue_row<C, Rest>(acc[M], ct, M, vsc, u[M], s[M], zr), ...);
}

typedef uint32_t u32x16 __attribute__((vector_size(64)));
typedef uint16_t u16x16 __attribute__((vector_size(32)));

// Output row t, columns n0..n0+nl-1: acc (+ bias) as float32, or as bfloat16 rounded to nearest
// even with NaN kept NaN (the micro-kernels' write_rows rounding, bit for bit).
ANDA_INLINE void write_row(const OutSpec& os, f32x16 v, f32x16 vbias, int64_t t, int64_t n0, int nl,
                           int64_t N) {
  if (os.bias) v += vbias;
  if (os.f32) {  // a whole row is one vector store; only the last block of a matrix is partial
    if (nl == 16) std::memcpy(os.f32 + t * N + n0, &v, 64);
    else std::memcpy(os.f32 + t * N + n0, &v, (size_t)nl * 4);
    return;
  }
  const u32x16 u = (u32x16)v;
  const u32x16 r = (u & 0x7FFFFFFFu) > 0x7F800000u ? (u >> 16) | 0x40u : (u + 0x7FFFu + ((u >> 16) & 1u)) >> 16;
  const u16x16 h = __builtin_convertvector(r, u16x16);
  if (nl == 16) std::memcpy(os.bf16 + t * N + n0, &h, 32);
  else std::memcpy(os.bf16 + t * N + n0, &h, (size_t)nl * 2);
}

// Rows t0..t0+TT-1, columns n0..n0+nl-1 of the output from out [16][16]. Called through the
// tile kinds' write_block (not inlined: the token loop keeps its registers for the tiles).
ANDA_INLINE void write_block_impl(const OutSpec& os, const float* out, int64_t t0, int TT, int64_t n0,
                                  int nl, int64_t N) {
  f32x16 vbias = {};
  if (os.bias) std::memcpy(&vbias, os.bias + n0, (size_t)nl * 4);
  for (int m = 0; m < TT; ++m) write_row(os, vload<f32x16>(out + m * kTile), vbias, t0 + m, n0, nl, N);
}

template <int... M>
ANDA_INLINE void store_rows(float* out, const f32x16* acc, std::integer_sequence<int, M...>) {
  ((std::memcpy(out + M * kTile, &acc[M], sizeof(f32x16))), ...);
}

void SoftTiles::write_block(const OutSpec& os, const float* out, int64_t t0, int TT, int64_t n0, int nl,
                            int64_t N) {
  write_block_impl(os, out, t0, TT, n0, nl, N);
}

#if defined(__x86_64__)
ANDA_AMX void HwTiles::write_block(const OutSpec& os, const float* out, int64_t t0, int TT, int64_t n0,
                                   int nl, int64_t N) {
  write_block_impl(os, out, t0, TT, n0, nl, N);
}
#endif

template <int... M>
ANDA_INLINE void zero_rows(f32x16* acc, std::integer_sequence<int, M...>) {
  ((acc[M] = f32x16{}), ...);
}

// Steps a token tile's tile operations run ahead of its epilogue (ct holds kAhead + 1 steps).
constexpr int kAhead = 2;

// Where a token tile's steps j = b * G + g (block b, group g) take their B tiles from: the whole
// call's blocks unpacked once (all, contiguous in step order), or, for a call with a single token
// tile, each group unpacked just before its step into a ring of kAhead + 1 tiles (ring). Folded:
// every step's B tile is followed by its B' (2 KiB per step).
template <bool Folded>
struct BSource {
  static constexpr int64_t kStep = Folded ? 2048 : 1024;  // bytes of a step's B tiles
  const int8_t* all;
  int8_t* ring;
  const uint8_t* Wp;
  const uint8_t* wend;  // end of the call's weight stream (prefetches stop there)
  const int8_t* zv;
  int64_t Gw64;
  int G, gpw, gwn;
  ANDA_INLINE const int8_t* tile(int j, int b, int g, int slot) const {
    if (all) return all + j * kStep;
    int8_t* t = ring + slot * kStep;
    const uint8_t* w = Wp + ((int64_t)b * Gw64 + g) * kGroupBytes;
    for (int l = 0; l < kGroupBytes; l += 64) prefetch_weights(w + l, wend);
    unpack_group<Folded>(w, zv + ((int64_t)b * gwn + g / gpw) * 64, t);
    return t;
  }
};

// Step j (block b, group g) of a token tile (tile registers by phase j % 4 when C = 1 or kFold).
template <int C, class Tiles>
ANDA_INLINE void issue_step(Tiles& tl, const int8_t* at, int64_t tstride, const BSource<C == kFold>& bs,
                            int j, int b, int g, int steps, int32_t (*ct)[c_tiles(C)][kTile * kTile],
                            int slot) {
  const int8_t* bt = bs.tile(j, b, g, slot);
  const int8_t* a = at + g * a_chunks(C) * 64;
  int32_t (*prev)[kTile * kTile] = j > 0 ? ct[slot == 0 ? kAhead : slot - 1] : nullptr;
  const bool last = j + 1 == steps;
  if constexpr (C == 1 || C == kFold) {
    switch (j & 3) {
      case 0: return group_tiles<C, 0>(tl, a, tstride, bt, ct[slot], prev, last);
      case 1: return group_tiles<C, 1>(tl, a, tstride, bt, ct[slot], prev, last);
      case 2: return group_tiles<C, 2>(tl, a, tstride, bt, ct[slot], prev, last);
      default: return group_tiles<C, 3>(tl, a, tstride, bt, ct[slot], prev, last);
    }
  } else {
    group_tiles<C, 0>(tl, a, tstride, bt, ct[slot], nullptr, false);
  }
}

// One 16-token tile (tokens t0..t0+15) against every block: steps j = b * G + g in order, the
// tile operations kAhead steps ahead of the epilogue across block boundaries, the 16 float32
// accumulators in registers for one block at a time. at: the tile's activation chunks (its first
// token's row of A, or of fold_tokens' copy for kFold).
template <int C, bool Rest, int R, class Tiles>
ANDA_INLINE void token_tile(Tiles& tl, const AmxArgs& a, int64_t t0, const int8_t* at,
                            const BSource<C == kFold>& bs, const int32_t* zrest, const float* ut,
                            const int32_t* st, int32_t (*ct)[c_tiles(C)][kTile * kTile]) {
  constexpr auto rows = std::make_integer_sequence<int, R>();  // the tile's token rows
  alignas(64) float out[kTile * kTile];
  const int G = a.G, nb = (int)((a.n1 - a.n0 + 15) / 16), steps = nb * G;
  const int64_t tstride = (int64_t)G * a_chunks(C) * 64;
  int jb = 0, jg = 0;  // block and group of the next step to issue
  for (int j = 0; j < std::min(kAhead, steps); ++j) {
    issue_step<C>(tl, at, tstride, bs, j, jb, jg, steps, ct, j);
    if (++jg == G) jg = 0, ++jb;
  }
  f32x16 acc[R];
  zero_rows(acc, rows);
  for (int b = 0, j = 0, slot = 0; b < nb; ++b) {
    const float* SC = a.SCb + (int64_t)b * a.sblock;
    const int32_t* zr = zrest + (int64_t)b * bs.gwn * 16;
    const int64_t bn0 = a.n0 + 16 * b;
    const int TT = (int)std::min<int64_t>(R, a.T - t0);
    for (int m = 0; m < TT; ++m)  // the block's output lines, fetched while its groups run
      __builtin_prefetch(a.os->f32 ? (const void*)(a.os->f32 + (t0 + m) * a.N + bn0)
                                   : (const void*)(a.os->bf16 + (t0 + m) * a.N + bn0), 1);
    for (int g = 0, gw = 0, gi = 0; g < G; ++g, ++j) {
      const int ahead = slot == 0 ? kAhead : slot - 1;  // (slot + kAhead) % (kAhead + 1)
      if (j + kAhead < steps) {
        issue_step<C>(tl, at, tstride, bs, j + kAhead, jb, jg, steps, ct, ahead);
        if (++jg == G) jg = 0, ++jb;
      }
      group_epilogue<C, Rest>(acc, ct[slot], SC + gw * 16, ut + g * kTile, st + g * kTile, zr + gw * 16, rows);
      slot = slot == kAhead ? 0 : slot + 1;
      if (++gi == a.gpw) gi = 0, ++gw;
    }
    store_rows(out, acc, rows);
    Tiles::write_block(*a.os, out, t0, TT, bn0, (int)std::min<int64_t>(16, a.n1 - bn0), a.N);
    zero_rows(acc, rows);
  }
}

// R: token rows per A/C tile, 16, or 8 for a call of at most 8 tokens (a TDPBSSD, a C store and
// the epilogue of 8 rows cost less than of 16).
template <int C, int R, class Tiles>
ANDA_INLINE void amx_gemm(Tiles& tl, const AmxArgs& a) {
  constexpr bool folded = C == kFold;
  alignas(64) int32_t ct[kAhead + 1][c_tiles(C)][kTile * kTile];
  const int G = a.G;
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  const int gwn = (G + a.gpw - 1) / a.gpw;
  const bool one_tile = a.T <= kTile;
  std::vector<float> ut((size_t)G * kTile);  // the token tile's U and S, [group][token]
  std::vector<int32_t> st((size_t)G * kTile);
  std::vector<int8_t> zv((size_t)nb * gwn * 64);
  std::vector<int32_t> zrest((size_t)nb * gwn * 16);
  bool rest = false;
  for (int b = 0; b < nb; ++b)
    rest |= block_zeros(a.Zb + (int64_t)b * a.zblock, gwn, zv.data() + (int64_t)b * gwn * 64,
                        zrest.data() + (int64_t)b * gwn * 16);
  // B tiles: every block's, unpacked once and reused by every token tile; one token tile
  // unpacks each group just before its step instead
  constexpr int64_t step_bytes = BSource<folded>::kStep;
  std::vector<int8_t> bbuf((size_t)((one_tile ? kAhead + 1 : nb * G) * step_bytes + 64));
  int8_t* bt = bbuf.data() + (64 - (uintptr_t)bbuf.data() % 64) % 64;
  if (!one_tile)
    for (int b = 0; b < nb; ++b)
      for (int g = 0; g < G; ++g)
        unpack_group<folded>(a.Wp + ((int64_t)b * a.Gw64 + g) * kGroupBytes,
                             zv.data() + ((int64_t)b * gwn + g / a.gpw) * 64,
                             bt + ((int64_t)b * G + g) * step_bytes);
  const BSource<folded> bs{one_tile ? nullptr : bt, bt, a.Wp, a.Wp + (int64_t)nb * a.Gw64 * kGroupBytes,
                           zv.data(), a.Gw64, G, a.gpw, gwn};
  // kFold: each token tile's activations are copied with the high chunk scaled (fold_tokens)
  std::vector<int8_t> abuf(folded ? (size_t)kTile * G * 128 + 64 : 0);
  int8_t* af = folded ? abuf.data() + (64 - (uintptr_t)abuf.data() % 64) % 64 : nullptr;
  if (R < kTile) tl.token_rows(R, C);
  tl.begin();
  for (int64_t t0 = 0; t0 < a.T; t0 += R) {  // rows past T are zero padding
    for (int m = 0; m < R; ++m)
      for (int g = 0; g < G; ++g) {
        ut[g * kTile + m] = a.U[(t0 + m) * G + g];
        if (rest) st[g * kTile + m] = a.S[(t0 + m) * G + g];  // only the zero-point rests read S
      }
    const int8_t* at = a.A + t0 * (int64_t)G * a_chunks(C) * 64;
    if constexpr (folded) fold_tokens(a.A, t0, G, af), at = af;
    if (rest) token_tile<C, true, R>(tl, a, t0, at, bs, zrest.data(), ut.data(), st.data(), ct);
    else token_tile<C, false, R>(tl, a, t0, at, bs, zrest.data(), ut.data(), st.data(), ct);
  }
  tl.end();
}

template <int R, class Tiles>
ANDA_INLINE void amx_dispatch_rows(Tiles& tl, const AmxArgs& a, int M) {
  const int C = gemm_chunks(M);
  if (C == 1) amx_gemm<1, R>(tl, a);
  else if (amx_folds(a.T, M)) amx_gemm<kFold, R>(tl, a);
  else if (C == 2) amx_gemm<2, R>(tl, a);
  else amx_gemm<3, R>(tl, a);
}

template <class Tiles>
ANDA_INLINE void amx_dispatch(const AmxArgs& a, int M) {
  Tiles tl;
  if (a.T <= kShortTile) amx_dispatch_rows<kShortTile>(tl, a, M);
  else amx_dispatch_rows<kTile>(tl, a, M);
}

void amx_soft(const AmxArgs& a, int M) { amx_dispatch<SoftTiles>(a, M); }

#if defined(__x86_64__)
ANDA_AMX void amx_hw(const AmxArgs& a, int M) { amx_dispatch<HwTiles>(a, M); }
#endif

}  // namespace

// Folded only where every block's B tiles are unpacked once for many token tiles: a call with a
// single token tile unpacks each group per step, and B' would double that work (measured: 16
// tokens slower folded, 2048 faster).
bool amx_folds(int64_t T, int M) { return gemm_chunks(M) == 2 && M <= kFoldMaxBits && T > kTile; }

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

// float values of n float16 bit patterns (exact); F16C conversions where the CPU has AVX-512.
#if defined(__x86_64__)
__attribute__((target("avx2,f16c,avx512f"))) static void widen_f16_avx512(const uint16_t* h, int64_t n,
                                                                          float* f) {
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    _mm512_storeu_ps(f + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i*)(h + i))));
  for (; i < n; ++i) f[i] = f16_bits_to_float(h[i]);
}
#endif

static void widen_f16(bool avx512, const uint16_t* h, int64_t n, float* f) {
#if defined(__x86_64__)
  if (avx512) return widen_f16_avx512(h, n, f);
#endif
  for (int64_t i = 0; i < n; ++i) f[i] = f16_bits_to_float(h[i]);
}

void gemm_amx(bool hardware, const int8_t* A, const int32_t* S, const float* U, int64_t T, int G,
              int M, const uint8_t* Wp, int64_t Gw64, BlockedScales SCb, const uint8_t* Zb,
              int64_t sblock, int64_t zblock, int64_t group_size, int64_t n0, int64_t n1,
              int64_t N, const OutSpec& os) {
  const int gpw = (int)(group_size / 64);
  std::unique_ptr<float[]> wide;  // float16 scales widened once per call: the epilogue reads float32
  if (SCb.f16) {
    const int64_t nb = (n1 - n0 + 15) / 16, used = (int64_t)((G + gpw - 1) / gpw) * 16;
    wide.reset(new float[(size_t)(nb * used)]);
    for (int64_t b = 0; b < nb; ++b) widen_f16(hardware, SCb.f16 + b * sblock, used, wide.get() + b * used);
    SCb = BlockedScales{wide.get(), nullptr};
    sblock = used;
  }
  const AmxArgs a{A, S, U, T, G, Wp, Gw64, SCb.f32, Zb, sblock, zblock, gpw, n0, n1, N, &os};
#if defined(__x86_64__)
  if (hardware) return amx_hw(a, M);
#endif
  amx_soft(a, M);
}

}  // namespace anda
