// Torch glue of the andactl CPU kernels: argument checks, threading (at::parallel_for) and the
// TORCH_LIBRARY_IMPL(andactl, CPU) registration. Schemas are defined in Python (kernels/ops.py);
// load this library after importing andactl.kernels.ops. Also defines andactl_cpp::isa_info.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <string>

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

at::Tensor anda_gemm_cpu(const at::Tensor& words, const at::Tensor& exps, int64_t M, int64_t k,
                         const at::Tensor& w_packed, const at::Tensor& w_scales,
                         const std::optional<at::Tensor>& w_zeros, int64_t group_size) {
  check_words(words, exps, M, "anda_gemm");
  const int64_t G = words.size(-2);
  TORCH_CHECK(k >= 0 && (k + 63) / 64 == G, "anda_gemm: k=", k, " does not match G=", G);
  TORCH_CHECK(group_size > 0 && group_size % 64 == 0,
              "anda_gemm: group_size must be a positive multiple of 64, got ", group_size);
  TORCH_CHECK(w_packed.scalar_type() == at::kByte && w_packed.dim() == 2,
              "anda_gemm: w_packed must be uint8 [N, Kw/2]");
  const int64_t N = w_packed.size(0);
  const int64_t Kw = (k + group_size - 1) / group_size * group_size;
  const int64_t Gw = Kw / group_size;
  TORCH_CHECK(w_packed.size(1) == Kw / 2, "anda_gemm: w_packed must have ", Kw / 2,
              " columns for k=", k, " and group_size=", group_size);
  TORCH_CHECK(w_scales.scalar_type() == at::kFloat && w_scales.dim() == 2 &&
                  w_scales.size(0) == N && w_scales.size(1) == Gw,
              "anda_gemm: w_scales must be float32 [N, ", Gw, "]");
  if (w_zeros.has_value())
    TORCH_CHECK(w_zeros->scalar_type() == at::kByte && w_zeros->dim() == 2 &&
                    w_zeros->size(0) == N && w_zeros->size(1) == Gw,
                "anda_gemm: w_zeros must be uint8 [N, ", Gw, "]");
  auto osz = exps.sizes().vec();
  osz.back() = N;
  const int64_t T = G > 0 ? exps.numel() / G : exps.numel() / std::max<int64_t>(1, exps.size(-1));
  at::Tensor y = at::zeros(osz, words.options().dtype(at::kFloat));
  if (y.numel() == 0 || G == 0) return y;
  const int C = anda::gemm_chunks((int)M);
  const int64_t Tpad = (T + 7) / 8 * 8;
  at::Tensor A = at::zeros({Tpad, G, C, 64}, words.options().dtype(at::kChar));
  at::Tensor S = at::zeros({Tpad, G}, words.options().dtype(at::kInt));
  at::Tensor U = at::zeros({Tpad, G}, words.options().dtype(at::kFloat));
  at::Tensor wc = words.contiguous(), ec = exps.contiguous();
  const int64_t* wp = wc.data_ptr<int64_t>();
  const uint8_t* ep = ec.data_ptr<uint8_t>();
  int8_t* Ap = A.data_ptr<int8_t>();
  int32_t* Sp = S.data_ptr<int32_t>();
  float* Up = U.data_ptr<float>();
  at::parallel_for(0, T, std::max<int64_t>(1, 256 / G), [&](int64_t r0, int64_t r1) {
    anda::decode_act(wp + r0 * G * (1 + M), ep + r0 * G, r1 - r0, G, (int)M,
                     Ap + r0 * G * C * 64, Sp + r0 * G, Up + r0 * G);
  });
  at::Tensor wpk = w_packed.contiguous(), sc = w_scales.contiguous();
  at::Tensor zc = w_zeros.has_value() ? w_zeros->contiguous() : at::Tensor();
  const uint8_t* zp = w_zeros.has_value() ? zc.data_ptr<uint8_t>() : nullptr;
  const int isa = anda::select_isa();
  const int64_t NB = 64;  // rows per work item (4 blocks of 16)
  const int64_t items = (N + NB - 1) / NB;
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, items, 1, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      anda::gemm_nblock(isa, Ap, Sp, Up, T, Tpad, (int)G, C, wpk.data_ptr<uint8_t>(), Kw / 2,
                        sc.data_ptr<float>(), Gw, zp, group_size, i * NB,
                        std::min(N, (i + 1) * NB), N, yp);
    }
  });
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
}

TORCH_LIBRARY(andactl_cpp, m) {
  m.def("isa_info() -> str", &isa_info);
}
