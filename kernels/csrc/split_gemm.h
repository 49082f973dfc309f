// Split-bfloat16 GEMM on AMX-BF16 tiles (split_gemm.cpp; torch glue in split_gemm_cpu.cpp; schemas
// and the torch reference in kernels/split_gemm.py): y[M, N] = x[M, K] B[K, N], x and B float32.
// Every value v is split into hi = bf16(v) and lo = bf16(v - hi) (round to nearest even), and
//     y = x_hi B_hi + x_hi B_lo + x_lo B_hi
// is summed in float32 by TDPBF16PS (products exact). The dropped x_lo B_lo term and the rounding
// of lo bound each product's error by about 2^-16 of |x||B|: float32-grade logits at bfloat16 tile
// speed. Values below 2^-126 count as zero (TDPBF16PS's DAZ); the inputs must be finite.
#pragma once
#include <cstdint>

namespace anda {

constexpr int64_t kSplitStep = 32;   // reduction values per tile step (16 bf16 pairs)
constexpr int64_t kSplitBlock = 32;  // rows of x / columns of B per packed block (two 16-wide tiles)
constexpr int64_t kSplitTile = 512;  // bf16 values per tile (16 rows x 64 bytes)
// Per block and step the packed operand holds 4 tiles: hi of tile 0, hi of tile 1, lo of 0, lo of 1.
constexpr int64_t kSplitStepValues = 4 * kSplitTile;

inline int64_t split_steps(int64_t K) { return (K + kSplitStep - 1) / kSplitStep; }
inline int64_t split_blocks(int64_t n) { return (n + kSplitBlock - 1) / kSplitBlock; }
// bf16 values of a packed operand with `n` rows of x (or columns of B) over K reduction values
inline int64_t split_packed_size(int64_t n, int64_t K) { return split_blocks(n) * split_steps(K) * kSplitStepValues; }

// B operand, blocks nb0..nb1-1 of 32 columns: B[k][n] = w[k * sk + n * sn] for k < K, n < N (zero
// beyond). Tile t, part p of (block, step s) holds VNNI pairs: [i][c][e] = part p of B[32 s + 2 i + e][32 block + 16 t + c].
void split_pack_b(const float* w, int64_t sk, int64_t sn, int64_t K, int64_t N, uint16_t* out, int64_t nb0, int64_t nb1);
// A operand, blocks mb0..mb1-1 of 32 rows of x [M, K] (row stride lda): tile t, part p of (block,
// step s) holds [r][j] = part p of x[32 block + 16 t + r][32 s + j] (zero beyond M, K).
void split_pack_a(const float* x, int64_t lda, int64_t M, int64_t K, uint16_t* out, int64_t mb0, int64_t mb1);

enum SplitTiles : int { kSplitSoftware = 0, kSplitEmulated = 1, kSplitHardware = 2 };
// kSplitHardware where the CPU has AMX-BF16 and the tile permission (select_isa() == ISA_AMX),
// kSplitEmulated under ANDA_CPU_ISA=amx-emulated (software tiles: the tests of the layout on any
// CPU), else kSplitSoftware (the same software tiles; callers use torch's float32 GEMM instead).
int split_tiles();

// C[32 mb + r][32 nb + c] (row stride ldc, M x N valid) for column blocks nb0..nb1-1, every row
// block, over steps s0..s1-1: accumulate into C's values when `accumulate`, else overwrite them.
void split_gemm(int tiles, const uint16_t* A, const uint16_t* B, int64_t M, int64_t N, int64_t K, float* C,
                int64_t ldc, int64_t nb0, int64_t nb1, int64_t s0, int64_t s1, bool accumulate);

}  // namespace anda
