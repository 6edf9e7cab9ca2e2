// Scalar reference kernels. They emulate the AVX2 lane structure on purpose:
// two 8-lane accumulators over 16-element chunks, fmaf for each step, the same
// horizontal reduction, then a sequential tail — giving bit-identical results.
#include <cmath>

#include "float16.h"
#include "simd.h"

namespace winnow {
namespace {

inline float hsum8(const float* l) {
  // Mirrors: lo128+hi128, then movehl add, then lane0+lane1.
  float v0 = l[0] + l[4], v1 = l[1] + l[5], v2 = l[2] + l[6], v3 = l[3] + l[7];
  float w0 = v0 + v2, w1 = v1 + v3;
  return w0 + w1;
}

template <bool L2, typename Load>
inline float reduce(const float* a, Load load, size_t d) {
  float acc0[8] = {0}, acc1[8] = {0};
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    for (int l = 0; l < 8; l++) {
      float x = a[i + l], y = load(i + l);
      if (L2) { float t = x - y; acc0[l] = std::fmaf(t, t, acc0[l]); } else acc0[l] = std::fmaf(x, y, acc0[l]);
      x = a[i + 8 + l]; y = load(i + 8 + l);
      if (L2) { float t = x - y; acc1[l] = std::fmaf(t, t, acc1[l]); } else acc1[l] = std::fmaf(x, y, acc1[l]);
    }
  }
  if (i + 8 <= d) {
    for (int l = 0; l < 8; l++) {
      float x = a[i + l], y = load(i + l);
      if (L2) { float t = x - y; acc0[l] = std::fmaf(t, t, acc0[l]); } else acc0[l] = std::fmaf(x, y, acc0[l]);
    }
    i += 8;
  }
  float s8[8];
  for (int l = 0; l < 8; l++) s8[l] = acc0[l] + acc1[l];
  float s = hsum8(s8);
  for (; i < d; i++) {
    float x = a[i], y = load(i);
    if (L2) { float t = x - y; s = std::fmaf(t, t, s); } else s = std::fmaf(x, y, s);
  }
  return s;
}

float dot(const float* a, const float* b, size_t d) {
  return reduce<false>(a, [b](size_t i) { return b[i]; }, d);
}
float l2sq(const float* a, const float* b, size_t d) {
  return reduce<true>(a, [b](size_t i) { return b[i]; }, d);
}
float dot_f16(const float* a, const uint16_t* b, size_t d) {
  return reduce<false>(a, [b](size_t i) { return half_to_float(b[i]); }, d);
}
float l2sq_f16(const float* a, const uint16_t* b, size_t d) {
  return reduce<true>(a, [b](size_t i) { return half_to_float(b[i]); }, d);
}

// Reads the blocked layout described in invlists/fastscan_layout.h.
void fastscan(const uint8_t* codes, size_t nblocks, size_t m, const uint8_t* lut, uint16_t* out) {
  const size_t npairs = m / 2;
  for (size_t b = 0; b < nblocks; b++) {
    uint16_t acc[32] = {0};
    const uint8_t* blk = codes + b * npairs * 32;
    for (size_t p = 0; p < npairs; p++) {
      const uint8_t* c = blk + p * 32;
      const uint8_t* t0 = lut + 32 * p;
      const uint8_t* t1 = t0 + 16;
      for (int i = 0; i < 16; i++) {
        acc[i] = uint16_t(acc[i] + t0[c[i] & 15] + t1[c[16 + i] & 15]);
        acc[16 + i] = uint16_t(acc[16 + i] + t0[c[i] >> 4] + t1[c[16 + i] >> 4]);
      }
    }
    for (int i = 0; i < 32; i++) out[b * 32 + i] = acc[i];
  }
}

void fastscan_mask(const uint8_t* codes, size_t nblocks, size_t m, const uint8_t* lut, uint16_t thr, uint16_t* out,
                   uint32_t* masks) {
  fastscan(codes, nblocks, m, lut, out);
  for (size_t b = 0; b < nblocks; b++) {
    uint32_t mask = 0;
    for (int i = 0; i < 32; i++)
      if (out[b * 32 + i] <= thr) mask |= uint32_t(1) << i;
    masks[b] = mask;
  }
}

}  // namespace

const Kernels& scalar_kernels() {
  static const Kernels k{"scalar", dot, l2sq, dot_f16, l2sq_f16, fastscan, fastscan_mask};
  return k;
}

}  // namespace winnow
