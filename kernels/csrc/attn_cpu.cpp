// Torch glue of andactl::decode_attention (schema in kernels/attention.py): attention of a few
// query tokens against a whole KV cache, parallel over (batch, KV head) items (attn_kern.cpp).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <numeric>

#include "anda_kern.h"

namespace {

at::Tensor last_dim_contiguous(const at::Tensor& t) { return t.stride(-1) == 1 ? t : t.contiguous(); }

// Key-range splits per (batch, KV head): where those pairs do not divide evenly among the threads
// and are few (batch-1 decode: 3 KV heads on 2 threads leaves one thread idle half the time), each
// pair runs as nsplit items over equal key ranges so that every thread gets the same share,
// provided every range keeps at least kMinSplitKeys keys; else 1.
constexpr int64_t kMinSplitKeys = 128;
int64_t splits(int64_t pairs, int64_t S, int64_t threads) {
  if (threads <= 1 || pairs % threads == 0 || pairs >= 4 * threads) return 1;
  const int64_t n = threads / std::gcd(pairs, threads);  // pairs * n is a multiple of threads
  return S / n >= kMinSplitKeys ? n : 1;
}

at::Tensor decode_attention_cpu(const at::Tensor& q_in, const at::Tensor& k_in, const at::Tensor& v_in,
                                double scale) {
  const auto dt = q_in.scalar_type();
  TORCH_CHECK(dt == at::kFloat || dt == at::kBFloat16 || dt == at::kHalf,
              "decode_attention: q must be float32, bfloat16 or float16, got ", dt);
  TORCH_CHECK(k_in.scalar_type() == dt && v_in.scalar_type() == dt, "decode_attention: q, k and v must share a dtype");
  TORCH_CHECK(q_in.dim() == 4 && k_in.dim() == 4 && v_in.dim() == 4,
              "decode_attention: q, k and v must be [B, heads, tokens, D]");
  const int64_t B = q_in.size(0), H = q_in.size(1), T = q_in.size(2), D = q_in.size(3);
  const int64_t KVH = k_in.size(1), S = k_in.size(2);
  TORCH_CHECK(k_in.size(0) == B && v_in.size(0) == B, "decode_attention: q, k and v must have the same batch");
  TORCH_CHECK(KVH >= 1 && v_in.size(1) == KVH && H % KVH == 0,
              "decode_attention: k and v need the same number of heads, dividing q's ", H);
  TORCH_CHECK(v_in.size(2) == S && S >= 1, "decode_attention: k and v need the same number (>= 1) of tokens");
  TORCH_CHECK(k_in.size(3) == D && v_in.size(3) == D, "decode_attention: q, k and v need the same head size");
  const at::Tensor q = last_dim_contiguous(q_in), k = last_dim_contiguous(k_in), v = last_dim_contiguous(v_in);
  at::Tensor o = at::empty({B, H, T, D}, q.options());
  if (o.numel() == 0) return o;
  const int kind = dt == at::kFloat ? anda::kAttnF32 : dt == at::kBFloat16 ? anda::kAttnBF16 : anda::kAttnF16;
  anda::AttnArgs a{q.data_ptr(), q.stride(0), q.stride(1), q.stride(2),
                   k.data_ptr(), k.stride(0), k.stride(1), k.stride(2),
                   v.data_ptr(), v.stride(0), v.stride(1), v.stride(2),
                   o.data_ptr(), o.stride(0), o.stride(1), o.stride(2),
                   kind, B, H, KVH, T, S, D, (float)scale, nullptr, 1};
  const int isa = anda::select_isa();
  a.nsplit = splits(B * KVH, S, at::get_num_threads());
  at::Tensor part;
  if (a.nsplit > 1) {
    part = at::empty({B * KVH * a.nsplit, (H / KVH) * T, D + 2}, q.options().dtype(at::kFloat));
    a.part = part.data_ptr<float>();
  }
  at::parallel_for(0, B * KVH * a.nsplit, 1, [&](int64_t i0, int64_t i1) { anda::attn_items(isa, a, i0, i1); });
  if (a.nsplit > 1)
    at::parallel_for(0, B * KVH, 1, [&](int64_t i0, int64_t i1) { anda::attn_combine(a, i0, i1); });
  return o;
}

bool decode_attention_vectorized(int64_t head_dim) { return anda::attn_vectorized(anda::select_isa(), head_dim); }

}  // namespace

TORCH_LIBRARY_FRAGMENT(andactl_cpp, m) { m.def("decode_attention_vectorized(int head_dim) -> bool", &decode_attention_vectorized); }

TORCH_LIBRARY_IMPL(andactl, CPU, m) { m.impl("decode_attention", &decode_attention_cpu); }
