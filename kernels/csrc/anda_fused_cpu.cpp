// Torch glue of the fused CPU op andactl::anda_linear (schema in kernels/fused.py): quantize the
// activations straight to the GEMM layout (anda_quant.cpp), run the prepacked GEMM on blocked
// scales, add the bias and write the run dtype, in one call with no Python in between.
// Invariant: y equals (anda_gemm_prepacked(anda_pack(x)) + bias.float()).to(x.dtype) bit for bit.
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "anda_kern.h"

namespace {

at::Tensor anda_linear_cpu(const at::Tensor& x, int64_t M, c10::string_view rounding,
                           const at::Tensor& w_prepacked, const at::Tensor& scb,
                           const at::Tensor& zb, const std::optional<at::Tensor>& bias,
                           int64_t group_size, int64_t n) {
  TORCH_CHECK(M >= 1 && M <= 16, "anda_linear: mantissa_bits must be in 1..16, got ", M);
  TORCH_CHECK(rounding == "truncate" || rounding == "nearest",
              "anda_linear: rounding must be 'truncate' or 'nearest', got '", std::string(rounding),
              "'");
  const auto dt = x.scalar_type();
  TORCH_CHECK(dt == at::kHalf || dt == at::kBFloat16 || dt == at::kFloat,
              "anda_linear: x must be float16, bfloat16 or float32, got ", dt);
  TORCH_CHECK(x.dim() >= 1, "anda_linear: x must have at least one dimension");
  TORCH_CHECK(group_size > 0 && group_size % 64 == 0,
              "anda_linear: group_size must be a positive multiple of 64, got ", group_size);
  TORCH_CHECK(n >= 0, "anda_linear: n must be non-negative, got ", n);
  const int64_t K = x.size(-1), G = (K + 63) / 64;
  const int64_t Gw = (K + group_size - 1) / group_size, Kw = Gw * group_size, NB = (n + 15) / 16;
  TORCH_CHECK(w_prepacked.scalar_type() == at::kByte && w_prepacked.dim() == 4 &&
                  w_prepacked.size(0) == NB && w_prepacked.size(1) == Kw / 64 &&
                  w_prepacked.size(2) == 16 && w_prepacked.size(3) == 32,
              "anda_linear: w_prepacked must be uint8 [", NB, ", ", Kw / 64, ", 16, 32]");
  TORCH_CHECK((scb.scalar_type() == at::kFloat || scb.scalar_type() == at::kHalf) && scb.dim() == 3 &&
                  scb.size(0) == NB && scb.size(1) == Gw && scb.size(2) == 16,
              "anda_linear: blocked scales must be float32 or float16 [", NB, ", ", Gw, ", 16]");
  TORCH_CHECK(zb.scalar_type() == at::kByte && zb.dim() == 3 && (zb.size(0) == NB || zb.size(0) == 1) &&
                  zb.size(1) == Gw && zb.size(2) == 16,
              "anda_linear: blocked zero points must be uint8 [", NB, " or 1, ", Gw, ", 16]");
  if (bias.has_value())
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == n && bias->is_floating_point(),
                "anda_linear: bias must be a float tensor [", n, "]");
  auto osz = x.sizes().vec();
  osz.back() = n;
  const int64_t T = K > 0 ? x.numel() / K : 0;
  if (T == 0 || n == 0 || G == 0) {
    at::Tensor y = at::zeros(osz, x.options());
    if (bias.has_value() && y.numel()) y.add_(bias->to(dt));  // K == 0: y = bias (rounded)
    return y;
  }
  // float32 and bfloat16 rows are rounded to float16 per work item inside the quantizer's loop
  // (and range checked there); float16 inputs are quantized as they are
  const bool f16_in = dt == at::kHalf;
  const at::Tensor src = x.contiguous();
  const int C = anda::gemm_chunks((int)M);
  // the micro-kernels and AMX tiles read up to the next token tile: zero rows
  const int64_t Tpad = anda::padded_tokens(T);
  auto opt = x.options();
  // one buffer for A, S and U (a decode step makes ~120 such calls: no per-tensor dispatch), the
  // padding rows zeroed with memset
  const int64_t a_bytes = Tpad * G * C * 64, su_bytes = Tpad * G * 4;
  at::Tensor work = at::empty({a_bytes + 2 * su_bytes}, opt.dtype(at::kByte));
  int8_t* Ap = (int8_t*)work.data_ptr<uint8_t>();
  int32_t* Sp = (int32_t*)(work.data_ptr<uint8_t>() + a_bytes);
  float* Up = (float*)(work.data_ptr<uint8_t>() + a_bytes + su_bytes);
  if (Tpad > T) {
    std::memset(Ap + T * G * C * 64, 0, (size_t)((Tpad - T) * G * C * 64));
    std::memset(Sp + T * G, 0, (size_t)((Tpad - T) * G * 4));
    std::memset(Up + T * G, 0, (size_t)((Tpad - T) * G * 4));
  }
  const int isa = anda::select_isa();
  const bool nearest = rounding == "nearest";
  const uint16_t* hp = f16_in ? (const uint16_t*)src.data_ptr<at::Half>() : nullptr;
  const float* fp = dt == at::kFloat ? src.data_ptr<float>() : nullptr;
  const uint16_t* bp = dt == at::kBFloat16 ? (const uint16_t*)src.data_ptr<at::BFloat16>() : nullptr;
  std::atomic<bool> bad{false}, range{false};
  at::parallel_for(0, T, std::max<int64_t>(1, 256 / G), [&](int64_t r0, int64_t r1) {
    const uint16_t* rows = hp ? hp + r0 * K : nullptr;
    std::unique_ptr<uint16_t[]> buf;  // not zero-filled: every element is written
    if (!hp) {
      buf.reset(new uint16_t[(size_t)((r1 - r0) * K)]);
      if (fp ? anda::f32_to_f16(isa, fp + r0 * K, (r1 - r0) * K, buf.get())
             : anda::bf16_to_f16(isa, bp + r0 * K, (r1 - r0) * K, buf.get()))
        range = true;
      rows = buf.get();
    }
    if (anda::quantize_rows(isa, rows, r1 - r0, K, (int)M, nearest, Ap + r0 * G * C * 64,
                            Sp + r0 * G, Up + r0 * G))
      bad = true;
    if (anda::avx2_magsign(isa, (int)M)) anda::to_magsign(Ap + r0 * G * C * 64, r1 - r0, G);
  });
  // values above the largest finite float16 overflow even when they would round down to it
  TORCH_CHECK(!range.load(), "anda_linear: input overflows float16 (|x| > 65504), or is NaN/Inf");
  TORCH_CHECK(!bad.load(), "anda_linear: input contains NaN/Inf or overflows float16");

