// CUDA kernels of andactl: anda_pack (one warp per 64-group, bit planes by __ballot_sync),
// anda_unpack (one thread per element) and anda_gemm (one block per 16 tokens x 64 rows; the
// activation group is decoded to signed integers in shared memory and each thread forms exact
// integer group sums sum_j (s*m)_j * (q - z), scaled by 2^(E-15-(M-1)) * scale and accumulated
// over groups in float32, as the reference PE does).
//
// The device kernels and their launchers need only the CUDA runtime: compile with
// -DANDA_STANDALONE to check them without torch (tests/test_nvcc_compile.py). Without that macro
// the file also holds the torch glue and TORCH_LIBRARY_IMPL(andactl, CUDA) registration.
#include <cuda_runtime.h>

#include <cstdint>

namespace anda_cuda {

constexpr int kTokTile = 16;   // tokens per block
constexpr int kRowTile = 64;   // output rows per block
constexpr int kThreads = 256;  // threads per GEMM block

__global__ void pack_kernel(const uint16_t* __restrict__ h, int64_t rows, int64_t K, int M,
                            int nearest, int64_t* __restrict__ words, uint8_t* __restrict__ exps,
                            int* __restrict__ bad) {
  const int64_t G = (K + 63) / 64;
  const int64_t warp = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / 32;
  const int lane = threadIdx.x & 31;
  if (warp >= rows * G) return;  // whole warps exit together
  const int64_t r = warp / G, g = warp % G;
  uint32_t hv[2] = {0u, 0u};
  int E = 1;
  for (int i = 0; i < 2; ++i) {
    const int64_t k = g * 64 + lane + 32 * i;
    if (k < K) hv[i] = h[r * K + k];
    const int e = (hv[i] >> 10) & 31;
    if (e == 31) atomicExch(bad, 1);
    E = max(E, e);
  }
  for (int off = 16; off > 0; off >>= 1) E = max(E, __shfl_xor_sync(0xffffffffu, E, off));
  uint32_t m[2];
  const uint32_t mmax = (1u << M) - 1u;
  for (int i = 0; i < 2; ++i) {
    const uint32_t e = (hv[i] >> 10) & 31u;
    const uint32_t mant = (hv[i] & 0x3FFu) | (e ? 0x400u : 0u);
    const uint32_t s = uint32_t(E) - (e ? e : 1u) + 16u - uint32_t(M);
    const uint32_t v = mant << 5;
    uint32_t q;
    if (!nearest) q = s >= 32 ? 0u : (v >> s);
    else q = min(s == 0 ? v : (s >= 32 ? 0u : ((v + (1u << (s - 1))) >> s)), mmax);
    m[i] = q;
  }
  int64_t* out = words + warp * (1 + M);
  const uint32_t s0 = __ballot_sync(0xffffffffu, (hv[0] >> 15) & 1u);
  const uint32_t s1 = __ballot_sync(0xffffffffu, (hv[1] >> 15) & 1u);
  if (lane == 0) out[0] = int64_t(uint64_t(s0) | (uint64_t(s1) << 32));
  for (int p = 0; p < M; ++p) {
    const int b = M - 1 - p;
    const uint32_t b0 = __ballot_sync(0xffffffffu, (m[0] >> b) & 1u);
    const uint32_t b1 = __ballot_sync(0xffffffffu, (m[1] >> b) & 1u);
    if (lane == 0) out[1 + p] = int64_t(uint64_t(b0) | (uint64_t(b1) << 32));
  }
  if (lane == 0) exps[warp] = uint8_t(E);
}

__device__ __forceinline__ int32_t decode_signed(const int64_t* w, int M, int j) {
  uint32_t m = 0;
  for (int p = 0; p < M; ++p) m = (m << 1) | uint32_t((uint64_t(w[1 + p]) >> j) & 1u);
  return ((uint64_t(w[0]) >> j) & 1u) ? -int32_t(m) : int32_t(m);
}

__global__ void unpack_kernel(const int64_t* __restrict__ words, const uint8_t* __restrict__ exps,
                              int64_t rows, int64_t G, int M, int64_t K, float* __restrict__ out) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * K) return;
  const int64_t r = i / K, k = i % K, g = k / 64;
  const int64_t* w = words + (r * G + g) * (1 + M);
  const int j = int(k % 64);
  uint32_t m = 0;
  for (int p = 0; p < M; ++p) m = (m << 1) | uint32_t((uint64_t(w[1 + p]) >> j) & 1u);
  const float v = float(m) * ldexpf(1.0f, int(exps[r * G + g]) - 15 - (M - 1));
  out[i] = ((uint64_t(w[0]) >> j) & 1u) ? -v : v;
}

