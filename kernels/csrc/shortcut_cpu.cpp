// Torch glue of andactl::shortcut_add (schema and reference in kernels/shortcut.py): a SliceGPT
// residual shortcut of a decode step, r @ S + u, parallel over blocks of output columns
// (shortcut_kern.cpp).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include "anda_kern.h"

namespace {

// Multiply-adds below which one thread does the whole call (a fork costs more than it saves).
constexpr int64_t kParallelWork = 1 << 17;

at::Tensor shortcut_add_cpu(const at::Tensor& r_in, const at::Tensor& S_in, const at::Tensor& u_in) {
  const auto dt = r_in.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
              "shortcut_add: r must be float32, bfloat16 or float16, got ", dt);
  TORCH_CHECK(S_in.scalar_type() == dt && u_in.scalar_type() == dt, "shortcut_add: r, S and u must share a dtype");
  TORCH_CHECK(S_in.dim() == 2 && r_in.dim() >= 1 && r_in.size(-1) == S_in.size(0),
              "shortcut_add: S must be [din, dout] with din the last dimension of r");
  const int64_t din = S_in.size(0), dout = S_in.size(1);
  auto want = r_in.sizes().vec();
  want.back() = dout;
  TORCH_CHECK(u_in.sizes().vec() == want, "shortcut_add: u must have r's shape with the last dimension ", dout);
  if (din == 0) return u_in.clone();  // an empty product: u itself
  const at::Tensor r = r_in.contiguous(), S = S_in.contiguous(), u = u_in.contiguous();
  at::Tensor out = at::empty(want, u.options());
  const int64_t T = r.numel() / din;
  if (out.numel() == 0) return out;
  const int kind = dt == at::kFloat ? anda::kAttnF32 : dt == at::kBFloat16 ? anda::kAttnBF16 : anda::kAttnF16;
  const anda::ShortcutArgs a{r.data_ptr(), S.data_ptr(), u.data_ptr(), out.data_ptr(), kind, T, din, dout};
  const int isa = anda::select_isa();
  const int64_t blocks = (dout + anda::kShortcutCols - 1) / anda::kShortcutCols;
  const int64_t grain = T * din * dout >= kParallelWork ? 1 : blocks;
  at::parallel_for(0, blocks, grain, [&](int64_t b0, int64_t b1) {
    anda::shortcut_rows(isa, a, b0 * anda::kShortcutCols, std::min(dout, b1 * anda::kShortcutCols));
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(andactl, CPU, m) { m.impl("shortcut_add", &shortcut_add_cpu); }
