// Raw-pointer CPU kernels of the andactl extension (no torch headers: this TU compiles fast).
// Layouts are those of ops_spec.md; see anda_kern.cpp for the internal GEMM layouts.
#pragma once
#include <cstdint>

namespace anda {

enum Isa : int { ISA_SCALAR = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };

int detect_isa();                    // best level this CPU (and OS) supports
int select_isa();                    // detect_isa() capped by env ANDA_CPU_ISA (read per call)
const char* isa_name(int isa);

// Pack `rows` rows of K fp16 values (bit patterns) into words [rows, G, 1+M] and exponents
// [rows, G]. Returns true if an Inf/NaN (exponent field 31) was seen.
bool pack_rows(int isa, const uint16_t* h, int64_t rows, int64_t K, int M, bool nearest,
               int64_t* words, uint8_t* exps);

// Decode [rows, G, 1+M] words to float32 [rows, K] (exact).
void unpack_rows(const int64_t* words, const uint8_t* exps, int64_t rows, int64_t G, int M,
                 int64_t K, float* out);

// Number of 7-bit chunks the GEMM splits an M-bit mantissa into.
inline int gemm_chunks(int M) { return (M + 6) / 7; }

// Decode activations to the GEMM layout: A int8 [rows, G, C, 64] (even k then odd k per group,
// chunk c = bits 7c..7c+6 of the magnitude, signed), S int32 [rows, G] = sum of signed
// magnitudes, U float [rows, G] = 2^(E-15-(M-1)).
void decode_act(const int64_t* words, const uint8_t* exps, int64_t rows, int64_t G, int M,
                int8_t* A, int32_t* S, float* U);

// y[t, n] for t < T and n in [n0, n1) (n1 - n0 <= 64). A/S/U hold Tpad >= T rows (Tpad a
// multiple of 8, padding rows zero). w: canonical INT4 [N, wstride] bytes, scales [N, sstride],
// zeros [N, sstride] or nullptr (symmetric, zero 8).
void gemm_nblock(int isa, const int8_t* A, const int32_t* S, const float* U, int64_t T,
                 int64_t Tpad, int G, int C, const uint8_t* w, int64_t wstride,
                 const float* scales, int64_t sstride, const uint8_t* zeros, int64_t group_size,
                 int64_t n0, int64_t n1, int64_t N, float* y);

}  // namespace anda
