// Where the AMX GEMM's time goes, torch-free, on one thread (benchmarks/device_check.sh's `probe`
// section; runs on any CPU with AMX-INT8):
//   g++ -O3 -std=c++17 -Ikernels/csrc benchmarks/amx_probe.cpp kernels/csrc/anda_kern.cpp \
//       kernels/csrc/anda_gemm_kern.cpp kernels/csrc/anda_pack_avx2.cpp kernels/csrc/anda_quant.cpp \
//       kernels/csrc/table_kern.cpp -o /tmp/amx_probe && taskset -c 1 /tmp/amx_probe [T K N C]
// It includes anda_gemm_amx.cpp itself, so that the kernel's tile operations can be timed alone
// (no B unpack, epilogue or output) and its vector epilogue alone (no tile operations), on the
// same shapes as the whole GEMM (AMX and VNNI), beside the raw TDPBSSD rate and one step's tile
// sequence on L1-resident operands, and the overlap table: each part of a step's tile sequence
// alone and beside the epilogue's register math (16 rows of int32 -> float, x scale, + acc) on
// independent data -- if the tile unit and the vector units overlapped, a row of the second column
// would cost about the larger of its tile figure and the math alone, not their sum.
#include "../kernels/csrc/anda_gemm_amx.cpp"  // NOLINT: the probe needs the file's internals

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>

namespace anda {
namespace {

// Best of 5 timings of the statement that follows (a loop, not a lambda: a lambda would not
// inherit the AVX-512 target of the function it is written in).
using Clock = std::chrono::steady_clock;
#define BEST_MS(out) \
  for (int rep_ = 0, done_ = 0; rep_ < 5; ++rep_, done_ = 0) \
    for (auto t0_ = Clock::now(); !done_; done_ = 1, \
         out = std::min(out, std::chrono::duration<double, std::milli>(Clock::now() - t0_).count()))

// n iterations of 4 TDPBSSD into four independent accumulators (tmm4..7) on resident tiles.
ANDA_AMX double tmul_loop(int n) {
  HwTiles tl;
  alignas(64) static int8_t src[1024];
  tl.begin();
  tl.load<0>(src, 64);
  tl.load<1>(src, 64);
  tl.load<2>(src, 64);
  tl.load<3>(src, 64);
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) {
      tl.dp<4, 1, 0>();
      tl.dp<5, 3, 2>();
      tl.dp<6, 1, 0>();
      tl.dp<7, 3, 2>();
    }
  }
  tl.end();
  return ms;
}

// 4n steps of the kernel's C = 1 tile sequence (load B and A, zero C, TDPBSSD, store the
// previous step's C; tile registers rotating) with every operand in L1.
ANDA_AMX double step_sequence(int n) {
  HwTiles tl;
  alignas(64) static int8_t src[1024];
  alignas(64) static int32_t ct[4][kTile * kTile];
  tl.begin();
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) {
      group_tiles<1, 0>(tl, src, 64, src, &ct[0], &ct[3], false);
      group_tiles<1, 1>(tl, src, 64, src, &ct[1], &ct[0], false);
      group_tiles<1, 2>(tl, src, 64, src, &ct[2], &ct[1], false);
      group_tiles<1, 3>(tl, src, 64, src, &ct[3], &ct[2], false);
    }
  }
  tl.end();
  return ms;
}

// The tile operations of amx_gemm<1> alone over the whole problem: token tiles x blocks x groups
// in the kernel's order, B tiles from a buffer the size of the unpacked blocks.
ANDA_AMX double tiles_only(const AmxArgs& a) {
  HwTiles tl;
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  std::vector<int8_t> buf((size_t)nb * a.G * 1024 + 64, 1);
  int8_t* bt = buf.data() + (64 - (uintptr_t)buf.data() % 64) % 64;  // tiles are whole lines
  alignas(64) static int32_t ct[4][kTile * kTile];
  const int64_t tstride = (int64_t)a.G * 64;
  tl.begin();
  double ms = 1e30;
  BEST_MS(ms) {
    for (int64_t t0 = 0; t0 < a.T; t0 += kTile)
      for (int j = 0, g = 0, steps = nb * a.G; j < steps; ++j, g = g + 1 == a.G ? 0 : g + 1) {
        const int8_t* at = a.A + t0 * tstride + g * 64;
        const int8_t* b = bt + (int64_t)j * 1024;
        int32_t (*prev)[kTile * kTile] = j ? &ct[(j + 3) & 3] : nullptr;
        switch (j & 3) {
          case 0: group_tiles<1, 0>(tl, at, tstride, b, &ct[0], prev, j + 1 == steps); break;
          case 1: group_tiles<1, 1>(tl, at, tstride, b, &ct[1], prev, j + 1 == steps); break;
          case 2: group_tiles<1, 2>(tl, at, tstride, b, &ct[2], prev, j + 1 == steps); break;
          default: group_tiles<1, 3>(tl, at, tstride, b, &ct[3], prev, j + 1 == steps);
        }
      }
  }
  tl.end();
  return ms;
}

