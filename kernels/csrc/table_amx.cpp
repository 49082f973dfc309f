// AMX-BF16 path of the INT8 / INT4 table linear (the quantized LM head) for a few bfloat16 tokens (a
// batched decode step): y[t, r] = bias[r] + sum_g scale[r, g] * sum_{k in g} (code[r, k]) * x[t, k].
// Exact products: a code (-128..127) and a bfloat16 x are both exact in bfloat16, and TDPBF16PS
// sums their products in float32 (input and output denormals flushed to zero, as the instruction
// does). Per 16 table rows and 32 columns (one step):
//  * A tile (bf16, 16 rows x 32): the rows' INT8 codes (or INT4 codes, two per byte) converted to
//    bfloat16 (exact) in a staging buffer;
//  * B tile (bf16 pairs, 16 x N): x transposed into pairs, built once per call (table_amx_x);
//  * C tile (float32, 16 rows x N tokens): zeroed per group, stored after the group's steps and
//    scaled into 16 float32 accumulators (one per row, a lane per token) that stay in registers
//    across the groups; written once per 16 rows (bias, float32).
// The codes are read once per call, whatever the token count (at most 16 per call).
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#if defined(__linux__) && defined(__x86_64__)
#include <cpuid.h>
#endif

#include "anda_kern.h"

namespace anda {

#if defined(__x86_64__)

namespace {

#define ANDA_TABLE_AMX __attribute__((target("avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512bf16")))

constexpr int kRows = 16;  // table rows per tile
constexpr int kStep = (int)kTableAmxStep;  // columns (bf16 values) per tile step
// Steps ahead whose codes are prefetched (8 steps: 256 columns of each of the 16 rows): a head
// larger than the caches is streamed from DRAM in a pattern of 16 interleaved rows (4, 8 and 16
// steps measured on a random 1B Llama at batch 4: 8 best, 7.9 -> 7.0 ms per head call).
constexpr int64_t kPrefetchSteps = 8;

// tmm0 = A (16 x 64 B), tmm2 = B (16 x 4N B), tmm4 = C (16 x 4N B).
AmxTileConfig head_tiles(int N) {
  AmxTileConfig cfg;
  cfg.set(0, kRows, 64);
  cfg.set(2, kStep / 2, 4 * N);
  cfg.set(4, kRows, 4 * N);
  return cfg;
}

// 32 codes of one row from 16 bytes v of INT4 pairs (column 2j in the low nibble of byte j, 2j + 1
// in the high one): columns 0..15 and 16..31 as bytes (stored values q + 8).
ANDA_TABLE_AMX inline void int4_columns(__m128i v, __m128i& c0, __m128i& c1) {
  const __m128i m = _mm_set1_epi8(0x0F), lo = _mm_and_si128(v, m), hi = _mm_and_si128(_mm_srli_epi16(v, 4), m);
  c0 = _mm_unpacklo_epi8(lo, hi), c1 = _mm_unpackhi_epi8(lo, hi);
}

// 16 rows x 32 codes (INT8 stored + 128: 32 bytes per row; INT4 stored + 8: 16 bytes) -> bfloat16
// values of the codes, exact. row points at the step's first byte in the first of the 16 rows.
template <int BITS>
ANDA_TABLE_AMX inline void codes_to_bf16(const uint8_t* row, int64_t stride, uint16_t* out) {
  const __m512i off = _mm512_set1_epi32(BITS == 8 ? 128 : 8);
  for (int r = 0; r < kRows; ++r) {
    const uint8_t* p = row + r * stride;
    __m128i c0, c1;
    if (BITS == 8) c0 = _mm_loadu_si128((const __m128i*)p), c1 = _mm_loadu_si128((const __m128i*)(p + 16));
    else int4_columns(_mm_loadu_si128((const __m128i*)p), c0, c1);
    const __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(c0), off));
    const __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(c1), off));
    _mm512_storeu_si512(out + r * kStep, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
}

