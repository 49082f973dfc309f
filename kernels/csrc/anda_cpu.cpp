// Torch glue of the andactl CPU kernels: argument checks, threading (at::parallel_for) and the
// TORCH_LIBRARY_IMPL(andactl, CPU) registration. Schemas are defined in Python (kernels/ops.py,
// kernels/prepack.py); load this library after importing both. Also defines andactl_cpp::isa_info.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <atomic>
#include <string>
#include <vector>

#include "anda_kern.h"

namespace {

void check_bits(int64_t M) {
  TORCH_CHECK(M >= 1 && M <= 16, "anda: mantissa_bits must be in 1..16, got ", M);
}

std::tuple<at::Tensor, at::Tensor> anda_pack_cpu(const at::Tensor& x, int64_t M,
                                                  c10::string_view rounding) {
  check_bits(M);
  TORCH_CHECK(rounding == "truncate" || rounding == "nearest",
              "anda_pack: rounding must be 'truncate' or 'nearest', got '", std::string(rounding),
              "'");
  TORCH_CHECK(x.scalar_type() == at::kHalf || x.scalar_type() == at::kBFloat16 ||
                  x.scalar_type() == at::kFloat,
              "anda_pack: x must be float16, bfloat16 or float32, got ", x.scalar_type());
  TORCH_CHECK(x.dim() >= 1, "anda_pack: x must have at least one dimension");
  const int64_t K = x.size(-1);
  if (x.scalar_type() == at::kFloat && x.numel() > 0) {
    // values above the largest finite float16 overflow even when they would round down to it
    TORCH_CHECK(x.abs().max().item<float>() <= 65504.0f,
                "anda_pack: input overflows float16 (|x| > 65504), or is NaN/Inf");
  }
  at::Tensor h = x.to(at::kHalf).contiguous();
  const int64_t G = (K + 63) / 64;
  const int64_t rows = K > 0 ? h.numel() / K : 0;
  auto lead = x.sizes().vec();
  lead.pop_back();
  auto wsz = lead, esz = lead;
  wsz.push_back(G);
  wsz.push_back(1 + M);
  esz.push_back(G);
  at::Tensor words = at::empty(wsz, x.options().dtype(at::kLong));
  at::Tensor exps = at::empty(esz, x.options().dtype(at::kByte));
  if (rows == 0 || G == 0) return {words, exps};
  const bool nearest = rounding == "nearest";
  const int isa = anda::select_isa();
  const uint16_t* hp = (const uint16_t*)h.data_ptr<at::Half>();
  int64_t* wp = words.data_ptr<int64_t>();
  uint8_t* ep = exps.data_ptr<uint8_t>();
  std::atomic<bool> bad{false};
  at::parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(G, 1)),
                   [&](int64_t r0, int64_t r1) {
                     if (anda::pack_rows(isa, hp + r0 * K, r1 - r0, K, (int)M, nearest,
                                         wp + r0 * G * (1 + M), ep + r0 * G))
                       bad = true;
                   });
  TORCH_CHECK(!bad.load(), "anda_pack: input contains NaN/Inf or overflows float16");
  return {words, exps};
}

void check_words(const at::Tensor& words, const at::Tensor& exps, int64_t M, const char* op) {
  check_bits(M);
  TORCH_CHECK(words.scalar_type() == at::kLong, op, ": words must be int64");
  TORCH_CHECK(exps.scalar_type() == at::kByte, op, ": exponents must be uint8");
  TORCH_CHECK(words.dim() >= 2 && words.size(-1) == 1 + M, op,
              ": words must have shape [..., G, 1 + mantissa_bits]");
  TORCH_CHECK(exps.dim() == words.dim() - 1, op, ": exponents must have shape [..., G]");
  for (int64_t d = 0; d < exps.dim(); ++d)
    TORCH_CHECK(exps.size(d) == words.size(d), op, ": words and exponents shapes disagree");
}

