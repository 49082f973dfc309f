// Raw-pointer CPU kernels of the andactl extension (no torch headers: these TUs compile fast).
// Layouts are those of ops_spec.md plus the prepacked INT4 layout of kernels/prepack.py.
#pragma once
#include <cstdint>

namespace anda {

// Request `bytes` from p towards L2 (prefetcht1 per 64-byte line): data the next work item will
// stream, asked for while the current one runs (decode attention: the KV cache comes from memory
// once per step). Measured not to help the packed GEMM's weight blocks, which are contiguous.
inline void prefetch_l2(const void* p, int64_t bytes) {
  for (int64_t o = 0; o < bytes; o += 64) __builtin_prefetch((const char*)p + o, 0, 2);
}

// The 64-byte LDTILECFG operand, palette 1: per tile register its rows and bytes per row (the AMX
// GEMM and the AMX head each fill one).
struct alignas(64) AmxTileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  void set(int tile, int r, int bytes) { rows[tile] = (uint8_t)r, colsb[tile] = (uint16_t)bytes; }
};
static_assert(sizeof(AmxTileConfig) == 64, "LDTILECFG reads 64 bytes");

// ---- scalar conversions shared by the kernels (bit patterns of the 16-bit float formats) ----

// float value of an IEEE half (bit pattern h), exact (subnormals, Inf and NaN included).
inline float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t e = (h >> 10) & 31u, m = h & 0x3FFu, u;
  if (e == 31) {
    u = sign | 0x7F800000u | (m << 13);
  } else if (e == 0) {
    if (m == 0) {
      u = sign;
    } else {  // subnormal: normalise
      int s = 0;
      while (!(m & 0x400u)) m <<= 1, ++s;
      u = sign | ((uint32_t)(113 - s) << 23) | ((m & 0x3FFu) << 13);
    }
  } else {
    u = sign | ((e + 112u) << 23) | (m << 13);
  }
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// float value of a bfloat16 (bit pattern b), exact.
inline float bf16_bits_to_float(uint16_t b) {
  const uint32_t u = (uint32_t)b << 16;
  float f;
  __builtin_memcpy(&f, &u, 4);
  return f;
}

// bfloat16 bits of f rounded to nearest even, as torch's .to(bfloat16) (NaN stays a quiet NaN).
inline uint16_t f32_to_bf16_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, 4);
  if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (uint16_t)((u >> 16) | 0x40);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// Levels in order; every level >= ISA_AVX2 runs the AVX2 code outside the GEMM. ISA_AMX is
// AVX-512 VNNI plus AMX-INT8 tiles (the GEMM's path from about 8-11 tokens: amx_path). ISA_AMX_EMU
// ("amx-emulated", chosen only by ANDA_CPU_ISA) runs the AMX GEMM over software tiles and the
// scalar code elsewhere, on any CPU: it lets the tests check the AMX path's data layout.
enum Isa : int { ISA_AMX_EMU = -1, ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2, ISA_AMX = 3 };

int detect_isa();                    // best level this CPU (and OS) supports
// The CPU has AVX512-BF16 (VCVTNE2PS2BF16, VDPBF16PS) and env ANDA_NO_AVX512BF16 is unset or empty
// (read per call, like ANDA_CPU_ISA: lets the tests run the paths of AVX-512 CPUs without it).
bool avx512bf16_usable();
int select_isa();                    // detect_isa() capped by env ANDA_CPU_ISA (read per call)
const char* isa_name(int isa);
// True when the CPU has AMX-TILE + AMX-INT8, the OS enables tile state and Linux granted this
// process the tile data permission (requested by this call; asking again is harmless).
bool amx_usable();

// Activation rows (A/S/U of decode_act) are allocated up to a multiple of this many rows, the
// extra rows zero: the micro-kernels and AMX tiles read whole token tiles.
constexpr int64_t kTokenPad = 16;
inline int64_t padded_tokens(int64_t T) { return (T + kTokenPad - 1) / kTokenPad * kTokenPad; }

