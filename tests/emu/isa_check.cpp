// Standalone check of the extension's raw-pointer CPU kernels (no torch, no Python): every SIMD
// level the CPU has, plus the AMX GEMM over software tiles, against the scalar level (codec,
// quantizer, prepack: bit-exact) and against an exact integer / double reference (GEMM and INT8
// table: |err| <= 1e-5 * max|ref|). Built statically, it runs where Python cannot: inside an
// instruction-set emulator (tests/emu/bochs_check.sh is to boot it on an emulated Tiger Lake, whose
// AVX-512 VNNI the machines here lack; see that script's status). tests/test_isa_check.py builds
// and runs it natively.
//
// Output: one line per check on stdout, "ISA-CHECK PASS <n>" or "ISA-CHECK FAIL <n>" last;
// exit status 0 only when everything passed.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "../../kernels/csrc/anda_kern.h"

using namespace anda;

namespace {

int g_checks = 0, g_failed = 0;

void report(bool ok, const std::string& what) {
  ++g_checks;
  if (!ok) {
    ++g_failed;
    std::printf("FAIL %s\n", what.c_str());
  }
}

// float32 -> float16 bits through the scalar kernel (round to nearest even).
uint16_t half_of(float f) {
  uint16_t h;
  f32_to_f16(ISA_SCALAR, &f, 1, &h);
  return h;
}

// Values spanning 1e-7..6e4 within a row, subnormals, +-0, an all-zero group (as the pytest grid).
std::vector<uint16_t> awkward_rows(int64_t rows, int64_t K, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x((size_t)(rows * K));
  for (auto& v : x) v = std::fmax(-6e4f, std::fmin(6e4f, nd(rng) * std::exp(nd(rng) * 3.0f)));
  const float special[] = {6e4f, 1e-7f, -0.0f, -3e-6f, 5.9e-8f, -6.1e-5f};
  for (int i = 0; i < 6 && i < (int)x.size(); ++i) x[i] = special[i];
  if (K >= 128)
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t k = 64; k < 128; ++k) x[(size_t)(r * K + k)] = 0.0f;
  std::vector<uint16_t> h(x.size());
  f32_to_f16(ISA_SCALAR, x.data(), (int64_t)x.size(), h.data());
  return h;
}

struct Act {  // decode_act layout for T tokens (rows padded to kTokenPad, zero)
  std::vector<int8_t> A;
  std::vector<int32_t> S;
  std::vector<float> U;
};

Act quantize(int isa, const std::vector<uint16_t>& h, int64_t T, int64_t K, int M, bool nearest) {
  const int64_t G = (K + 63) / 64, C = gemm_chunks(M), P = padded_tokens(T);
  Act a{std::vector<int8_t>((size_t)(P * G * C * 64)), std::vector<int32_t>((size_t)(P * G)),
        std::vector<float>((size_t)(P * G))};
  quantize_rows(isa, h.data(), T, K, M, nearest, a.A.data(), a.S.data(), a.U.data());
  return a;
}

void check_codec(int isa, const char* name, std::mt19937& rng) {
  for (int64_t K : {1, 63, 64, 100, 576, 4096}) {
    const int64_t rows = 5, G = (K + 63) / 64;
    const auto h = awkward_rows(rows, K, rng);
    for (int M = 1; M <= 16; ++M)
      for (bool nearest : {false, true}) {
        const std::string tag = std::string(name) + " K=" + std::to_string(K) + " M=" +
                                std::to_string(M) + (nearest ? " nearest" : " truncate");
        std::vector<int64_t> w0((size_t)(rows * G * (1 + M))), w1(w0.size());
        std::vector<uint8_t> e0((size_t)(rows * G)), e1(e0.size());
        pack_rows(ISA_SCALAR, h.data(), rows, K, M, nearest, w0.data(), e0.data());
        pack_rows(isa, h.data(), rows, K, M, nearest, w1.data(), e1.data());
        report(w0 == w1 && e0 == e1, "pack_rows " + tag);
        const Act a0 = quantize(ISA_SCALAR, h, rows, K, M, nearest);
        const Act a1 = quantize(isa, h, rows, K, M, nearest);
        report(a0.A == a1.A && a0.S == a1.S &&
                   std::memcmp(a0.U.data(), a1.U.data(), a0.U.size() * 4) == 0,
               "quantize_rows " + tag);
      }
  }
  std::vector<float> f(1000);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : f) v = nd(rng) * std::exp(nd(rng) * 4.0f);
  f[0] = 65519.0f, f[1] = -65504.0f, f[2] = 5.96e-8f, f[3] = -0.0f;
  std::vector<uint16_t> h0(f.size()), h1(f.size());
  const bool o0 = f32_to_f16(ISA_SCALAR, f.data(), (int64_t)f.size(), h0.data());
  const bool o1 = f32_to_f16(isa, f.data(), (int64_t)f.size(), h1.data());
  report(o0 == o1 && h0 == h1, std::string("f32_to_f16 ") + name);
}

