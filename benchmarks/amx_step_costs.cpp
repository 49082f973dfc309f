// What one step of the AMX packed GEMM costs on this CPU, piece by piece (benchmarks/amx_step_costs.py
// compiles and runs it). A step is what kernels/csrc/anda_gemm_amx.cpp does per 16 tokens x 16
// weight rows x one 64-group: TILELOADD of the weight tile (1 KB) and of the activation tile,
// TILEZERO + TDPBSSD, TILESTORED of the int32 result (1 KB), then the vector epilogue: 16 rows of
// load, int32 -> float, times (scale x activation scale), added to float32 accumulators in registers.
// Printed: ns per step of the tile operations alone, of the epilogue alone, and of both in the
// kernel's order (epilogue two steps behind, results in a ring of four buffers), over the
// prefill shape (2048 x 576) . (576 x 1536) with the weight tiles streamed from L2 as the kernel
// does; and ns per instruction of TDPBSSD, TILESTORED and TILELOADD on their own.
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>

namespace {
struct alignas(64) TileConfig {
  uint8_t palette = 1, start_row = 0, reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
  TileConfig() { for (int t = 0; t < 8; ++t) colsb[t] = 64, rows[t] = 16; }
};
constexpr int T = 2048, G = 9, NB = 96;  // tokens, 64-groups (K = 576), 16-row weight blocks (N = 1536)
alignas(64) int8_t A[T * G * 64];
alignas(64) int8_t B[NB * G * 1024];
alignas(64) float U[T * G], SC[NB * G * 16], Y[16 * NB * 16];
alignas(64) int32_t ct[4][256];

inline __attribute__((always_inline)) void epilogue(__m512* acc, const int32_t* c, const float* sc, const float* u) {
  const __m512 vsc = _mm512_load_ps(sc);
#pragma GCC unroll 16
  for (int m = 0; m < 16; ++m)
    acc[m] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_load_si512(c + m * 16)),
                             _mm512_mul_ps(vsc, _mm512_set1_ps(u[m])), acc[m]);
}

#define STEP(BT, AT, CT) {                                                   \
    _tile_loadd(BT, B + (b * G + g) * 1024, 64);                             \
    _tile_loadd(AT, A + t0 * G * 64 + g * 64, G * 64);                       \
    _tile_zero(CT); _tile_dpbssd(CT, AT, BT); _tile_stored(CT, ct[g & 3], 64); }

// MODE 1: tile operations only; 2: epilogue only; 3: both (epilogue two steps behind)
template <int MODE>
__attribute__((noinline)) void gemm() {
  for (int t0 = 0; t0 < T; t0 += 16)
    for (int b = 0; b < NB; ++b) {
      __m512 acc[16];
      for (int m = 0; m < 16; ++m) acc[m] = _mm512_setzero_ps();
      for (int g = 0; g < G + 2; ++g) {
        if ((MODE & 1) && g < G) switch (g & 3) {
            case 0: STEP(0, 1, 4) break;
            case 1: STEP(2, 3, 5) break;
            case 2: STEP(0, 1, 6) break;
            default: STEP(2, 3, 7)
          }
        if ((MODE & 2) && g >= 2) epilogue(acc, ct[(g - 2) & 3], SC + (b * G + g - 2) * 16, U + t0 * G + (g - 2) * 16);
      }
      for (int m = 0; m < 16; ++m) _mm512_storeu_ps(Y + (m * NB + b) * 16, acc[m]);
    }
}

template <int MODE>
double ns_per_step() {
  gemm<MODE>();
  double best = 1e30;
  for (int r = 0; r < 5; ++r) {
    const auto t = std::chrono::steady_clock::now();
    gemm<MODE>();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count());
  }
  return best * 1e9 / ((T / 16) * NB * G);
}

template <class F>
double ns_each(F f, long n) {
  const auto t = std::chrono::steady_clock::now();
  for (long i = 0; i < n; i += 4) f(i);
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count() * 1e9 / n;
}
}  // namespace

int main() {
  if (syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XTILEDATA */)) {
    std::puts("AMX tile data not granted by the OS");
    return 1;
  }
  for (long i = 0; i < (long)sizeof(A); ++i) A[i] = (int8_t)((i * 2654435761u) >> 13);
  for (long i = 0; i < (long)sizeof(B); ++i) B[i] = (int8_t)(((i * 2246822519u) >> 11) % 31) - 15;
  for (int i = 0; i < T * G; ++i) U[i] = 1.0f / (1 + i % 7);
  for (int i = 0; i < NB * G * 16; ++i) SC[i] = 0.01f;
  TileConfig cfg;
  _tile_loadconfig(&cfg);
  const double tiles = ns_per_step<1>(), epi = ns_per_step<2>(), both = ns_per_step<3>();
  std::printf("{\"tile_ops_ns\": %.2f, \"epilogue_ns\": %.2f, \"both_ns\": %.2f, ", tiles, epi, both);
  _tile_loadd(0, A, 64); _tile_loadd(1, A + 1024, 64); _tile_loadd(2, A + 2048, 64); _tile_loadd(3, A + 3072, 64);
  const long n = 4000000;
  const double dp = ns_each([](long) { _tile_dpbssd(4, 1, 0); _tile_dpbssd(5, 3, 0); _tile_dpbssd(6, 1, 2); _tile_dpbssd(7, 3, 2); }, n);
  const double st = ns_each([](long) { _tile_stored(4, ct[0], 64); _tile_stored(5, ct[1], 64); _tile_stored(6, ct[2], 64); _tile_stored(7, ct[3], 64); }, n);
  const double ld = ns_each([](long i) { _tile_loadd(0, A + (i & 7) * 1024, 64); _tile_loadd(1, A + ((i + 1) & 7) * 1024, 64);
                                         _tile_loadd(2, A + ((i + 2) & 7) * 1024, 64); _tile_loadd(3, A + ((i + 3) & 7) * 1024, 64); }, n);
  std::printf("\"tdpbssd_ns\": %.2f, \"tilestored_ns\": %.2f, \"tileloadd_l1_ns\": %.2f}\n", dp, st, ld);
  _tile_release();
  return 0;
}