// grid: (ceil(N / 64), ceil(T / 16)); block: 256 threads, each owns 4 (token, row) outputs.
__global__ void gemm_kernel(const int64_t* __restrict__ words, const uint8_t* __restrict__ exps,
                            int64_t T, int64_t G, int M, const uint8_t* __restrict__ wp,
                            int64_t wstride, const float* __restrict__ scales, int64_t sstride,
                            const uint8_t* __restrict__ zeros, int64_t group_size, int64_t N,
                            float* __restrict__ y) {
  __shared__ int32_t act[kTokTile][64];
  __shared__ float unit[kTokTile];
  const int64_t n0 = int64_t(blockIdx.x) * kRowTile, t0 = int64_t(blockIdx.y) * kTokTile;
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  for (int64_t g = 0; g < G; ++g) {
    __syncthreads();
    for (int e = threadIdx.x; e < kTokTile * 64; e += blockDim.x) {
      const int tl = e / 64, j = e % 64;
      const int64_t t = t0 + tl;
      act[tl][j] = t < T ? decode_signed(words + (t * G + g) * (1 + M), M, j) : 0;
      if (j == 0) unit[tl] = t < T ? ldexpf(1.0f, int(exps[t * G + g]) - 15 - (M - 1)) : 0.f;
    }
    __syncthreads();
    const int64_t gw = g * 64 / group_size;
    for (int o = 0; o < 4; ++o) {
      const int idx = threadIdx.x + o * kThreads;  // 0..1023
      const int tl = idx / kRowTile, nl = idx % kRowTile;
      const int64_t n = n0 + nl;
      if (n >= N || t0 + tl >= T) continue;
      const uint8_t* row = wp + n * wstride + g * 32;
      const int32_t z = zeros ? int32_t(zeros[n * sstride + gw]) : 8;
      int32_t s = 0;  // |s| <= 64 * 65535 * 15 < 2^31
      for (int b = 0; b < 32; ++b) {
        const uint32_t byte = row[b];
        s += act[tl][2 * b] * (int32_t(byte & 15u) - z) + act[tl][2 * b + 1] * (int32_t(byte >> 4) - z);
      }
      acc[o] += float(double(s) * double(unit[tl]) * double(scales[n * sstride + gw]));
    }
  }
  for (int o = 0; o < 4; ++o) {
    const int idx = threadIdx.x + o * kThreads;
    const int tl = idx / kRowTile, nl = idx % kRowTile;
    if (n0 + nl < N && t0 + tl < T) y[(t0 + tl) * N + n0 + nl] = acc[o];
  }
}

cudaError_t launch_pack(const uint16_t* h, int64_t rows, int64_t K, int M, bool nearest,
                        int64_t* words, uint8_t* exps, int* bad, cudaStream_t stream) {
  const int64_t warps = rows * ((K + 63) / 64);
  if (warps == 0) return cudaSuccess;
  const int per_block = 8;
  const unsigned blocks = unsigned((warps + per_block - 1) / per_block);
  pack_kernel<<<blocks, 32 * per_block, 0, stream>>>(h, rows, K, M, nearest ? 1 : 0, words, exps, bad);
  return cudaGetLastError();
}

cudaError_t launch_unpack(const int64_t* words, const uint8_t* exps, int64_t rows, int64_t G,
                          int M, int64_t K, float* out, cudaStream_t stream) {
  const int64_t n = rows * K;
  if (n == 0) return cudaSuccess;
  unpack_kernel<<<unsigned((n + 255) / 256), 256, 0, stream>>>(words, exps, rows, G, M, K, out);
  return cudaGetLastError();
}

cudaError_t launch_gemm(const int64_t* words, const uint8_t* exps, int64_t T, int64_t G, int M,
                        const uint8_t* wp, int64_t wstride, const float* scales, int64_t sstride,
                        const uint8_t* zeros, int64_t group_size, int64_t N, float* y,
                        cudaStream_t stream) {
  if (T == 0 || N == 0) return cudaSuccess;
  dim3 grid(unsigned((N + kRowTile - 1) / kRowTile), unsigned((T + kTokTile - 1) / kTokTile));
  gemm_kernel<<<grid, kThreads, 0, stream>>>(words, exps, T, G, M, wp, wstride, scales, sstride,
                                             zeros, group_size, N, y);
  return cudaGetLastError();
}

}  // namespace anda_cuda

#ifndef ANDA_STANDALONE
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>
#include <torch/types.h>

namespace {

void check_cuda(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, what, ": ", cudaGetErrorString(err));
}

