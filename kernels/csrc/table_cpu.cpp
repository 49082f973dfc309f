// Torch glue of andactl::table_linear (schema in kernels/tables.py): a linear layer over a
// group-wise INT8 / INT4 table, computed from the codes (table_kern.cpp), parallel over rows.
#include <ATen/Parallel.h>
#include <c10/core/InferenceMode.h>
#include <torch/library.h>
#include <torch/types.h>

#include <vector>

#include "anda_kern.h"

namespace {

constexpr int64_t kRowChunk = 256;  // table rows per work item (~150 KB of INT8 codes at K = 576)
// From this many tokens (a prefill, a perplexity window) the table is decoded chunk by chunk into
// float32 (exact) and multiplied by torch's GEMM; in bfloat16 runs the chunk is rounded to
// bfloat16 first, as a dense bfloat16 head is (AMX / AVX512-BF16 GEMM). Fewer tokens (decode):
// the codes are decoded in registers (table_kern.cpp). Where the chunk is rounded to bfloat16
// straight from the codes (table_has_bf16_dequant), the GEMM path pays off from fewer tokens:
// measured on a 2-core Xeon with AMX, K = 576, 49152 rows, 2 threads: the GEMM path ~4 ms for
// 2..16 tokens, the register path 3.0 ms at 8 tokens, 5.2 ms at 12.
constexpr int64_t kGemmTokens = 32, kGemmTokensBf16 = 10;
constexpr int64_t kGemmChunk = 1024;  // table rows per decoded chunk (2.3 MB float32 at K = 576)
// From this many bfloat16 tokens to 16 (table_has_amx) INT8 and INT4 tables take the AMX-BF16 path
// where the CPU has it (table_amx.cpp), ahead of the GEMM path: measured as above (INT8), 2 / 4 / 8 /
// 12 / 16 tokens 1.9 / 2.2 / 2.2 / 2.3 / 2.3 ms (registers 1.4 / 2.2 / 3.3; GEMM path 6.1 / 4.2 at 12 / 16);
// at 3 tokens, 1 thread, the tiles win for every table measured (49152 x 576 INT8 / INT4: 3.8 / 4.3
// ms against the registers' 4.7 / 5.4; 32000 x 3264: 14.6 / 16.6 against 18.6 / 22.7 with the rows'
// prefetch of table_kern.cpp, 22.0 / 29.7 without), at 2 tokens they lose on a head in the caches
// (3.7 against 2.8 ms) (docs/BENCH.md, fifteenth round).
constexpr int64_t kAmxTokens = 3;

at::Tensor table_linear_cpu(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& scale,
                            int64_t bits, int64_t group_size, const std::optional<at::Tensor>& bias) {
  TORCH_CHECK(bits == 8 || bits == 4, "table_linear: bits must be 8 or 4, got ", bits);
  TORCH_CHECK(group_size >= 1, "table_linear: group_size must be >= 1, got ", group_size);
  const auto dt = x.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
              "table_linear: x must be float32, bfloat16 or float16, got ", dt);
  TORCH_CHECK(x.dim() >= 1, "table_linear: x must have at least one dimension");
  const int64_t K = x.size(-1), R = packed.size(0);
  const int64_t pcols = bits == 8 ? K : (K + 1) / 2, G = (K + group_size - 1) / group_size;
  TORCH_CHECK(packed.scalar_type() == at::kByte && packed.dim() == 2 && packed.size(1) == pcols,
              "table_linear: packed must be uint8 [R, ", pcols, "]");
  TORCH_CHECK(scale.scalar_type() == at::kHalf && scale.dim() == 2 && scale.size(0) == R &&
                  scale.size(1) == G,
              "table_linear: scale must be float16 [", R, ", ", G, "]");
  if (bias.has_value())
    TORCH_CHECK(bias->dim() == 1 && bias->size(0) == R && bias->is_floating_point(),
                "table_linear: bias must be a float tensor [", R, "]");
  auto osz = x.sizes().vec();
  osz.back() = R;
  const at::Tensor x2 = x.reshape({-1, K});
  const int64_t T = x2.size(0);
  // float32 rows for the kernel and the float32 GEMM; a bfloat16 GEMM multiplies x as it is
  const int isa = anda::select_isa();
  const bool fast_bf16 = dt == at::kBFloat16 && anda::table_has_bf16_dequant(isa, K, (int)group_size);
  const bool amx = dt == at::kBFloat16 && T >= kAmxTokens && anda::table_has_amx(isa, (int)bits, T, K, (int)group_size);
  const bool gemm = !amx && T >= (fast_bf16 ? kGemmTokensBf16 : kGemmTokens), gemm_bf16 = gemm && dt == at::kBFloat16;
  const at::Tensor xf = gemm_bf16 ? at::Tensor() : x2.to(at::kFloat).contiguous();
  // a bfloat16 GEMM writes bfloat16 rows (each chunk's product as torch's GEMM rounds it, plus
  // the bias in float32 rounded once more: the bits y.to(bfloat16) of float32 rows would give)
  at::Tensor y = at::empty({T, R}, x.options().dtype(gemm_bf16 ? at::kBFloat16 : at::kFloat));
  if (T > 0 && R > 0) {
    const at::Tensor pc = packed.contiguous(), sc = scale.contiguous();
    at::Tensor bf;
    if (bias.has_value()) bf = bias->to(at::kFloat).contiguous();
    const anda::TableArgs a{xf.defined() ? xf.data_ptr<float>() : nullptr, T, K, pc.data_ptr<uint8_t>(), pcols,
                            (const uint16_t*)sc.data_ptr<at::Half>(), G, (int)bits, (int)group_size,
                            bf.defined() ? bf.data_ptr<float>() : nullptr,
                            gemm_bf16 ? nullptr : y.data_ptr<float>(), R};
    if (gemm) {
      const at::Tensor xg = gemm_bf16 ? x2.contiguous() : xf;
      const bool inference = c10::InferenceMode::is_enabled();  // workers do not inherit it
      at::parallel_for(0, R, kGemmChunk, [&](int64_t r0, int64_t r1) {
        const c10::InferenceMode guard(inference);
        for (int64_t c = r0; c < r1; c += kGemmChunk) {
          const int64_t c1 = std::min(r1, c + kGemmChunk);
          at::Tensor w;
          if (gemm_bf16 && fast_bf16) {  // the chunk rounded to bfloat16 straight from the codes
            w = at::empty({c1 - c, K}, x.options().dtype(at::kBFloat16));
            anda::table_dequant_rows_bf16(a, c, c1, (uint16_t*)w.data_ptr<at::BFloat16>());
          } else {
            w = at::empty({c1 - c, K}, x.options().dtype(at::kFloat));
            anda::table_dequant_rows(a, c, c1, w.data_ptr<float>());
            if (gemm_bf16) w = w.to(at::kBFloat16);
          }
          at::Tensor yc = at::mm(xg, w.t());
          if (bf.defined()) yc = yc.to(at::kFloat).add_(bf.narrow(0, c, c1 - c));
          y.narrow(1, c, c1 - c).copy_(yc);
        }
      });
    } else if (amx) {
      // a few bfloat16 tokens on AMX-BF16: codes -> bf16 tiles, x transposed once per call
      const at::Tensor xs = x2.contiguous();
      std::vector<uint16_t> xb((size_t)(T * anda::kTableAmxStep * anda::table_amx_steps(K)));
      anda::table_amx_x((const uint16_t*)xs.data_ptr<at::BFloat16>(), T, K, xb.data());
      at::parallel_for(0, R, kRowChunk, [&](int64_t r0, int64_t r1) {
        for (int64_t c = r0; c < r1; c += kRowChunk)
          anda::table_rows_amx(a, xb.data(), c, std::min(r1, c + kRowChunk));
      });
    } else {
      at::parallel_for(0, R, kRowChunk, [&](int64_t r0, int64_t r1) {
        for (int64_t c = r0; c < r1; c += kRowChunk)
          anda::table_rows(isa, a, c, std::min(r1, c + kRowChunk));
      });
    }
  }
  return (y.scalar_type() == dt ? y : y.to(dt)).view(osz);
}

}  // namespace

TORCH_LIBRARY_IMPL(andactl, CPU, m) { m.impl("table_linear", &table_linear_cpu); }