// The vector side of amx_gemm<1> alone: every step's epilogue (16 rows of int32 -> float, times
// scale x activation scale, into registers) and every block's output rows, in the kernel's order,
// on C results already in memory (no tile operation). If tile operations and epilogue overlapped,
// the whole GEMM would take about the larger of this and tiles_only; it takes about their sum.
ANDA_AMX double epilogue_only(const AmxArgs& a) {
  constexpr auto rows = std::make_integer_sequence<int, kTile>();
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  alignas(64) static int32_t ct[kAhead + 1][1][kTile * kTile];
  for (int i = 0; i < (kAhead + 1) * kTile * kTile; ++i) (&ct[0][0][0])[i] = (i * 7919) % 4001 - 2000;
  std::vector<float> ut((size_t)a.G * kTile, 1.0f / 1024);
  std::vector<int32_t> st((size_t)a.G * kTile, 0), zr((size_t)a.G * 16, 0);
  alignas(64) float out[kTile * kTile];
  double ms = 1e30;
  BEST_MS(ms) {
    for (int64_t t0 = 0; t0 < a.T; t0 += kTile) {
      f32x16 acc[kTile];
      zero_rows(acc, rows);
      for (int b = 0, slot = 0; b < nb; ++b) {
        for (int g = 0; g < a.G; ++g, slot = slot == kAhead ? 0 : slot + 1)
          group_epilogue<1, false>(acc, ct[slot], a.SCb + (int64_t)b * a.sblock + g * 16, ut.data() + g * kTile,
                                   st.data() + g * kTile, zr.data() + g * 16, rows);
        store_rows(out, acc, rows);
        HwTiles::write_block(*a.os, out, t0, kTile, a.n0 + 16 * b, 16, a.N);
        zero_rows(acc, rows);
      }
    }
  }
  return ms;
}

// The overlap table's rows: V = 0 TDPBSSD on resident tiles, 1 + store C, 2 + zero C first, 3 + load
// B, 4 + load A (the kernel's whole C = 1 step); Math: the epilogue's register math in each step too
// (cvt + mul + fma per row on registers the compiler may not hoist, no load of a C tile); V = -1: the
// math alone.
template <int V, bool Math>
ANDA_AMX double overlap_row(int n, float* sink) {
  alignas(64) static int8_t src[4][1024];
  alignas(64) static int32_t ct[4][kTile * kTile];
  alignas(64) static float sc[32], ut[kTile];
  for (int j = 0; j < 4; ++j)
    for (int i = 0; i < 1024; ++i) src[j][i] = (int8_t)(i * 37 + j);
  for (int i = 0; i < 32; ++i) sc[i] = 1e-3f * (i + 1);
  for (int i = 0; i < kTile; ++i) ut[i] = 1.0f / (i + 1);
  HwTiles tl;
  tl.begin();
  tl.load<0>(src[0], 64);
  tl.load<1>(src[1], 64);
  tl.load<2>(src[2], 64);
  tl.load<3>(src[3], 64);
  f32x16 acc[kTile] = {};
  i32x16 r[kTile];
  for (int m = 0; m < kTile; ++m)
    for (int l = 0; l < kTile; ++l) r[m][l] = (m * 16 + l) * 7919 % 4001 - 2000;
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) {
#define ANDA_PROBE_STEP(P)                                                                              \
      {                                                                                                 \
        constexpr int b = P & 1 ? 2 : 0, a = b + 1, c = 4 + P;                                          \
        if constexpr (V >= 4) tl.load<a>(src[a], 64);                                                   \
        if constexpr (V >= 3) tl.load<b>(src[b], 64);                                                   \
        if constexpr (V >= 2) tl.zero<c>();                                                             \
        if constexpr (V >= 0) tl.dp<c, a, b>();                                                         \
        if constexpr (V >= 1) tl.store<c>(ct[P]);                                                       \
        if constexpr (Math) {                                                                           \
          const f32x16 v = vload<f32x16>(sc + 16 * (P & 1));                                            \
          for (int m = 0; m < kTile; ++m) acc[m] += __builtin_convertvector(r[m], f32x16) * (v * ut[m]); \
          for (int m = 0; m < kTile; ++m) asm volatile("" : "+v"(r[m]));                                \
        }                                                                                               \
      }
      ANDA_PROBE_STEP(0) ANDA_PROBE_STEP(1) ANDA_PROBE_STEP(2) ANDA_PROBE_STEP(3)
#undef ANDA_PROBE_STEP
    }
  }
  tl.end();
  for (int m = 0; m < kTile; ++m) *sink += acc[m][m];
  return ms;
}