std::tuple<at::Tensor, at::Tensor> anda_pack_cuda(const at::Tensor& x, int64_t M,
                                                   c10::string_view rounding) {
  TORCH_CHECK(M >= 1 && M <= 16, "anda: mantissa_bits must be in 1..16, got ", M);
  TORCH_CHECK(rounding == "truncate" || rounding == "nearest",
              "anda_pack: rounding must be 'truncate' or 'nearest'");
  TORCH_CHECK(x.dim() >= 1, "anda_pack: x must have at least one dimension");
  c10::cuda::CUDAGuard guard(x.device());
  if (x.scalar_type() == at::kFloat && x.numel() > 0)
    TORCH_CHECK(x.abs().max().item<float>() <= 65504.0f,
                "anda_pack: input overflows float16 (|x| > 65504), or is NaN/Inf");
  at::Tensor h = x.to(at::kHalf).contiguous();
  const int64_t K = x.size(-1), G = (K + 63) / 64;
  const int64_t rows = K > 0 ? h.numel() / K : 0;
  auto wsz = x.sizes().vec();
  wsz.pop_back();
  auto esz = wsz;
  wsz.push_back(G);
  wsz.push_back(1 + M);
  esz.push_back(G);
  at::Tensor words = at::empty(wsz, x.options().dtype(at::kLong));
  at::Tensor exps = at::empty(esz, x.options().dtype(at::kByte));
  at::Tensor bad = at::zeros({1}, x.options().dtype(at::kInt));
  check_cuda(anda_cuda::launch_pack((const uint16_t*)h.data_ptr<at::Half>(), rows, K, (int)M,
                                    rounding == "nearest", words.data_ptr<int64_t>(),
                                    exps.data_ptr<uint8_t>(), bad.data_ptr<int>(),
                                    at::cuda::getCurrentCUDAStream()),
             "anda_pack");
  TORCH_CHECK(bad.item<int>() == 0, "anda_pack: input contains NaN/Inf or overflows float16");
  return {words, exps};
}

at::Tensor anda_unpack_cuda(const at::Tensor& words, const at::Tensor& exps, int64_t M, int64_t k) {
  TORCH_CHECK(M >= 1 && M <= 16, "anda: mantissa_bits must be in 1..16, got ", M);
  TORCH_CHECK(words.scalar_type() == at::kLong && exps.scalar_type() == at::kByte,
              "anda_unpack: words must be int64 and exponents uint8");
  c10::cuda::CUDAGuard guard(words.device());
  const int64_t G = exps.size(-1);
  TORCH_CHECK((k + 63) / 64 == G && words.size(-1) == 1 + M, "anda_unpack: shapes do not match k, M");
  auto osz = exps.sizes().vec();
  osz.back() = k;
  at::Tensor out = at::empty(osz, words.options().dtype(at::kFloat));
  const int64_t rows = G > 0 ? exps.numel() / G : 0;
  at::Tensor wc = words.contiguous(), ec = exps.contiguous();
  check_cuda(anda_cuda::launch_unpack(wc.data_ptr<int64_t>(), ec.data_ptr<uint8_t>(), rows, G,
                                      (int)M, k, out.data_ptr<float>(),
                                      at::cuda::getCurrentCUDAStream()),
             "anda_unpack");
  return out;
}

at::Tensor anda_gemm_cuda(const at::Tensor& words, const at::Tensor& exps, int64_t M, int64_t k,
                          const at::Tensor& w_packed, const at::Tensor& w_scales,
                          const std::optional<at::Tensor>& w_zeros, int64_t group_size) {
  TORCH_CHECK(M >= 1 && M <= 16, "anda: mantissa_bits must be in 1..16, got ", M);
  TORCH_CHECK(group_size > 0 && group_size % 64 == 0, "anda_gemm: bad group_size ", group_size);
  c10::cuda::CUDAGuard guard(words.device());
  const int64_t G = exps.size(-1), N = w_packed.size(0);
  const int64_t Kw = (k + group_size - 1) / group_size * group_size;
  TORCH_CHECK((k + 63) / 64 == G && w_packed.size(1) == Kw / 2 && w_scales.size(1) == Kw / group_size,
              "anda_gemm: shapes do not match k and group_size");
  auto osz = exps.sizes().vec();
  osz.back() = N;
  at::Tensor y = at::zeros(osz, words.options().dtype(at::kFloat));
  const int64_t T = G > 0 ? exps.numel() / G : 0;
  if (T == 0 || N == 0 || G == 0) return y;
  at::Tensor wc = words.contiguous(), ec = exps.contiguous(), wpk = w_packed.contiguous();
  at::Tensor sc = w_scales.contiguous();
  at::Tensor zc = w_zeros.has_value() ? w_zeros->contiguous() : at::Tensor();
  check_cuda(anda_cuda::launch_gemm(wc.data_ptr<int64_t>(), ec.data_ptr<uint8_t>(), T, G, (int)M,
                                    wpk.data_ptr<uint8_t>(), Kw / 2, sc.data_ptr<float>(),
                                    Kw / group_size,
                                    w_zeros.has_value() ? zc.data_ptr<uint8_t>() : nullptr,
                                    group_size, N, y.data_ptr<float>(),
                                    at::cuda::getCurrentCUDAStream()),
             "anda_gemm");
  return y;
}

}  // namespace

TORCH_LIBRARY_IMPL(andactl, CUDA, m) {
  m.impl("anda_pack", &anda_pack_cuda);
  m.impl("anda_unpack", &anda_unpack_cuda);
  m.impl("anda_gemm", &anda_gemm_cuda);
}
#endif  // ANDA_STANDALONE