at::Tensor anda_unpack_cpu(const at::Tensor& words, const at::Tensor& exps, int64_t M,
                           int64_t k) {
  check_words(words, exps, M, "anda_unpack");
  const int64_t G = words.size(-2);
  TORCH_CHECK(k >= 0 && (k + 63) / 64 == G, "anda_unpack: k=", k, " does not match G=", G);
  auto osz = exps.sizes().vec();
  osz.back() = k;
  at::Tensor out = at::empty(osz, words.options().dtype(at::kFloat));
  const int64_t rows = G > 0 ? exps.numel() / G : 0;
  if (rows == 0 || k == 0) return out;
  at::Tensor wc = words.contiguous(), ec = exps.contiguous();
  const int64_t* wp = wc.data_ptr<int64_t>();
  const uint8_t* ep = ec.data_ptr<uint8_t>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, rows, std::max<int64_t>(1, 1024 / G), [&](int64_t r0, int64_t r1) {
    anda::unpack_rows(wp + r0 * G * (1 + M), ep + r0 * G, r1 - r0, G, (int)M, k, op + r0 * k);
  });
  return out;
}

// Checks of the INT4 weight tensors shared by the GEMM ops; returns Gw (weight groups).
int64_t check_int4(const char* op, int64_t k, int64_t N, const at::Tensor& w_scales,
                   const std::optional<at::Tensor>& w_zeros, int64_t group_size) {
  TORCH_CHECK(group_size > 0 && group_size % 64 == 0, op,
              ": group_size must be a positive multiple of 64, got ", group_size);
  const int64_t Gw = (k + group_size - 1) / group_size;
  TORCH_CHECK(w_scales.scalar_type() == at::kFloat && w_scales.dim() == 2 &&
                  w_scales.size(0) == N && w_scales.size(1) == Gw,
              op, ": w_scales must be float32 [", N, ", ", Gw, "]");
  if (w_zeros.has_value())
    TORCH_CHECK(w_zeros->scalar_type() == at::kByte && w_zeros->dim() == 2 &&
                    w_zeros->size(0) == N && w_zeros->size(1) == Gw,
                op, ": w_zeros must be uint8 [", N, ", ", Gw, "]");
  return Gw;
}

void check_canonical(const char* op, const at::Tensor& w_packed, int64_t k, int64_t group_size) {
  TORCH_CHECK(w_packed.scalar_type() == at::kByte && w_packed.dim() == 2, op,
              ": w_packed must be uint8 [N, Kw/2]");
  const int64_t Kw = (k + group_size - 1) / group_size * group_size;
  TORCH_CHECK(w_packed.size(1) == Kw / 2, op, ": w_packed must have ", Kw / 2,
              " columns for k=", k, " and group_size=", group_size);
}

// Activations decoded for the micro-kernels of `isa` (the level the GEMM then runs at), rows
// padded with zeros to a multiple of 8.
struct DecodedAct {
  at::Tensor A, S, U;
  int64_t T, G;
  int C, M, isa;
};

DecodedAct decode(const at::Tensor& words, const at::Tensor& exps, int64_t M) {
  const int64_t G = words.size(-2);
  const int64_t T = G > 0 ? exps.numel() / G : 0;
  const int C = anda::gemm_chunks((int)M);
  const int64_t Tpad = anda::padded_tokens(T);
  auto opt = words.options();
  DecodedAct d{at::empty({Tpad, G, C, 64}, opt.dtype(at::kChar)),
               at::empty({Tpad, G}, opt.dtype(at::kInt)), at::empty({Tpad, G}, opt.dtype(at::kFloat)),
               T, G, C, (int)M, anda::select_isa()};
  if (Tpad > T) {  // decode_act writes rows < T completely; the padding rows must read as zero
    d.A.narrow(0, T, Tpad - T).zero_();
    d.S.narrow(0, T, Tpad - T).zero_();
    d.U.narrow(0, T, Tpad - T).zero_();
  }
  if (T == 0 || G == 0) return d;
  at::Tensor wc = words.contiguous(), ec = exps.contiguous();
  const int64_t* wp = wc.data_ptr<int64_t>();
  const uint8_t* ep = ec.data_ptr<uint8_t>();
  int8_t* Ap = d.A.data_ptr<int8_t>();
  int32_t* Sp = d.S.data_ptr<int32_t>();
  float* Up = d.U.data_ptr<float>();
  at::parallel_for(0, T, std::max<int64_t>(1, 256 / G), [&](int64_t r0, int64_t r1) {
    anda::decode_act(wp + r0 * G * (1 + M), ep + r0 * G, r1 - r0, G, (int)M,
                     Ap + r0 * G * C * 64, Sp + r0 * G, Up + r0 * G);
    if (anda::avx2_magsign(d.isa, (int)M)) anda::to_magsign(Ap + r0 * G * C * 64, r1 - r0, G);
  });
  return d;
}