// Canonical INT4 weight [N, Kw/2] (column 2j low nibble, 2j+1 high), scales/zeros per group.
struct Weight {
  int64_t N, K, Kw, gs;
  bool asym;
  std::vector<uint8_t> codes, packed, zeros;
  std::vector<float> scales;
};

Weight make_weight(int64_t N, int64_t K, int64_t gs, bool asym, std::mt19937& rng) {
  Weight w{N, K, (K + gs - 1) / gs * gs, gs, asym, {}, {}, {}, {}};
  const int64_t ng = w.Kw / gs;
  std::uniform_int_distribution<int> code(0, 15);
  std::uniform_real_distribution<float> sc(1e-3f, 0.101f);
  w.zeros.resize((size_t)(N * ng));
  w.scales.resize((size_t)(N * ng));
  for (size_t i = 0; i < w.zeros.size(); ++i) w.zeros[i] = asym ? (uint8_t)code(rng) : 8, w.scales[i] = sc(rng);
  std::vector<uint16_t> half(w.scales.size());  // float16 values, as artifacts store them
  f32_to_f16(ISA_SCALAR, w.scales.data(), (int64_t)half.size(), half.data());
  for (size_t i = 0; i < half.size(); ++i) w.scales[i] = f16_bits_to_float(half[i]);
  w.codes.resize((size_t)(N * w.Kw));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < w.Kw; ++k)  // padding columns hold the zero point
      w.codes[(size_t)(n * w.Kw + k)] = k < K ? (uint8_t)code(rng) : w.zeros[(size_t)(n * ng + k / gs)];
  w.packed.assign((size_t)(N * w.Kw / 2), 0);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < w.Kw; ++k)
      w.packed[(size_t)(n * w.Kw / 2 + k / 2)] |= (uint8_t)(w.codes[(size_t)(n * w.Kw + k)] << (4 * (k & 1)));
  return w;
}

// Exact reference: integer dot products per 64-group (int64), scaled and summed in double.
std::vector<double> gemm_ref(const Act& a, int64_t T, int64_t K, int M, const Weight& w,
                             const std::vector<float>& bias) {
  const int64_t G = (K + 63) / 64, C = gemm_chunks(M), ng = w.Kw / w.gs;
  std::vector<double> y((size_t)(T * w.N));
  for (int64_t t = 0; t < T; ++t)
    for (int64_t n = 0; n < w.N; ++n) {
      double acc = bias.empty() ? 0.0 : bias[(size_t)n];
      for (int64_t g = 0; g < G; ++g) {
        int64_t dot = 0;
        for (int p = 0; p < 64; ++p) {
          const int64_t k = 64 * g + (p < 32 ? 2 * p : 2 * (p - 32) + 1);
          int64_t mag = 0;
          for (int c = 0; c < C; ++c) mag += (int64_t)a.A[(size_t)(((t * G + g) * C + c) * 64 + p)] << (7 * c);
          dot += mag * w.codes[(size_t)(n * w.Kw + k)];
        }
        const int64_t gw = 64 * g / w.gs;
        dot -= (int64_t)w.zeros[(size_t)(n * ng + gw)] * a.S[(size_t)(t * G + g)];
        acc += (double)dot * w.scales[(size_t)(n * ng + gw)] * a.U[(size_t)(t * G + g)];
      }
      y[(size_t)(t * w.N + n)] = acc;
    }
  return y;
}

