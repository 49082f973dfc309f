// Can the AMX tile unit and the AVX-512 epilogue run side by side on this CPU? (scratch, stop 39)
// L1-resident: 4n steps of the kernel's C = 1 tile sequence, n x 4 epilogues on an independent buffer
// (no data dependency on the tiles), and both interleaved in one loop.
//   g++ -O3 -std=c++17 -I/work/main/kernels/csrc overlap.cpp <kernel .cpp files> -o overlap
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

alignas(64) int8_t src[1024];
alignas(64) int32_t ct[4][kTile * kTile];
alignas(64) int32_t ce[kAhead + 1][1][kTile * kTile];
alignas(64) float sc[64], ut[64];
alignas(64) int32_t st[64], zr[64];

// mode bit 0: tile ops; bit 1: epilogue (loads from ce); bit 2: epilogue math on registers only
template <int Mode>
ANDA_AMX double run(int n, float* sink) {
  constexpr auto rows = std::make_integer_sequence<int, kTile>();
  HwTiles tl;
  tl.begin();
  f32x16 acc[kTile];
  zero_rows(acc, rows);
  i32x16 r[kTile];
  for (int m = 0; m < kTile; ++m) r[m] = vload<i32x16>(ce[0][0] + m * kTile);
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) {
#define STEP(P, S)                                                                                \
      if constexpr (Mode & 1) group_tiles<1, P>(tl, src, 64, src, &ct[P], &ct[(P + 3) & 3], false); \
      if constexpr (Mode & 2) group_epilogue<1, false>(acc, ce[S], sc, ut, st, zr, rows);           \
      if constexpr (Mode & 4) {                                                                   \
        const f32x16 v = vload<f32x16>(sc + 16 * (S & 1));                                        \
        for (int m = 0; m < kTile; ++m) acc[m] += __builtin_convertvector(r[m], f32x16) * (v * ut[m]); \
        for (int m = 0; m < kTile; ++m) asm volatile("" : "+v"(r[m]));                            \
      }
      STEP(0, 0) STEP(1, 1) STEP(2, 2) STEP(3, 0)
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
  for (int i = 0; i < (kAhead + 1) * kTile * kTile; ++i) (&ce[0][0][0])[i] = (i * 7919) % 4001 - 2000;
  for (int i = 0; i < 1024; ++i) src[i] = (int8_t)(i * 37);
  const int n = 200000;
  float sink = 0;
  const double t1 = run<1>(n, &sink), e2 = run<2>(n, &sink), b3 = run<3>(n, &sink);
  const double e4 = run<4>(n, &sink), b5 = run<5>(n, &sink);
  const double per = 1e6 / (4.0 * n);
  std::printf("ns per step (16x16x64), L1, 1 thread\n");
  std::printf("tile ops only                    %6.2f\n", t1 * per);
  std::printf("epilogue (loads C rows) only     %6.2f\n", e2 * per);
  std::printf("both, independent data           %6.2f   (sum %.2f, max %.2f)\n", b3 * per, (t1 + e2) * per,
              std::max(t1, e2) * per);
  std::printf("epilogue math, registers only    %6.2f\n", e4 * per);
  std::printf("tiles + register math            %6.2f   (sum %.2f, max %.2f)\n", b5 * per, (t1 + e4) * per,
              std::max(t1, e4) * per);
  std::printf("(sink %g)\n", sink);
}