// y [..., N]: zero-filled only when the GEMM will not run (it writes every element otherwise).
at::Tensor output_like(const at::Tensor& exps, int64_t N, bool filled_by_gemm) {
  auto osz = exps.sizes().vec();
  osz.back() = N;
  auto opt = exps.options().dtype(at::kFloat);
  return filled_by_gemm ? at::empty(osz, opt) : at::zeros(osz, opt);
}

// Shared body of both GEMM ops: `prepacked` is null for the canonical layout (then each work
// item prepacks its rows into a thread-local buffer first).
void gemm_run(const DecodedAct& d, int64_t N, int64_t Kw, const uint8_t* canonical,
              const uint8_t* prepacked, const at::Tensor& sc, const at::Tensor& zc,
              int64_t group_size, float* yp) {
  const int isa = d.isa;
  const int64_t Gw64 = Kw / 64, Gw = Kw / group_size;
  const int64_t NB = (N + 15) / 16;
  const int64_t item = anda::item_blocks(isa, d.T, d.M, d.G, NB, at::get_num_threads());
  const int64_t items = (NB + item - 1) / item;
  const float* sp = sc.data_ptr<float>();
  const uint8_t* zp = zc.defined() ? zc.data_ptr<uint8_t>() : nullptr;
  const int8_t* Ap = d.A.data_ptr<int8_t>();
  const int32_t* Sp = d.S.data_ptr<int32_t>();
  const float* Up = d.U.data_ptr<float>();
  // Dynamic schedule: each worker takes the next item from a shared counter, so a worker
  // descheduled by other load on the machine does not hold the others back at the barrier.
  std::atomic<int64_t> next{0};
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), items));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    std::vector<uint8_t> buf(prepacked ? 0 : (size_t)(item * Gw64 * anda::kGroupBytes));
    for (int64_t i = next.fetch_add(1); i < items; i = next.fetch_add(1)) {
      const int64_t b0 = i * item, b1 = std::min(NB, b0 + item);
      const uint8_t* wp = prepacked ? prepacked + b0 * Gw64 * anda::kGroupBytes : buf.data();
      if (!prepacked) anda::prepack_blocks(isa, canonical, Kw / 2, N, Gw64, b0, b1, buf.data());
      anda::gemm_prepacked(isa, Ap, Sp, Up, d.T, (int)d.G, d.M, wp, Gw64, sp, Gw, zp, group_size,
                           b0 * 16, std::min(N, b1 * 16), N, yp);
    }
  });
}

at::Tensor anda_gemm_cpu(const at::Tensor& words, const at::Tensor& exps, int64_t M, int64_t k,
                         const at::Tensor& w_packed, const at::Tensor& w_scales,
                         const std::optional<at::Tensor>& w_zeros, int64_t group_size) {
  check_words(words, exps, M, "anda_gemm");
  const int64_t G = words.size(-2);
  TORCH_CHECK(k >= 0 && (k + 63) / 64 == G, "anda_gemm: k=", k, " does not match G=", G);
  TORCH_CHECK(group_size > 0 && group_size % 64 == 0,
              "anda_gemm: group_size must be a positive multiple of 64, got ", group_size);
  check_canonical("anda_gemm", w_packed, k, group_size);
  const int64_t N = w_packed.size(0);
  check_int4("anda_gemm", k, N, w_scales, w_zeros, group_size);
  at::Tensor y = output_like(exps, N, G > 0);
  if (y.numel() == 0 || G == 0) return y;
  const DecodedAct d = decode(words, exps, M);
  at::Tensor wpk = w_packed.contiguous(), sc = w_scales.contiguous();
  at::Tensor zc = w_zeros.has_value() ? w_zeros->contiguous() : at::Tensor();
  gemm_run(d, N, w_packed.size(1) * 2, wpk.data_ptr<uint8_t>(), nullptr, sc, zc, group_size,
           y.data_ptr<float>());
  return y;
}

