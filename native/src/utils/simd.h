// Distance and fast-scan kernels behind a run-time dispatched function table.
// Every kernel has a scalar reference (simd_scalar.cpp) that reproduces the AVX2
// version's exact operation order (8-lane partial sums, fused multiply-add, fixed
// horizontal reduction), so the two agree bit for bit and tests can check that.
#pragma once
#include <cstddef>
#include <cstdint>

namespace winnow {

struct Kernels {
  const char* name;
  float (*dot)(const float* a, const float* b, size_t d);
  float (*l2sq)(const float* a, const float* b, size_t d);
  // b is IEEE binary16; conversion to float is exact, so only the sum order matters.
  float (*dot_f16)(const float* a, const uint16_t* b, size_t d);
  float (*l2sq_f16)(const float* a, const uint16_t* b, size_t d);
  // Fast-scan 4-bit PQ (André et al., "Cache locality is not enough", VLDB'15;
  // FAISS IndexPQFastScan): codes in blocks of 32 vectors, m sub-quantisers (m even),
  // lut = m tables of 16 uint8. out[32*b + i] = sum_j lut[16j + code_j(vector i of block b)].
  void (*fastscan)(const uint8_t* codes, size_t nblocks, size_t m, const uint8_t* lut, uint16_t* out);
  // Same sums plus, per block, a 32-bit mask of the vectors whose sum is <= thr, so
  // the caller only visits survivors (most of a list once the top-k has filled).
  void (*fastscan_mask)(const uint8_t* codes, size_t nblocks, size_t m, const uint8_t* lut, uint16_t thr,
                        uint16_t* out, uint32_t* masks);
};

const Kernels& scalar_kernels();
// nullptr when the AVX2 translation unit was not compiled in.
const Kernels* avx2_kernels();
// AVX2+FMA+F16C when the CPU has them, else scalar. Chosen once.
const Kernels& active_kernels();
bool cpu_has_avx2();

}  // namespace winnow
