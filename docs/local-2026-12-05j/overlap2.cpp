// The floor of the AMX step on this CPU: which of a step's tile operations cost what, alone and beside
// the epilogue's register math (cvt + mul + fma per row, independent data). Scratch, stop 39.
#include "../main/kernels/csrc/anda_gemm_amx.cpp"  // NOLINT
#include <chrono>
#include <cstdio>
namespace anda {
namespace {
using Clock = std::chrono::steady_clock;
#define BEST_MS(out) \
  for (int rep_ = 0, done_ = 0; rep_ < 7; ++rep_, done_ = 0) \
    for (auto t0_ = Clock::now(); !done_; done_ = 1, \
         out = std::min(out, std::chrono::duration<double, std::milli>(Clock::now() - t0_).count()))
alignas(64) int8_t src[4][1024];
alignas(64) int32_t ct[4][kTile * kTile];
alignas(64) float sc[64], ut[64];
alignas(64) int32_t cinit[kTile * kTile];

// V: 0 dp only (resident A/B, C accumulating), 1 dp + store C, 2 zero + dp + store, 3 load B + zero + dp + store,
// 4 load A + load B + zero + dp + store. Math: also the epilogue's register math per step.
template <int V, bool Math>
ANDA_AMX double run(int n, float* sink) {
  HwTiles tl;
  tl.begin();
  tl.load<0>(src[0], 64); tl.load<1>(src[1], 64); tl.load<2>(src[2], 64); tl.load<3>(src[3], 64);
  f32x16 acc[kTile] = {};
  i32x16 r[kTile];
  for (int m = 0; m < kTile; ++m) r[m] = vload<i32x16>(cinit + m * kTile);
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) {
#define STEP(P)                                                                      \
      {                                                                              \
        constexpr int b = P & 1 ? 2 : 0, a = b + 1, c = 4 + P;                       \
        if constexpr (V >= 4) tl.load<a>(src[a], 64);                                \
        if constexpr (V >= 3) tl.load<b>(src[b], 64);                                \
        if constexpr (V >= 2) tl.zero<c>();                                          \
        tl.dp<c, a, b>();                                                            \
        if constexpr (V >= 1) tl.store<c>(ct[P]);                                    \
        if constexpr (Math) {                                                        \
          const f32x16 v = vload<f32x16>(sc + 16 * (P & 1));                         \
          for (int m = 0; m < kTile; ++m) acc[m] += __builtin_convertvector(r[m], f32x16) * (v * ut[m]); \
          for (int m = 0; m < kTile; ++m) asm volatile("" : "+v"(r[m]));            \
        }                                                                            \
      }
      STEP(0) STEP(1) STEP(2) STEP(3)
    }
  }
  tl.end();
  for (int m = 0; m < kTile; ++m) sink[0] += acc[m][m];
  return ms;
}
}  // namespace
}  // namespace anda

int main() {
  using namespace anda;
  if (!amx_usable()) { std::printf("AMX not usable here\n"); return 1; }
  for (int i = 0; i < 64; ++i) sc[i] = 1e-3f * (i + 1), ut[i] = 1.0f / (i + 1);
  for (int i = 0; i < kTile * kTile; ++i) cinit[i] = (i * 7919) % 4001 - 2000;
  for (int j = 0; j < 4; ++j) for (int i = 0; i < 1024; ++i) src[j][i] = (int8_t)(i * 37 + j);
  const int n = 200000;
  float sink = 0;
  const double per = 1e6 / (4.0 * n);
  double t[5][2];
  t[0][0] = run<0, false>(n, &sink); t[0][1] = run<0, true>(n, &sink);
  t[1][0] = run<1, false>(n, &sink); t[1][1] = run<1, true>(n, &sink);
  t[2][0] = run<2, false>(n, &sink); t[2][1] = run<2, true>(n, &sink);
  t[3][0] = run<3, false>(n, &sink); t[3][1] = run<3, true>(n, &sink);
  t[4][0] = run<4, false>(n, &sink); t[4][1] = run<4, true>(n, &sink);
  const char* names[5] = {"dp (4 accumulators)", "dp + store C", "zero + dp + store", "load B + zero + dp + store",
                          "load A + B + zero + dp + store"};
  std::printf("ns per step, L1, 1 thread      tiles alone   with epilogue math (16 x cvt+mul+fma)\n");
  for (int v = 0; v < 5; ++v) std::printf("%-32s %6.2f      %6.2f\n", names[v], t[v][0] * per, t[v][1] * per);
  std::printf("(sink %g)\n", sink);
}
