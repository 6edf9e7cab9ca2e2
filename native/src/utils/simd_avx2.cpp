// AVX2/FMA/F16C kernels. This is the only translation unit built with
// -mavx2 -mfma -mf16c; it is entered only after a run-time CPU check.
#include <immintrin.h>

#include "simd.h"

namespace winnow {
namespace {

inline float hsum8(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 1));
  return _mm_cvtss_f32(s);
}

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const uint16_t* p) { return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p))); }

template <bool L2, typename T>
inline __m256 step(__m256 acc, const float* a, const T* b) {
  __m256 x = _mm256_loadu_ps(a), y = load8(b);
  if (L2) {
    __m256 t = _mm256_sub_ps(x, y);
    return _mm256_fmadd_ps(t, t, acc);
  }
  return _mm256_fmadd_ps(x, y, acc);
}

inline float to_f(float v) { return v; }
inline float to_f(uint16_t h) { return _cvtsh_ss(h); }

// Two accumulators hide FMA latency; order is mirrored by simd_scalar.cpp.
template <bool L2, typename T>
float reduce(const float* a, const T* b, size_t d) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 16 <= d; i += 16) {
    acc0 = step<L2>(acc0, a + i, b + i);
    acc1 = step<L2>(acc1, a + i + 8, b + i + 8);
  }
  if (i + 8 <= d) {
    acc0 = step<L2>(acc0, a + i, b + i);
    i += 8;
  }
  float s = hsum8(_mm256_add_ps(acc0, acc1));
  for (; i < d; i++) {
    float x = a[i], y = to_f(b[i]);
    if (L2) {
      float t = x - y;
      s = __builtin_fmaf(t, t, s);
    } else {
      s = __builtin_fmaf(x, y, s);
    }
  }
  return s;
}

float dot(const float* a, const float* b, size_t d) { return reduce<false>(a, b, d); }
float l2sq(const float* a, const float* b, size_t d) { return reduce<true>(a, b, d); }
float dot_f16(const float* a, const uint16_t* b, size_t d) { return reduce<false>(a, b, d); }
float l2sq_f16(const float* a, const uint16_t* b, size_t d) { return reduce<true>(a, b, d); }

// One vpshufb performs 32 table look-ups: lane 0 holds table 2p, lane 1 table 2p+1;
// low/high nibbles carry vectors i and i+16. uint8 results are widened to uint16 by
// splitting even/odd bytes (FAISS's accumulation trick), so no cross-lane work in the loop.
void fastscan(const uint8_t* codes, size_t nblocks, size_t m, const uint8_t* lut, uint16_t* out) {
  const size_t npairs = m / 2;
  const __m256i mask4 = _mm256_set1_epi8(0x0f);
  const __m256i mask_lo16 = _mm256_set1_epi16(0x00ff);
  for (size_t b = 0; b < nblocks; b++) {
    __m256i le = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
    __m256i he = _mm256_setzero_si256(), ho = _mm256_setzero_si256();
    const uint8_t* blk = codes + b * npairs * 32;
    for (size_t p = 0; p < npairs; p++) {
      __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + p * 32));
      __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + p * 32));
      __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, mask4));
      __m256i rh = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask4));
      le = _mm256_add_epi16(le, _mm256_and_si256(rl, mask_lo16));
      lo = _mm256_add_epi16(lo, _mm256_srli_epi16(rl, 8));
      he = _mm256_add_epi16(he, _mm256_and_si256(rh, mask_lo16));
      ho = _mm256_add_epi16(ho, _mm256_srli_epi16(rh, 8));
    }
    // Fold lane 1 (odd sub-quantiser of each pair) onto lane 0, then re-interleave even/odd vectors.
    auto fold = [](__m256i v) {
      return _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    };
    __m128i e = fold(le), o = fold(lo);
    __m128i* dst = reinterpret_cast<__m128i*>(out + b * 32);
    _mm_storeu_si128(dst + 0, _mm_unpacklo_epi16(e, o));
    _mm_storeu_si128(dst + 1, _mm_unpackhi_epi16(e, o));
    e = fold(he);
    o = fold(ho);
    _mm_storeu_si128(dst + 2, _mm_unpacklo_epi16(e, o));
    _mm_storeu_si128(dst + 3, _mm_unpackhi_epi16(e, o));
  }
}

}  // namespace

const Kernels* avx2_kernels() {
  static const Kernels k{"avx2", dot, l2sq, dot_f16, l2sq_f16, fastscan};
  return &k;
}

}  // namespace winnow