// The same for a row's last step of n < 32 columns (K not a multiple of 32): columns >= n are 0
// and never read (masked loads; an odd n's padding nibble is dropped).
template <int BITS>
ANDA_TABLE_AMX void codes_to_bf16_tail(const uint8_t* row, int64_t stride, uint16_t* out, int n) {
  const __m512i off = _mm512_set1_epi32(BITS == 8 ? 128 : 8);
  const __mmask16 mlo = (__mmask16)(n >= 16 ? 0xFFFFu : (1u << n) - 1),
                  mhi = (__mmask16)(n <= 16 ? 0u : (1u << (n - 16)) - 1);
  for (int r = 0; r < kRows; ++r) {
    const uint8_t* p = row + r * stride;
    __m128i c0, c1;
    if (BITS == 8) c0 = _mm_maskz_loadu_epi8(mlo, p), c1 = _mm_maskz_loadu_epi8(mhi, p + 16);
    else int4_columns(_mm_maskz_loadu_epi8((__mmask16)((1u << ((n + 1) / 2)) - 1), p), c0, c1);
    const __m512 lo = _mm512_maskz_cvtepi32_ps(mlo, _mm512_sub_epi32(_mm512_cvtepu8_epi32(c0), off)),
                 hi = _mm512_maskz_cvtepi32_ps(mhi, _mm512_sub_epi32(_mm512_cvtepu8_epi32(c1), off));
    _mm512_storeu_si512(out + r * kStep, (__m512i)_mm512_cvtne2ps_pbh(hi, lo));
  }
}

// Steps run in order over (16-row block, 32-column step); the codes of the next step are converted
// while the current step's tiles are loaded (two staging buffers), so a tile load never waits on
// the stores that just filled its buffer.
template <int BITS>
ANDA_TABLE_AMX void rows_amx(const TableArgs& a, const uint16_t* xb, int64_t r0, int64_t r1) {
  constexpr int64_t step_bytes = BITS == 8 ? kStep : kStep / 2;
  const int N = (int)a.T;
  const int64_t steps = table_amx_steps(a.K), per_group = a.group / kStep, nblocks = (r1 - r0) / kRows;
  const int last = (int)(a.K - (steps - 1) * kStep);  // columns of the last step (1..32)
  const __mmask16 lanes = (__mmask16)((1u << N) - 1);
  const int64_t astride = 2 * kStep, bstride = 4 * N;
  alignas(64) uint16_t abuf[2][kRows * kStep];
  alignas(64) float cbuf[kRows * 16];
  alignas(64) float outb[kRows * 16];
  const AmxTileConfig cfg = head_tiles(N);
  __asm__ volatile("ldtilecfg %0" ::"m"(cfg) : "memory");
  const int64_t total = nblocks * steps;
  const auto stage = [&](const uint8_t* p, int64_t st, uint16_t* out) {  // step st of a row
    if (last < kStep && st + 1 == steps) codes_to_bf16_tail<BITS>(p, a.pstride, out, last);
    else codes_to_bf16<BITS>(p, a.pstride, out);
  };
  stage(a.packed + r0 * a.pstride, 0, abuf[0]);
  __m512 acc[kRows];
  for (int64_t i = 0; i < total; ++i) {
    const int64_t b = i / steps, s = i % steps, rb = r0 + b * kRows;
    if (s == 0)
      for (int r = 0; r < kRows; ++r) acc[r] = _mm512_setzero_ps();
    if (s % per_group == 0) __asm__ volatile("tilezero %%tmm4" ::);
    if (i + 1 < total) {
      const int64_t nb = (i + 1) / steps, ns = (i + 1) % steps;
      stage(a.packed + (r0 + nb * kRows) * a.pstride + ns * step_bytes, ns, abuf[(i + 1) & 1]);
    }
    if ((i & 1) == 0 && i + kPrefetchSteps < total) {  // the 16 rows' line kPrefetchSteps steps ahead
      const int64_t pb = (i + kPrefetchSteps) / steps, ps = (i + kPrefetchSteps) % steps;
      const uint8_t* p = a.packed + (r0 + pb * kRows) * a.pstride + ps * step_bytes;
      for (int r = 0; r < kRows; ++r) _mm_prefetch((const char*)(p + r * a.pstride), _MM_HINT_T0);
    }
    const void* bp = xb + s * kStep * N;
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm0" ::"r"(abuf[i & 1]), "r"(astride) : "memory");
    __asm__ volatile("tileloadd (%0,%1,1), %%tmm2" ::"r"(bp), "r"(bstride) : "memory");
    __asm__ volatile("tdpbf16ps %%tmm2, %%tmm0, %%tmm4" ::);
    if ((s + 1) % per_group == 0 || s + 1 == steps) {  // the group's sums: scale into the accumulators
      const int64_t g = s / per_group;
      __asm__ volatile("tilestored %%tmm4, (%0,%1,1)" ::"r"(cbuf), "r"((int64_t)64) : "memory");
      for (int r = 0; r < kRows; ++r)
        acc[r] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(lanes, cbuf + 16 * r),
                                 _mm512_set1_ps(f16_bits_to_float(a.scale[(rb + r) * a.sstride + g])), acc[r]);
    }
    if (s + 1 == steps) {
      for (int r = 0; r < kRows; ++r) _mm512_store_ps(outb + 16 * r, acc[r]);
      for (int t = 0; t < N; ++t) {
        float* y = a.y + t * a.R + rb;
        for (int r = 0; r < kRows; ++r) y[r] = outb[16 * r + t] + (a.bias ? a.bias[rb + r] : 0.f);
      }
    }
  }
  __asm__ volatile("tilerelease" ::: "memory");
}

}  // namespace