at::Tensor int4_prepack_cpu(const at::Tensor& w_packed, const at::Tensor& w_scales,
                            const std::optional<at::Tensor>& w_zeros, int64_t group_size,
                            int64_t k) {
  TORCH_CHECK(k >= 0, "int4_prepack: k must be non-negative, got ", k);
  TORCH_CHECK(group_size > 0 && group_size % 64 == 0,
              "int4_prepack: group_size must be a positive multiple of 64, got ", group_size);
  check_canonical("int4_prepack", w_packed, k, group_size);
  const int64_t N = w_packed.size(0);
  check_int4("int4_prepack", k, N, w_scales, w_zeros, group_size);
  const int64_t Kw = w_packed.size(1) * 2, Gw64 = Kw / 64, NB = (N + 15) / 16;
  at::Tensor out = at::empty({NB, Gw64, 16, 32}, w_packed.options());
  if (out.numel() == 0) return out;
  at::Tensor wpk = w_packed.contiguous();
  const uint8_t* src = wpk.data_ptr<uint8_t>();
  uint8_t* dst = out.data_ptr<uint8_t>();
  const int isa = anda::select_isa();
  at::parallel_for(0, NB, 16, [&](int64_t b0, int64_t b1) {
    anda::prepack_blocks(isa, src, Kw / 2, N, Gw64, b0, b1, dst + b0 * Gw64 * anda::kGroupBytes);
  });
  return out;
}

at::Tensor anda_gemm_prepacked_cpu(const at::Tensor& words, const at::Tensor& exps, int64_t M,
                                   int64_t k, const at::Tensor& w_prepacked,
                                   const at::Tensor& w_scales,
                                   const std::optional<at::Tensor>& w_zeros, int64_t group_size,
                                   int64_t n) {
  check_words(words, exps, M, "anda_gemm_prepacked");
  const int64_t G = words.size(-2);
  TORCH_CHECK(k >= 0 && (k + 63) / 64 == G, "anda_gemm_prepacked: k=", k, " does not match G=", G);
  TORCH_CHECK(n >= 0, "anda_gemm_prepacked: n must be non-negative, got ", n);
  const int64_t Gw = check_int4("anda_gemm_prepacked", k, n, w_scales, w_zeros, group_size);
  const int64_t Kw = Gw * group_size;
  TORCH_CHECK(w_prepacked.scalar_type() == at::kByte && w_prepacked.dim() == 4 &&
                  w_prepacked.size(0) == (n + 15) / 16 && w_prepacked.size(1) == Kw / 64 &&
                  w_prepacked.size(2) == 16 && w_prepacked.size(3) == 32,
              "anda_gemm_prepacked: w_prepacked must be uint8 [", (n + 15) / 16, ", ", Kw / 64,
              ", 16, 32] (from int4_prepack)");
  at::Tensor y = output_like(exps, n, G > 0);
  if (y.numel() == 0 || G == 0) return y;
  const DecodedAct d = decode(words, exps, M);
  at::Tensor wpp = w_prepacked.contiguous(), sc = w_scales.contiguous();
  at::Tensor zc = w_zeros.has_value() ? w_zeros->contiguous() : at::Tensor();
  gemm_run(d, n, Kw, nullptr, wpp.data_ptr<uint8_t>(), sc, zc, group_size, y.data_ptr<float>());
  return y;
}

std::string isa_info() {
  return std::string("detected=") + anda::isa_name(anda::detect_isa()) +
         " selected=" + anda::isa_name(anda::select_isa());
}

}  // namespace

TORCH_LIBRARY_IMPL(andactl, CPU, m) {
  m.impl("anda_pack", &anda_pack_cpu);
  m.impl("anda_unpack", &anda_unpack_cpu);
  m.impl("anda_gemm", &anda_gemm_cpu);
  m.impl("int4_prepack", &int4_prepack_cpu);
  m.impl("anda_gemm_prepacked", &anda_gemm_prepacked_cpu);
}

TORCH_LIBRARY(andactl_cpp, m) {
  m.def("isa_info() -> str", &isa_info);
}
