// Where the AMX GEMM's time goes, torch-free, on one thread (built and run by
// benchmarks/device_check.sh's `probe` section on an AMX machine):
//   g++ -O3 -std=c++17 -Ikernels/csrc benchmarks/amx_probe.cpp kernels/csrc/anda_kern.cpp \
//       kernels/csrc/anda_gemm_kern.cpp kernels/csrc/anda_pack_avx2.cpp kernels/csrc/anda_quant.cpp \
//       kernels/csrc/table_kern.cpp -o /tmp/amx_probe && /tmp/amx_probe [T K N C]
// It includes anda_gemm_amx.cpp itself, so that the tile operations of that file's loop can be
// timed without its B unpack and epilogue, on the same shapes as the whole GEMM (AMX and VNNI).
// Written after the second AMX run; not yet run on an AMX machine (no device time was left).
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

// n iterations of 3 TDPBSSD into three independent accumulators (tmm4..6) on resident tiles.
ANDA_AMX double tmul_loop(int n) {
  HwTiles tl;
  alignas(64) static int8_t src[1024];
  tl.begin();
  tl.loadB(src);
  tl.loadA<0>(src, 64);
  tl.loadA<1>(src, 64);
  tl.loadA<2>(src, 64);
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) {
      tl.dp<0>();
      tl.dp<1>();
      tl.dp<2>();
    }
  }
  tl.end();
  return ms;
}

// n iterations of the kernel's per-tile sequence (load A, zero C, TDPBSSD, store C), one chunk.
ANDA_AMX double tile_sequence(int n, int32_t* ct) {
  HwTiles tl;
  alignas(64) static int8_t src[1024];
  tl.begin();
  tl.loadB(src);
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) chunk_tile<0>(tl, src, 64, ct);
  }
  tl.end();
  return ms;
}

// The tile operations of amx_gemm<C> alone (no B unpack, no epilogue) over the whole problem.
template <int C>
ANDA_AMX double tiles_only(const AmxArgs& a, int32_t* ct) {
  HwTiles tl;
  alignas(64) static int8_t bt[1024];
  const int64_t tstride = (int64_t)a.G * C * 64;
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  tl.begin();
  double ms = 1e30;
  BEST_MS(ms) {
    for (int64_t c0 = 0; c0 < a.T; c0 += kMaxChunk) {
      const int tiles = (int)((std::min(a.T, c0 + kMaxChunk) - c0 + kTile - 1) / kTile);
      for (int b = 0; b < nb; ++b)
        for (int g = 0; g < a.G; ++g) {
          tl.loadB(bt);
          for (int i = 0; i < tiles; ++i) {
            const int8_t* at = a.A + (c0 + (int64_t)i * kTile) * tstride + (int64_t)g * C * 64;
            chunk_tile<0>(tl, at, tstride, ct);
            if constexpr (C > 1) chunk_tile<1>(tl, at, tstride, ct + 256);
          }
        }
    }
  }
  tl.end();
  return ms;
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
  std::vector<int8_t> A((size_t)padded_tokens(T) * G * C * 64);
  std::vector<int32_t> S((size_t)padded_tokens(T) * G);
  std::vector<float> U((size_t)padded_tokens(T) * G, 1.0f / 1024);
  std::vector<uint8_t> W((size_t)NB * G * kGroupBytes);
  std::vector<float> SC((size_t)NB * G * 16, 0.01f);
  std::vector<int32_t> Z((size_t)G * 16, 8);
  std::vector<float> Y((size_t)T * N);
  for (auto& v : A) v = (int8_t)((int)(rng() % 255) - 127);
  for (auto& v : W) v = (uint8_t)rng();
  const OutSpec os{Y.data(), nullptr, nullptr};
  const double flop = 2.0 * T * K * N;
  double times[2] = {1e30, 1e30};  // AMX, VNNI (gemm_blocked has its own targets: no AVX-512 here)
  for (int i = 0; i < 2; ++i)
    BEST_MS(times[i]) gemm_blocked(i == 0 ? ISA_AMX : ISA_AVX512, A.data(), S.data(), U.data(), T, G, C,
                                   W.data(), G, SC.data(), Z.data(), G * 16, 0, 64, 0, N, N, os);
  const double amx = times[0], vnni = times[1];
  std::printf("shape T=%lld K=%lld N=%lld C=%d  (1 thread)\n", (long long)T, (long long)K, (long long)N, C);
  std::printf("gemm_blocked amx   %8.3f ms  %7.1f GOP/s\n", amx, flop / amx / 1e6);
  std::printf("gemm_blocked vnni  %8.3f ms  %7.1f GOP/s\n", vnni, flop / vnni / 1e6);
  alignas(64) static int32_t ct[8 * 1024];
  const int n = 100000;
  const double raw = tmul_loop(n), seq = tile_sequence(n, ct);
  std::printf("TDPBSSD, 3 accumulators   %7.2f ns per dp\n", raw * 1e6 / (3.0 * n));
  std::printf("load A+zero+dp+store C    %7.2f ns per tile\n", seq * 1e6 / n);
  const AmxArgs a{A.data(), S.data(), U.data(), T, G, W.data(), G, SC.data(), Z.data(), G * 16, 0, 1, 0, N, N, &os};
  const double tt = C == 1 ? tiles_only<1>(a, ct) : tiles_only<2>(a, ct);
  const double groups = (double)(T / 16) * NB * G;  // tile-groups (16 tokens x 16 rows x 64)
  std::printf("tile ops of amx_gemm only %7.3f ms  %6.2f ns per tile-group (whole: %.2f)\n", tt,
              tt * 1e6 / groups, amx * 1e6 / groups);
  std::printf("(sink %f)\n", (double)ct[5] + Y[7]);
  return 0;
}