  at::Tensor bf;
  if (bias.has_value()) bf = bias->to(at::kFloat).contiguous();
  const bool bf16_out = dt == at::kBFloat16;
  at::Tensor y = at::empty(osz, opt.dtype(bf16_out ? at::kBFloat16 : at::kFloat));
  anda::OutSpec os{bf16_out ? nullptr : y.data_ptr<float>(),
                   bf16_out ? (uint16_t*)y.data_ptr<at::BFloat16>() : nullptr,
                   bf.defined() ? bf.data_ptr<float>() : nullptr};
  const at::Tensor wpp = w_prepacked.contiguous(), sc = scb.contiguous(), zc = zb.contiguous();
  const uint8_t* wp = wpp.data_ptr<uint8_t>();
  const anda::BlockedScales sp = sc.scalar_type() == at::kHalf
      ? anda::BlockedScales{nullptr, (const uint16_t*)sc.data_ptr<at::Half>()}
      : anda::BlockedScales{sc.data_ptr<float>(), nullptr};
  const uint8_t* zp = zc.data_ptr<uint8_t>();
  const int64_t zblock = zb.size(0) == 1 ? 0 : Gw * 16;  // one shared block: symmetric weights
  const int64_t item = anda::item_blocks(isa, T, (int)M, G, NB, at::get_num_threads());
  const int64_t Gw64 = Kw / 64, items = (NB + item - 1) / item;
  // Dynamic schedule: a worker descheduled by other load does not hold the others back.
  std::atomic<int64_t> next{0};
  const int64_t workers = std::max<int64_t>(1, std::min<int64_t>(at::get_num_threads(), items));
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) {
    for (int64_t i = next.fetch_add(1); i < items; i = next.fetch_add(1)) {
      const int64_t b0 = i * item, b1 = std::min(NB, b0 + item);
      anda::gemm_blocked(isa, Ap, Sp, Up, T, (int)G, (int)M, wp + b0 * Gw64 * anda::kGroupBytes, Gw64,
                         sp.at(b0 * Gw * 16), zp + b0 * zblock, Gw * 16, zblock, group_size, b0 * 16,
                         std::min(n, b1 * 16), n, os);
    }
  });
  return dt == at::kHalf ? y.to(at::kHalf) : y;
}

}  // namespace

TORCH_LIBRARY_IMPL(andactl, CPU, m) { m.impl("anda_linear", &anda_linear_cpu); }