bool amx_bf16_cpu() {
#if defined(__linux__)
  unsigned eax, ebx, ecx, edx;
  return __get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx) && (edx & (1u << 22));  // AMX-BF16
#else
  return false;
#endif
}

bool table_has_amx(int isa, int bits, int64_t T, int64_t K, int group) {
  static const bool cpu = amx_bf16_cpu();
  // ISA_AMX implies the tile permission was granted (amx_usable); whole 32-column steps per group
  // but the last, which may end in a partial step (any K)
  return cpu && isa == ISA_AMX && avx512bf16_usable() && (bits == 8 || bits == 4) && T >= 1 && T <= 16 &&
         group % kStep == 0;
}

void table_amx_x(const uint16_t* x, int64_t T, int64_t K, uint16_t* xb) {
  // xb[s][i][2t + e] = x[t][32 s + 2 i + e]: per 32-column step, 16 rows of N (t) bf16 pairs;
  // columns K.. of the last step are +0
  for (int64_t s = 0; s < table_amx_steps(K); ++s)
    for (int i = 0; i < kStep / 2; ++i)
      for (int64_t t = 0; t < T; ++t)
        for (int e = 0; e < 2; ++e) {
          const int64_t k = s * kStep + 2 * i + e;
          xb[(s * (kStep / 2) + i) * 2 * T + 2 * t + e] = k < K ? x[t * K + k] : (uint16_t)0;
        }
}

void table_rows_amx(const TableArgs& a, const uint16_t* xb, int64_t r0, int64_t r1) {
  const int64_t full = r0 + (r1 - r0) / kRows * kRows;
  if (full > r0) a.bits == 8 ? rows_amx<8>(a, xb, r0, full) : rows_amx<4>(a, xb, r0, full);
  if (full < r1) table_rows(ISA_AVX512, a, full, r1);  // the last < 16 rows
}

#else

bool amx_bf16_cpu() { return false; }
bool table_has_amx(int, int, int64_t, int64_t, int) { return false; }
void table_amx_x(const uint16_t*, int64_t, int64_t, uint16_t*) {}
void table_rows_amx(const TableArgs&, const uint16_t*, int64_t, int64_t) {}

#endif

}  // namespace anda