// Pack `rows` rows of K fp16 values (bit patterns) into words [rows, G, 1+M] and exponents
// [rows, G]. Returns true if an Inf/NaN (exponent field 31) was seen. Same bits for every isa.
bool pack_rows(int isa, const uint16_t* h, int64_t rows, int64_t K, int M, bool nearest,
               int64_t* words, uint8_t* exps);
// One 64-group (n <= 64 valid values): portable and AVX2 versions (anda_pack_avx2.cpp).
bool pack_group_scalar(const uint16_t* h, int n, int M, bool nearest, int64_t* out, uint8_t* e);
bool pack_group_avx2(const uint16_t* h, int n, int M, bool nearest, int64_t* out, uint8_t* e);

// Decode [rows, G, 1+M] words to float32 [rows, K] (exact).
void unpack_rows(const int64_t* words, const uint8_t* exps, int64_t rows, int64_t G, int M,
                 int64_t K, float* out);

// 2^(E - 15 - (M - 1)): the value of one mantissa unit of a group whose shared exponent field is E
// (0..31) at M (1..16) mantissa bits, built from its bits (always a normal float: equal to ldexp).
inline float unit_scale(int E, int M) {
  const uint32_t bits = (uint32_t)(E - 15 - (M - 1) + 127) << 23;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

// Number of 7-bit chunks the GEMM splits an M-bit mantissa into.
inline int gemm_chunks(int M) { return (M + 6) / 7; }

// The AVX2 micro-kernel reads M = 8 activations as magnitude / sign (one u8 x s8 product per value
// instead of one per chunk): the A rows of decode_act / quantize_rows are converted in place by
// to_magsign before the GEMM (chunk 0 = |m| as uint8 0..255, chunk 1 = the sign as int8 +1 / -1).
inline bool avx2_magsign(int isa, int M) { return isa == ISA_AVX2 && M == 8; }
void to_magsign(int8_t* A, int64_t rows, int64_t G);  // rows x G x [2][64], in place

// Decode activations to the GEMM layout: A int8 [rows, G, C, 64] (even k then odd k per group,
// chunk c = bits 7c..7c+6 of the magnitude, signed), S int32 [rows, G] = sum of signed
// magnitudes, U float [rows, G] = 2^(E-15-(M-1)).
void decode_act(const int64_t* words, const uint8_t* exps, int64_t rows, int64_t G, int M,
                int8_t* A, int32_t* S, float* U);

// Prepacked INT4 weight: uint8 [NB = ceil(N/16), Gw64 = Kw/64, 16 (kq), 32]. Byte
// [b, g, kq, 4r + e] holds in its LOW nibble the code of row 16b + r and in its HIGH nibble the
// code of row 16b + 8 + r (r < 8), both at column 64g + kk, where position p = 4kq + e maps to
// kk = 2p for p < 32 and kk = 2(p - 32) + 1 otherwise (even columns, then odd). Rows >= N: 0.
constexpr int64_t kBlockRows = 16;
constexpr int64_t kGroupBytes = 512;  // one 16-row block of one 64-column group

// Bytes ahead of a prepacked weight stream that the decode kernels prefetch: into L1 4 groups
// ahead, into L2 16 groups (8 KiB) ahead. A decode step of a model larger than the caches streams
// its weights from DRAM, where the hardware prefetcher stops at every 4 KiB page; measured on a
// 2-core Xeon (96 distinct 2048 x 5632 linears, 606 MB, one token): 4 groups alone 11.9 / 21.3
// GB/s at 1 / 2 threads, with the L2 prefetch 16 groups ahead 13.2-14.0 / 24.4-26.8 GB/s (torch
// reading a 600 MB tensor: 13.5 / 26.2); 8, 32, 64 groups ahead no better; no change while the
// weights fit the L3 cache.
constexpr int64_t kNearPrefetch = 4 * kGroupBytes, kFarPrefetch = 16 * kGroupBytes;

// Prefetches for the 64 weight bytes at w of a stream ending at wend (the work item's end: the
// next item may be another thread's). A hint: never changes a result.
inline void prefetch_weights(const uint8_t* w, const uint8_t* wend) {
  const int64_t left = wend - w;  // (no pointer is formed past the stream's end)
  if (left > kFarPrefetch) __builtin_prefetch(w + kFarPrefetch, 0, 2);   // prefetcht1
  if (left > kNearPrefetch) __builtin_prefetch(w + kNearPrefetch, 0, 3);  // prefetcht0
}

// Prepack blocks [b0, b1) of canonical w [N, wstride] into out (which points at block b0).
void prepack_blocks(int isa, const uint8_t* w, int64_t wstride, int64_t N, int64_t Gw64,
                    int64_t b0, int64_t b1, uint8_t* out);

// y[t, n] for t < T and n in [n0, n1), n0 a multiple of 16. A/S/U as decode_act (T rows; A
// converted by to_magsign where avx2_magsign(isa, M)).
// Wp points at block n0/16 of the prepacked weight (Gw64 groups per block); scales/zeros are
// canonical [N, sstride] (zeros nullptr: symmetric, zero 8); y is [T, N].
// Quantize fp16 rows straight to the decode_act layout (A/S/U above); bit-identical to pack_rows
// then decode_act. Returns true if an Inf/NaN (exponent field 31) was seen (anda_quant.cpp).
bool quantize_rows(int isa, const uint16_t* h, int64_t rows, int64_t K, int M, bool nearest,
                   int8_t* A, int32_t* S, float* U);
bool quantize_group_scalar(const uint16_t* h, int n, int M, bool nearest, int8_t* A, int32_t* S,
                           float* U);
bool quantize_group_avx2(const uint16_t* h, int n, int M, bool nearest, int8_t* A, int32_t* S,
                         float* U);

// float32 -> float16 bit patterns, rounded to nearest even (torch's `.to(torch.float16)`, bit for
// bit). Returns true if some |x| > 65504 or x is NaN: such a value has no float16 it would
// round to without overflowing (65504 < |x| < 65520 rounds down, yet is out of range). Scalar and
// AVX2 (F16C) paths give the same bits (anda_quant.cpp).
bool f32_to_f16(int isa, const float* x, int64_t n, uint16_t* h);
// The same for bfloat16 bit patterns (exact in float32, then rounded like f32_to_f16): equal to
// torch's bfloat16 -> float16 conversion, with the same range report.
bool bf16_to_f16(int isa, const uint16_t* x, int64_t n, uint16_t* h);

// A linear layer over a group-wise INT8 / INT4 table (table_kern.cpp): x float32 [T, K]; packed
// uint8 [R, pstride] (INT8: q + 128; INT4: (q + 8) of column 2j in the low nibble of byte j, of
// 2j + 1 in the high one); scale float16 bits [R, sstride], group `group` along K; bias float32
// [R] or null; y float32 [T, R] (row stride R). table_rows fills the columns r0..r1-1 of y.
struct TableArgs {
  const float* x;
  int64_t T, K;
  const uint8_t* packed;
  int64_t pstride;
  const uint16_t* scale;
  int64_t sstride;
  int bits, group;
  const float* bias;
  float* y;
  int64_t R;
};
void table_rows(int isa, const TableArgs& a, int64_t r0, int64_t r1);
// Rows r0..r1-1 of the table as float32 w [r1 - r0, K]: code * scale, exact (an 8-bit code times
// a float16 scale fits float32's mantissa). The table path of many tokens multiplies these.
void table_dequant_rows(const TableArgs& a, int64_t r0, int64_t r1, float* w);
// Whether this CPU (AVX512-BF16) and the table's shape (16-column steps) have the path below.
bool table_has_bf16_dequant(int isa, int64_t K, int group);
// The same rows as bfloat16 bits w [r1 - r0, K], only where table_has_bf16_dequant holds:
// table_dequant_rows' exact float32 values rounded to nearest even, bit for bit what torch's
// .to(bfloat16) of them gives (they are never denormal or NaN: |code| >= 1 times a finite float16
// scale).
void table_dequant_rows_bf16(const TableArgs& a, int64_t r0, int64_t r1, uint16_t* w);

// AMX-BF16 path of table_rows for bfloat16 tokens (table_amx.cpp): whether it applies (CPU with
// AMX-BF16 and AVX512-BF16 at isa ISA_AMX, INT8 or INT4 codes, 1..16 tokens, groups of whole 32-column
// steps, any K); xb = x's bfloat16 bits [T, K] rearranged by table_amx_x ([table_amx_steps(K)][16]
// [T][2], zeros past column K - 1: T * kTableAmxStep * table_amx_steps(K) values); then
// table_rows_amx fills columns r0..r1-1 of y like table_rows (products exact, float32 sums; a.x
// must still hold x in float32 for the last r1 - r0 mod 16 rows).
bool table_has_amx(int isa, int bits, int64_t T, int64_t K, int group);
// The CPU has AMX-BF16 (CPUID.7.0:EDX[22]); the tile permission is amx_usable()'s (table_amx.cpp).
bool amx_bf16_cpu();
constexpr int64_t kTableAmxStep = 32;  // bfloat16 columns per AMX-BF16 tile step of the table path
inline int64_t table_amx_steps(int64_t K) { return (K + kTableAmxStep - 1) / kTableAmxStep; }
void table_amx_x(const uint16_t* x, int64_t T, int64_t K, uint16_t* xb);
void table_rows_amx(const TableArgs& a, const uint16_t* xb, int64_t r0, int64_t r1);

// Where gemm_blocked writes y[t, n] (row stride N): float32 or bfloat16 (round to nearest even),
// after adding bias[n] in float32 when bias is not null. Exactly one of f32 / bf16 is set.
struct OutSpec {
  float* f32;
  uint16_t* bf16;
  const float* bias;
};

// Blocked weight scales: float32, or float16 bit patterns holding the same values exactly (half
// the scale bytes a decode step streams; kernels/fused.py picks float16 only when every scale
// round-trips). Exactly one pointer is set.
struct BlockedScales {
  const float* f32;
  const uint16_t* f16;
  BlockedScales at(int64_t e) const { return {f32 ? f32 + e : nullptr, f16 ? f16 + e : nullptr}; }
  float operator[](int64_t e) const { return f32 ? f32[e] : f16_bits_to_float(f16[e]); }
};

// As gemm_prepacked, with the scales and zero points already blocked: SCb / Zb point at block
// n0/16 of scales / uint8 zero points [NB, sblock/16, 16] (block b at offset b * sblock, resp.
// b * zblock; column 16 * gw + l holds weight group gw of row 16b + l). zblock = 0: one block of
// zero points shared by all blocks (symmetric weights: all 8). M: the activations' mantissa bits
// (A holds C = gemm_chunks(M) chunks of magnitude <= 2^min(M, 7) - 1: bounds the kernels' int16 sums).
void gemm_blocked(int isa, const int8_t* A, const int32_t* S, const float* U, int64_t T, int G,
                  int M, const uint8_t* Wp, int64_t Gw64, BlockedScales SCb, const uint8_t* Zb,
                  int64_t sblock, int64_t zblock, int64_t group_size, int64_t n0, int64_t n1,
                  int64_t N, const OutSpec& out);

// True when gemm_blocked takes the AMX tile path for T tokens of C chunks at this isa
// (anda_gemm_kern.cpp).
bool amx_path(int isa, int64_t T, int C);

// 16-row weight blocks per parallel work item of the GEMM ops: 4..16 on the micro-kernel paths
// (aiming at 4 items per thread); on the AMX path, panels whose B tiles (G KiB per block,
// unpacked once per item and reused by every token tile) stay within ~1 MiB (half an L2 of the
// AMX CPUs: the activations are streamed once per item, which costs at large K), sized so that
// the NB blocks split into equal items, a multiple of the thread count of them.
int64_t item_blocks(int isa, int64_t T, int M, int64_t G, int64_t NB, int64_t threads);

// True when the AMX tile path sums both chunks of M mantissa bits into one C tile per step for a
// call of T tokens (M = 8..10, more than one token tile): B tiles then take 2 KiB per group of a
// block instead of 1 (anda_gemm_amx.cpp).
bool amx_folds(int64_t T, int M);

// The AMX tile GEMM over the same arguments as gemm_blocked (anda_gemm_amx.cpp): hardware tiles
// when `hardware`, else software tiles with the same semantics (any CPU; slow, for tests).
void gemm_amx(bool hardware, const int8_t* A, const int32_t* S, const float* U, int64_t T, int G,
              int M, const uint8_t* Wp, int64_t Gw64, BlockedScales SCb, const uint8_t* Zb,
              int64_t sblock, int64_t zblock, int64_t group_size, int64_t n0, int64_t n1,
              int64_t N, const OutSpec& out);

void gemm_prepacked(int isa, const int8_t* A, const int32_t* S, const float* U, int64_t T, int G,
                    int M, const uint8_t* Wp, int64_t Gw64, const float* scales, int64_t sstride,
                    const uint8_t* zeros, int64_t group_size, int64_t n0, int64_t n1, int64_t N,
                    float* y);

// Attention of T query tokens per head against all S cached keys (no mask; attn_kern.cpp):
// o[b, h, t] = softmax_j(scale * q[b, h, t] . k[b, h / (H / KVH), j]) . v[b, h / (H / KVH), :].
// q / k / v / o share one element type (kAttn*); strides are in elements, the last dimension
// (D) contiguous; o is [B, H, T, D]. Items are (batch, KV head) pairs, B * KVH of them.
enum AttnDtype : int { kAttnF32 = 0, kAttnBF16 = 1, kAttnF16 = 2 };
struct AttnArgs {
  const void* q;
  int64_t q_sb, q_sh, q_st;
  const void* k;
  int64_t k_sb, k_sh, k_ss;
  const void* v;
  int64_t v_sb, v_sh, v_ss;
  void* o;
  int64_t o_sb, o_sh, o_st;
  int dtype;
  int64_t B, H, KVH, T, S, D;
  float scale;
  // Split attention: each (batch, KV head) runs as nsplit items over equal key ranges, which keep
  // their normalised rows and (max, sum) in part ([B * KVH * nsplit][rows][D + 2] floats in
  // blocks of kRowBlock rows); attn_combine then writes o. nsplit = 1: items write o directly.
  float* part;
  int64_t nsplit;
};
// Whether items run the AVX-512 path at this isa and head size; attn_vectorized: that or the AVX2
// one (else the scalar loop).
bool attn_has_avx512(int isa, int64_t D);
bool attn_vectorized(int isa, int64_t D);
void attn_items(int isa, const AttnArgs& a, int64_t i0, int64_t i1);
// Rows of (batch, KV head) pairs i0..i1-1 from their nsplit partial results (a.part) into a.o.
void attn_combine(const AttnArgs& a, int64_t i0, int64_t i1);

// out[t] = (r[t] @ S) rounded to the element type, + u[t] (shortcut_kern.cpp), t < T: r [T, din],
// S [din, dout], u and out [T, dout], all contiguous, one element type (kAttn*). Columns c0..c1-1;
// parallel items are multiples of kShortcutCols columns (the scalar loop sums that many at a time).
constexpr int64_t kShortcutCols = 128;
struct ShortcutArgs {
  const void* r;
  const void* S;
  const void* u;
  void* out;
  int dtype;
  int64_t T, din, dout;
};
void shortcut_rows(int isa, const ShortcutArgs& a, int64_t c0, int64_t c1);

}  // namespace anda
