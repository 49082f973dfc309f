// Torch glue of andactl::split_pack and split_mm (schemas and torch references in
// kernels/split_gemm.py; the arithmetic in split_gemm.h), and andactl_cpp::split_tiles (which tiles
// split_mm runs on here: split_gemm.h's SplitTiles).
#include <ATen/Parallel.h>
#include <torch/library.h>
#include <torch/types.h>

#include <vector>

#include "split_gemm.h"

namespace {

// Column blocks per thread below which split_mm splits the reduction between the threads instead
// (the gradient through a head: N = hidden width, K = vocabulary; measured on a 2-core Xeon with AMX,
// 256 x 49152 x 432: 25.0 ms split by columns, 23.8 ms by the reduction).
constexpr int64_t kBlocksPerThread = 8;

void check_rows(const at::Tensor& t, const char* what) {
  TORCH_CHECK(t.scalar_type() == at::kFloat && t.dim() == 2 && (t.size(1) <= 1 || t.stride(1) == 1),
              "split_mm: ", what, " must be float32 [rows, cols] with contiguous rows, got ", t.scalar_type(), " ",
              t.sizes());
}

at::Tensor split_pack_cpu(const at::Tensor& w_in, bool transposed) {
  TORCH_CHECK(w_in.scalar_type() == at::kFloat && w_in.dim() == 2, "split_pack: w must be float32 [R, C], got ",
              w_in.scalar_type(), " ", w_in.sizes());
  const at::Tensor w = w_in.contiguous();
  const int64_t R = w.size(0), Cn = w.size(1);
  // the packed operand B [K, N] is w.t() when transposed (B[k][n] = w[n][k]), else w
  const int64_t K = transposed ? Cn : R, N = transposed ? R : Cn;
  const int64_t sk = transposed ? 1 : Cn, sn = transposed ? Cn : 1;
  at::Tensor out = at::empty({anda::split_blocks(N), anda::split_steps(K), 4, 16, 32}, w.options().dtype(at::kBFloat16));
  auto* o = reinterpret_cast<uint16_t*>(out.data_ptr<at::BFloat16>());
  const float* wp = w.data_ptr<float>();
  at::parallel_for(0, anda::split_blocks(N), 1, [&](int64_t b0, int64_t b1) {
    anda::split_pack_b(wp, sk, sn, K, N, o, b0, b1);
  });
  return out;
}

void split_mm_cpu(const at::Tensor& x, const at::Tensor& packed, const at::Tensor& out, const at::Tensor& work) {
  check_rows(x, "x");
  check_rows(out, "out");
  const int64_t M = x.size(0), K = x.size(1), N = out.size(1);
  TORCH_CHECK(out.size(0) == M, "split_mm: out must have x's ", M, " rows, got ", out.size(0));
  const int64_t steps = anda::split_steps(K), nblocks = anda::split_blocks(N);
  TORCH_CHECK(packed.scalar_type() == at::kBFloat16 && packed.is_contiguous() && packed.dim() == 5 &&
                  packed.size(0) == nblocks && packed.size(1) == steps && packed.size(2) == 4 && packed.size(3) == 16 &&
                  packed.size(4) == 32,
              "split_mm: packed must be split_pack's bfloat16 [", nblocks, ", ", steps, ", 4, 16, 32] for K = ", K,
              ", N = ", N, ", got ", packed.scalar_type(), " ", packed.sizes());
  TORCH_CHECK(work.scalar_type() == at::kBFloat16 && work.is_contiguous() && work.numel() >= anda::split_packed_size(M, K),
              "split_mm: work must be contiguous bfloat16 with at least ", anda::split_packed_size(M, K), " values");
  if (M == 0 || N == 0) return;
  if (K == 0) {
    out.zero_();
    return;
  }
  auto* A = reinterpret_cast<uint16_t*>(work.data_ptr<at::BFloat16>());
  const auto* B = reinterpret_cast<const uint16_t*>(packed.data_ptr<at::BFloat16>());
  const float* xp = x.data_ptr<float>();
  float* C = out.data_ptr<float>();
  const int64_t lda = x.stride(0), ldc = out.stride(0);
  const int tiles = anda::split_tiles();
  at::parallel_for(0, anda::split_blocks(M), 1, [&](int64_t b0, int64_t b1) { anda::split_pack_a(xp, lda, M, K, A, b0, b1); });
  const int64_t threads = at::get_num_threads();
  if (nblocks >= kBlocksPerThread * threads || threads == 1 || steps < 2 * threads) {
    at::parallel_for(0, nblocks, 1, [&](int64_t b0, int64_t b1) {
      anda::split_gemm(tiles, A, B, M, N, K, C, ldc, b0, b1, 0, steps, false);
    });
    return;
  }
  // a long reduction into few columns: each thread sums its share of the steps, thread 0 into out
  std::vector<at::Tensor> part((size_t)threads);
  at::parallel_for(0, threads, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t s0 = steps * t / threads, s1 = steps * (t + 1) / threads;
      float* c = C;
      int64_t ld = ldc;
      if (t > 0) {
        part[(size_t)t] = at::empty({M, N}, out.options());
        c = part[(size_t)t].data_ptr<float>(), ld = N;
      }
      anda::split_gemm(tiles, A, B, M, N, K, c, ld, 0, nblocks, s0, s1, false);
    }
  });
  for (int64_t t = 1; t < threads; ++t) out.add_(part[(size_t)t]);
}

int64_t split_tiles_cpu() { return anda::split_tiles(); }

}  // namespace

TORCH_LIBRARY_IMPL(andactl, CPU, m) {
  m.impl("split_pack", &split_pack_cpu);
  m.impl("split_mm", &split_mm_cpu);
}

TORCH_LIBRARY_FRAGMENT(andactl_cpp, m) { m.def("split_tiles() -> int", &split_tiles_cpu); }