// bfloat16 bits of a finite float, rounded to nearest even.
uint16_t bf16_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return (uint16_t)((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

void check_gemm(int isa, const char* name, std::mt19937& rng) {
  struct Case { int64_t T, K, N, gs; bool asym; };
  const Case cases[] = {{1, 64, 17, 64, false},  {3, 63, 1, 64, true},    {10, 100, 17, 128, false},
                        {9, 576, 64, 256, true}, {7, 576, 40, 64, true},  {16, 200, 80, 128, false},
                        {17, 130, 33, 64, true}, {33, 4096, 17, 128, false}, {300, 130, 33, 64, true}};
  for (const Case& cs : cases)
    for (int M : {1, 4, 6, 7, 8, 11, 14, 15, 16}) {
      const auto h = awkward_rows(cs.T, cs.K, rng);
      const Act a = quantize(ISA_SCALAR, h, cs.T, cs.K, M, true);
      const Weight w = make_weight(cs.N, cs.K, cs.gs, cs.asym, rng);
      const int64_t G = (cs.K + 63) / 64, Gw64 = w.Kw / 64, NB = (cs.N + 15) / 16, ng = w.Kw / cs.gs;
      std::vector<uint8_t> wp0((size_t)(NB * Gw64 * kGroupBytes)), wp1(wp0.size());
      prepack_blocks(ISA_SCALAR, w.packed.data(), w.Kw / 2, cs.N, Gw64, 0, NB, wp0.data());
      prepack_blocks(isa, w.packed.data(), w.Kw / 2, cs.N, Gw64, 0, NB, wp1.data());
      const std::string tag = std::string(name) + " T=" + std::to_string(cs.T) + " K=" +
                              std::to_string(cs.K) + " N=" + std::to_string(cs.N) + " gs=" +
                              std::to_string(cs.gs) + " M=" + std::to_string(M);
      report(wp0 == wp1, "prepack " + tag);
      // blocked scales (float32 and the same values as float16) / zero points: [NB][ng][16]
      std::vector<float> SC((size_t)(NB * ng * 16), 0.0f);
      std::vector<uint16_t> SCh(SC.size(), 0);
      std::vector<uint8_t> Z((size_t)(NB * ng * 16), 0);
      for (int64_t n = 0; n < cs.N; ++n)
        for (int64_t gw = 0; gw < ng; ++gw) {
          SC[(size_t)(((n / 16) * ng + gw) * 16 + n % 16)] = w.scales[(size_t)(n * ng + gw)];
          Z[(size_t)(((n / 16) * ng + gw) * 16 + n % 16)] = w.zeros[(size_t)(n * ng + gw)];
        }
      f32_to_f16(ISA_SCALAR, SC.data(), (int64_t)SC.size(), SCh.data());
      std::vector<float> bias((size_t)cs.N);
      std::normal_distribution<float> nd(0.0f, 1.0f);
      for (auto& b : bias) b = nd(rng);
      const std::vector<double> ref = gemm_ref(a, cs.T, cs.K, M, w, bias);
      double scale = 1e-30;
      for (double v : ref) scale = std::fmax(scale, std::fabs(v));
      Act g = a;  // what the GEMM at this level reads (AVX2 at M = 8: magnitude / sign, in place)
      if (avx2_magsign(isa, M)) to_magsign(g.A.data(), padded_tokens(cs.T), G);
      std::vector<float> y((size_t)(cs.T * cs.N));
      std::vector<uint16_t> yb(y.size());
      std::vector<float> yh(y.size());
      gemm_blocked(isa, g.A.data(), g.S.data(), g.U.data(), cs.T, (int)G, M, wp1.data(), Gw64,
                   BlockedScales{SC.data(), nullptr}, Z.data(), ng * 16, ng * 16, cs.gs, 0, cs.N, cs.N,
                   OutSpec{y.data(), nullptr, bias.data()});
      gemm_blocked(isa, g.A.data(), g.S.data(), g.U.data(), cs.T, (int)G, M, wp1.data(), Gw64,
                   BlockedScales{SC.data(), nullptr}, Z.data(), ng * 16, ng * 16, cs.gs, 0, cs.N, cs.N,
                   OutSpec{nullptr, yb.data(), bias.data()});
      gemm_blocked(isa, g.A.data(), g.S.data(), g.U.data(), cs.T, (int)G, M, wp1.data(), Gw64,
                   BlockedScales{nullptr, SCh.data()}, Z.data(), ng * 16, ng * 16, cs.gs, 0, cs.N, cs.N,
                   OutSpec{yh.data(), nullptr, bias.data()});
      // float16 blocked scales of the same values: the same floats, bit for bit
      report(std::memcmp(y.data(), yh.data(), y.size() * sizeof(float)) == 0, "gemm f16 scales " + tag);
      double err = 0.0;
      bool bf16_exact = true;
      for (size_t i = 0; i < y.size(); ++i) {
        err = std::fmax(err, std::fabs(y[i] - ref[i]));
        bf16_exact = bf16_exact && yb[i] == bf16_of(y[i]);
      }
      report(err <= 1e-5 * scale, "gemm f32 " + tag + " err/max=" + std::to_string(err / scale));
      // bf16 output: the float32 result rounded once to nearest even, bit for bit
      report(bf16_exact, "gemm bf16 " + tag);
    }
}

void check_table(int isa, const char* name, std::mt19937& rng) {
  for (int bits : {8, 4})
    for (int64_t T : {1, 3, 9})
      for (int64_t K : {64, 100, 576}) {
        const int64_t R = 37, group = 32, ng = (K + group - 1) / group;
        const int64_t pstride = bits == 8 ? K : (K + 1) / 2;
        std::uniform_int_distribution<int> byte(0, 255);
        std::normal_distribution<float> nd(0.0f, 1.0f);
        std::vector<uint8_t> packed((size_t)(R * pstride));
        for (auto& b : packed) b = (uint8_t)byte(rng);
        std::vector<uint16_t> sc((size_t)(R * ng));
        for (auto& s : sc) s = half_of(0.01f + std::fabs(nd(rng)) * 0.01f);
        std::vector<float> x((size_t)(T * K)), bias((size_t)R), y0((size_t)(T * R)), y1(y0.size());
        for (auto& v : x) v = nd(rng);
        for (auto& v : bias) v = nd(rng);
        TableArgs a{x.data(), T, K, packed.data(), pstride, sc.data(), ng, bits, (int)group, bias.data(), y0.data(), R};
        table_rows(ISA_SCALAR, a, 0, R);
        a.y = y1.data();
        table_rows(isa, a, 0, R);
        double err = 0.0, mx = 1e-30;
        for (size_t i = 0; i < y0.size(); ++i)
          err = std::fmax(err, std::fabs(y0[i] - y1[i])), mx = std::fmax(mx, std::fabs(y0[i]));
        report(err <= 1e-5 * mx, std::string("table ") + name + " bits=" + std::to_string(bits) +
                                     " T=" + std::to_string(T) + " K=" + std::to_string(K));
      }
}

}  // namespace

// isa_check [LEVEL...]: the levels to check (scalar avx2 avx512 amx amx-emulated; default: every
// level this CPU has and amx-emulated). A named level the CPU lacks is an error.
int main(int argc, char** argv) {
  const int best = detect_isa();
  std::printf("detected=%s\n", isa_name(best));
  std::vector<int> levels;
  for (int isa : {ISA_SCALAR, ISA_AVX2, ISA_AVX512, ISA_AMX, ISA_AMX_EMU}) {
    bool wanted = argc == 1;
    for (int i = 1; i < argc; ++i) wanted = wanted || !std::strcmp(argv[i], isa_name(isa));
    if (!wanted) continue;
    if (isa > best) {
      if (argc == 1) continue;
      std::fprintf(stderr, "isa_check: this CPU lacks %s (detected %s)\n", isa_name(isa), isa_name(best));
      return 2;
    }
    levels.push_back(isa);
  }
  if (levels.empty()) {
    std::fprintf(stderr, "isa_check: no known level named (scalar avx2 avx512 amx amx-emulated)\n");
    return 2;
  }
  std::mt19937 rng(1234);
  for (int isa : levels) {
    const int before = g_failed, checks = g_checks;
    check_codec(isa, isa_name(isa), rng);
    check_gemm(isa, isa_name(isa), rng);
    check_table(isa, isa_name(isa), rng);
    std::printf("%s: %d checks, %d failed\n", isa_name(isa), g_checks - checks, g_failed - before);
    std::fflush(stdout);
  }
  std::printf("ISA-CHECK %s %d\n", g_failed ? "FAIL" : "PASS", g_checks);
  return g_failed ? 1 : 0;
}
