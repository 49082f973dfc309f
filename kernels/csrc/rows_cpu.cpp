// CPU kernels of andactl::rms_norm and andactl::rotary (schemas and references in kernels/rows.py):
// one dispatch per call instead of torch's five to eight small ops. Plain loops (no ISA dispatch):
// a decode step's rows are a few hundred values, where the dispatch, not the arithmetic, costs.
// Every rounding is the one torch makes: products and sums of 16-bit values are computed in float
// and rounded to nearest even (c10's conversions), float32 ones are float32 operations.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>
#include <torch/library.h>
#include <torch/types.h>

#include <cmath>
#include <optional>

namespace {

template <class T> inline float f32(T v) { return static_cast<float>(v); }
template <class T> inline T cast(float v) { return static_cast<T>(v); }  // c10: round to nearest even

// Calls f(T{}) with T the C++ type of scalar type st (float32, bfloat16 or float16).
template <class F> void by_type(at::ScalarType st, const char* what, F f) {
  switch (st) {
    case at::kFloat: return f(float{});
    case at::kBFloat16: return f(c10::BFloat16{});
    case at::kHalf: return f(c10::Half{});
    default: TORCH_CHECK(false, what, " must be float32, bfloat16 or float16, got ", st);
  }
}

// One row: h = (x * rsqrt(sum x^2 / divisor + eps)) rounded to TX; y = h, or w * h rounded to TO.
template <class TX, class TW, class TO>
void norm_row(const TX* x, const TW* w, TO* y, int64_t n, float eps, float divisor) {
  float acc[16] = {};  // 16 independent lanes (vectorised without reassociation), summed pairwise
  int64_t i = 0;
  for (; i + 16 <= n; i += 16)
    for (int j = 0; j < 16; ++j) {
      const float v = f32(x[i + j]);
      acc[j] += v * v;
    }
  for (; i < n; ++i) {
    const float v = f32(x[i]);
    acc[i % 16] += v * v;
  }
  for (int w = 8; w >= 1; w /= 2)
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  const float r = 1.0f / std::sqrt(acc[0] / divisor + eps);
  for (int64_t i = 0; i < n; ++i) {
    const TX h = cast<TX>(f32(x[i]) * r);
    y[i] = w ? cast<TO>(f32(w[i]) * f32(h)) : cast<TO>(f32(h));
  }
}

at::Tensor rms_norm_cpu(const at::Tensor& x_in, const std::optional<at::Tensor>& weight, double eps, double divisor) {
  TORCH_CHECK(x_in.dim() >= 1 && x_in.size(-1) >= 1, "rms_norm: x must have a last dimension of at least 1");
  TORCH_CHECK(divisor > 0, "rms_norm: divisor must be positive, got ", divisor);
  const at::Tensor x = x_in.contiguous();
  const int64_t n = x.size(-1), rows = x.numel() / n;
  at::Tensor w;
  at::ScalarType out_t = x.scalar_type();
  if (weight.has_value() && weight->defined()) {
    w = weight->contiguous();
    TORCH_CHECK(w.dim() == 1 && w.size(0) == n, "rms_norm: weight must be [", n, "], got ", w.sizes());
    out_t = at::promote_types(w.scalar_type(), x.scalar_type());
  }
  at::Tensor y = at::empty(x.sizes(), x.options().dtype(out_t));
  if (rows == 0) return y;
  const at::ScalarType wt = w.defined() ? w.scalar_type() : x.scalar_type();
  by_type(x.scalar_type(), "rms_norm: x", [&](auto tx) {
    using TX = decltype(tx);
    by_type(wt, "rms_norm: weight", [&](auto tw) {
      using TW = decltype(tw);
      by_type(out_t, "rms_norm: output", [&](auto to) {
        using TO = decltype(to);
        const TX* xp = x.data_ptr<TX>();
        const TW* wp = w.defined() ? w.data_ptr<TW>() : nullptr;
        TO* yp = y.data_ptr<TO>();
        at::parallel_for(0, rows, std::max<int64_t>(1, 32768 / n), [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r) norm_row(xp + r * n, wp, yp + r * n, n, (float)eps, (float)divisor);
        });
      });
    });
  });
  return y;
}

// out[b, h, t, :] = x * cos + rotate_half(x) * sin, each product and the sum rounded to T.
at::Tensor rotary_cpu(const at::Tensor& x_in, const at::Tensor& cos_in, const at::Tensor& sin_in) {
  TORCH_CHECK(x_in.dim() == 4, "rotary: x must be [B, heads, T, D], got ", x_in.sizes());
  const int64_t B = x_in.size(0), H = x_in.size(1), T = x_in.size(2), D = x_in.size(3);
  TORCH_CHECK(D % 2 == 0, "rotary: the head size must be even, got ", D);
  TORCH_CHECK(cos_in.scalar_type() == x_in.scalar_type() && sin_in.scalar_type() == x_in.scalar_type(),
              "rotary: cos and sin must have x's dtype");
  for (const auto* t : {&cos_in, &sin_in})
    TORCH_CHECK(t->dim() == 4 && (t->size(0) == B || t->size(0) == 1) && t->size(1) == 1 && t->size(2) == T &&
                    t->size(3) == D,
                "rotary: cos and sin must be [B or 1, 1, T, D], got ", t->sizes());
  const at::Tensor x = x_in.stride(-1) == 1 ? x_in : x_in.contiguous();
  const at::Tensor c = cos_in.contiguous(), s = sin_in.contiguous();
  const bool per_batch = c.size(0) == B && B > 1;
  at::Tensor o = at::empty({B, H, T, D}, x.options().memory_format(at::MemoryFormat::Contiguous));
  if (o.numel() == 0) return o;
  const int64_t half = D / 2;
  by_type(x.scalar_type(), "rotary: x", [&](auto tag) {
    using T_ = decltype(tag);
    const T_* xp = x.data_ptr<T_>();
    const T_* cp = c.data_ptr<T_>();
    const T_* sp = s.data_ptr<T_>();
    T_* op = o.data_ptr<T_>();
    at::parallel_for(0, B * H * T, std::max<int64_t>(1, 16384 / D), [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const int64_t b = i / (H * T), h = i / T % H, t = i % T;
        const T_* xr = xp + b * x.stride(0) + h * x.stride(1) + t * x.stride(2);
        const int64_t cs = ((per_batch ? b : 0) * T + t) * D;
        const T_ *cr = cp + cs, *sr = sp + cs;
        T_* orow = op + i * D;
        for (int64_t d = 0; d < D; ++d) {
          const float rot = d < half ? -f32(xr[d + half]) : f32(xr[d - half]);
          const T_ a = cast<T_>(f32(xr[d]) * f32(cr[d])), r = cast<T_>(rot * f32(sr[d]));
          orow[d] = cast<T_>(f32(a) + f32(r));
        }
      }
    });
  });
  return o;
}

}  // namespace

TORCH_LIBRARY_IMPL(andactl, CPU, m) {
  m.impl("rms_norm", &rms_norm_cpu);
  m.impl("rotary", &rotary_cpu);
}