template <int V>
void print_overlap_row(const char* name, int n, double math, float* sink) {
  const double per = 1e6 / (4.0 * n), t = overlap_row<V, false>(n, sink), both = overlap_row<V, true>(n, sink);
  std::printf("  %-30s %6.2f   %6.2f   (sum %.2f, larger %.2f)\n", name, t * per, both * per, (t + math) * per,
              std::max(t, math) * per);
}

}  // namespace
}  // namespace anda

int main(int argc, char** argv) {
  using namespace anda;
  const int64_t T = argc > 1 ? atoll(argv[1]) : 2048, K = argc > 2 ? atoll(argv[2]) : 576;
  const int64_t N = argc > 3 ? atoll(argv[3]) : 1536;
  const int C = argc > 4 ? atoi(argv[4]) : 1;
  if (!amx_usable()) { std::printf("AMX not usable here\n"); return 1; }
  const int G = (int)(K / 64), NB = (int)((N + 15) / 16);
  std::mt19937 rng(1);
  // activations 64-byte aligned, as torch allocates them: a tile row is then one cache line
  std::vector<int8_t> Abuf((size_t)padded_tokens(T) * G * C * 64 + 64);
  int8_t* A = Abuf.data() + (64 - (uintptr_t)Abuf.data() % 64) % 64;
  std::vector<int32_t> S((size_t)padded_tokens(T) * G);
  std::vector<float> U((size_t)padded_tokens(T) * G, 1.0f / 1024);
  std::vector<uint8_t> W((size_t)NB * G * kGroupBytes);
  std::vector<float> SC((size_t)NB * G * 16, 0.01f);
  std::vector<uint8_t> Z((size_t)G * 16, 8);
  std::vector<float> Y((size_t)T * N);
  for (size_t i = 0; i + 64 < Abuf.size(); ++i) A[i] = (int8_t)((int)(rng() % 255) - 127);
  for (auto& v : W) v = (uint8_t)rng();
  const OutSpec os{Y.data(), nullptr, nullptr};
  const double flop = 2.0 * T * K * N;
  double times[2] = {1e30, 1e30};  // AMX, VNNI (gemm_blocked has its own targets: no AVX-512 here)
  for (int i = 0; i < 2; ++i)
    BEST_MS(times[i]) gemm_blocked(i == 0 ? ISA_AMX : ISA_AVX512, A, S.data(), U.data(), T, G,
                                   C == 3 ? 16 : 7 * C, W.data(), G, BlockedScales{SC.data(), nullptr}, Z.data(), G * 16, 0,
                                   64, 0, N, N, os);
  const double amx = times[0], vnni = times[1];
  std::printf("shape T=%lld K=%lld N=%lld C=%d  (1 thread)\n", (long long)T, (long long)K, (long long)N, C);
  std::printf("gemm_blocked amx   %8.3f ms  %7.1f GOP/s\n", amx, flop / amx / 1e6);
  std::printf("gemm_blocked vnni  %8.3f ms  %7.1f GOP/s\n", vnni, flop / vnni / 1e6);
  const int n = 100000;
  const double raw = tmul_loop(n), seq = step_sequence(n);
  std::printf("TDPBSSD, 4 accumulators    %7.2f ns per dp\n", raw * 1e6 / (4.0 * n));
  std::printf("one step's tiles, L1       %7.2f ns per step\n", seq * 1e6 / (4.0 * n));
  const AmxArgs a{A, S.data(), U.data(), T, G, W.data(), G, SC.data(), Z.data(), G * 16, 0, 1, 0, N, N, &os};
  const double steps = (double)(T / 16) * NB * G;  // steps (16 tokens x 16 rows x 64)
  if (C == 1) {
    const double tt = tiles_only(a);
    const double ep = epilogue_only(a);
    std::printf("tile ops of amx_gemm only  %7.3f ms  %6.2f ns per step (whole: %.2f)\n", tt,
                tt * 1e6 / steps, amx * 1e6 / steps);
    std::printf("epilogue + output only     %7.3f ms  %6.2f ns per step (sum with tile ops: %.2f)\n", ep,
                ep * 1e6 / steps, (tt + ep) * 1e6 / steps);
  }
  float sink = 0;
  const double math = overlap_row<-1, true>(n, &sink);
  std::printf("overlap, L1, ns per step: tiles alone, beside the epilogue math (alone %.2f)\n", math * 1e6 / (4.0 * n));
  print_overlap_row<0>("TDPBSSD", n, math, &sink);
  print_overlap_row<1>("+ store C", n, math, &sink);
  print_overlap_row<2>("+ zero C", n, math, &sink);
  print_overlap_row<3>("+ load B", n, math, &sink);
  print_overlap_row<4>("+ load A (the kernel's step)", n, math, &sink);
  std::printf("(sink %f %f)\n", (double)Y[7], (double)sink);
  return 0;
}
