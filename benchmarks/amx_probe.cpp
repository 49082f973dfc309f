// Where the AMX GEMM's time goes, torch-free, on one thread (built and run by
// benchmarks/device_check.sh's `probe` section on an AMX machine):
//   g++ -O3 -std=c++17 -Ikernels/csrc benchmarks/amx_probe.cpp kernels/csrc/anda_kern.cpp \
//       kernels/csrc/anda_gemm_kern.cpp kernels/csrc/anda_pack_avx2.cpp kernels/csrc/anda_quant.cpp \
//       kernels/csrc/table_kern.cpp -o /tmp/amx_probe && /tmp/amx_probe [T K N C]
// It includes anda_gemm_amx.cpp itself, so that each stage of that file's loop (B build, tile
// operations, epilogue) can be timed alone on the same shapes as the whole.
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

template <class F>
double best_ms(F&& f) {
  double best = 1e30;
  BEST_MS(best) f();
  return best;
}

// n iterations of 4 TDPBSSD on resident tiles (with stores when `store`).
ANDA_AMX double tmul_loop(int n, bool store, int32_t* ct) {
  HwTiles tl;
  alignas(64) static int8_t src[2048];
  tl.begin();
  tl.load<0>(src, 64);
  tl.load<1>(src + 1024, 64);
  tl.load<2>(src, 64);
  tl.load<3>(src + 1024, 64);
  double ms = 1e30;
  BEST_MS(ms) {
    for (int i = 0; i < n; ++i) {
      if (store) { tl.zero<4>(); tl.zero<5>(); tl.zero<6>(); tl.zero<7>(); }
      tl.dp<4, 2, 0>();
      tl.dp<5, 2, 1>();
      tl.dp<6, 3, 0>();
      tl.dp<7, 3, 1>();
      if (store) {
        tl.store<4>(ct);
        tl.store<5>(ct + 256);
        tl.store<6>(ct + 512);
        tl.store<7>(ct + 768);
      }
    }
  }
  tl.end();
  return ms;
}

// The tile operations of amx_gemm<1> alone (no B build, no epilogue) over the whole problem.
ANDA_AMX double tiles_only(const AmxArgs& a, const int8_t* bbuf, int32_t* ct) {
  HwTiles tl;
  const int64_t tstride = (int64_t)a.G * 64;
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  tl.begin();
  double ms = 1e30;
  BEST_MS(ms) {
    for (int b = 0; b < nb; b += 2)
      for (int64_t t0 = 0; t0 < a.T; t0 += 32)
        for (int g = 0; g < a.G; ++g)
          group_tiles<1>(tl, bbuf + (size_t)g * 2 * kTileBytes, a.A + t0 * tstride + g * 64, tstride, true,
                         ct + (g & 3) * 1024);
  }
  tl.end();
  return ms;
}

// The epilogue of amx_gemm<1> alone (batches of 4 groups) over the whole problem.
ANDA_AMX double epilogue_only(const AmxArgs& a, const int32_t* ct, float* y) {
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  std::vector<int> gwo(a.G);
  for (int g = 0; g < a.G; ++g) gwo[g] = 16 * g;
  const float* sc[2] = {a.SCb, a.SCb + a.sblock};
  double ms = 1e30;
  BEST_MS(ms) {
    for (int b = 0; b < nb; b += 2)
      for (int64_t t0 = 0; t0 < a.T; t0 += 32)
        for (int g0 = 0; g0 < a.G; g0 += 4)
          epilogue_rows<1, 4>(ct, g0, std::min(4, a.G - g0), 0, 64, a, t0, sc, gwo.data(), y);
  }
  return ms;
}

ANDA_AMX double build_only(const AmxArgs& a, int8_t* bbuf) {
  const int nb = (int)((a.n1 - a.n0 + 15) / 16);
  double ms = 1e30;
  BEST_MS(ms) {
    for (int b = 0; b < nb; ++b)
      for (int g = 0; g < a.G; ++g)
        build_b(a.Wp + ((int64_t)b * a.Gw64 + g) * kGroupBytes, a.Zb + 16 * g,
                bbuf + ((size_t)g * 2 + (b & 1)) * kTileBytes);
  }
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
  auto gemm = [&](int isa) {
    return best_ms([&] {
      gemm_blocked(isa, A.data(), S.data(), U.data(), T, G, C, W.data(), G, SC.data(), Z.data(), G * 16, 0, 64, 0, N, N, os);
    });
  };
  const double amx = gemm(ISA_AMX), vnni = gemm(ISA_AVX512);
  std::printf("shape T=%lld K=%lld N=%lld C=%d  (1 thread)\n", (long long)T, (long long)K, (long long)N, C);
  std::printf("gemm_blocked amx   %8.3f ms  %7.1f GOP/s\n", amx, flop / amx / 1e6);
  std::printf("gemm_blocked vnni  %8.3f ms  %7.1f GOP/s\n", vnni, flop / vnni / 1e6);
  alignas(64) static int32_t ct[8 * 1024];
  const int n = 100000;
  const double raw = tmul_loop(n, false, ct), st = tmul_loop(n, true, ct);
  std::printf("4 x TDPBSSD          %8.2f ns per dp (%d iterations)\n", raw * 1e6 / (4.0 * n), n);
  std::printf("4 x (zero+dp+store)  %8.2f ns per dp\n", st * 1e6 / (4.0 * n));
  const AmxArgs a{A.data(), U.data(), T, G, W.data(), G, SC.data(), Z.data(), G * 16, 0, 1, 0, N, N, &os};
  std::vector<int8_t> bbuf((size_t)G * 2 * kTileBytes);
  std::vector<int32_t> cts(4 * 4 * 1024);
  alignas(64) static float y[4 * 256];
  const double tb = build_only(a, bbuf.data());
  const double tt = C == 1 ? tiles_only(a, bbuf.data(), cts.data()) : 0;
  const double te = C == 1 ? epilogue_only(a, cts.data(), y) : 0;
  const double groups = (double)(T / 16) * NB * G;  // tile-groups (16 tokens x 16 rows x 64)
  std::printf("B build only         %8.3f ms\n", tb);
  std::printf("tile ops only        %8.3f ms  %6.2f ns per tile-group\n", tt, tt * 1e6 / groups);
  std::printf("epilogue only        %8.3f ms  %6.2f ns per tile-group\n", te, te * 1e6 / groups);
  std::printf("(sink %f)\n", (double)y[5] + Y[7]);
  return 0;
}
