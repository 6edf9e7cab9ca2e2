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
// low/high nibbles carry vectors i and i+16. The uint8 results are added as uint16
// words (each word = even byte + 256 * odd byte) and the odd bytes separately, so the
// even sums fall out at the end as total - 256 * odd (FAISS pq4 accumulation trick).
inline void scan_block(const uint8_t* blk, size_t npairs, const uint8_t* lut, __m256i& lo_out, __m256i& hi_out) {
  const __m256i mask4 = _mm256_set1_epi8(0x0f);
  __m256i lt = _mm256_setzero_si256(), lo = _mm256_setzero_si256();
  __m256i ht = _mm256_setzero_si256(), ho = _mm256_setzero_si256();
  for (size_t p = 0; p < npairs; p++) {
    __m256i c = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + p * 32));
    __m256i t = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(lut + p * 32));
    __m256i rl = _mm256_shuffle_epi8(t, _mm256_and_si256(c, mask4));
    __m256i rh = _mm256_shuffle_epi8(t, _mm256_and_si256(_mm256_srli_epi16(c, 4), mask4));
    lt = _mm256_add_epi16(lt, rl);
    lo = _mm256_add_epi16(lo, _mm256_srli_epi16(rl, 8));
    ht = _mm256_add_epi16(ht, rh);
    ho = _mm256_add_epi16(ho, _mm256_srli_epi16(rh, 8));
  }
  __m256i le = _mm256_sub_epi16(lt, _mm256_slli_epi16(lo, 8));
  __m256i he = _mm256_sub_epi16(ht, _mm256_slli_epi16(ho, 8));
  // Fold lane 1 (odd sub-quantiser of each pair) onto lane 0, re-interleave even/odd vectors.
  auto fold = [](__m256i v) { return _mm_add_epi16(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1)); };
  __m128i e = fold(le), o = fold(lo);
  lo_out = _mm256_set_m128i(_mm_unpackhi_epi16(e, o), _mm_unpacklo_epi16(e, o));  // vectors 0..15
  e = fold(he);
  o = fold(ho);
  hi_out = _mm256_set_m128i(_mm_unpackhi_epi16(e, o), _mm_unpacklo_epi16(e, o));  // vectors 16..31
}

void fastscan(const uint8_t* codes, size_t nblocks, size_t m, const uint8_t* lut, uint16_t* out) {
  const size_t npairs = m / 2;
  for (size_t b = 0; b < nblocks; b++) {
    __m256i a, c;
    scan_block(codes + b * npairs * 32, npairs, lut, a, c);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32 + 16), c);
  }
}

void fastscan_mask(const uint8_t* codes, size_t nblocks, size_t m, const uint8_t* lut, uint16_t thr, uint16_t* out,
                   uint32_t* masks) {
  const size_t npairs = m / 2;
  const __m256i t = _mm256_set1_epi16(short(thr));
  for (size_t b = 0; b < nblocks; b++) {
    __m256i a, c;
    scan_block(codes + b * npairs * 32, npairs, lut, a, c);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32), a);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + b * 32 + 16), c);
    // Unsigned a <= thr  <=>  min(a, thr) == a.
    __m256i la = _mm256_cmpeq_epi16(_mm256_min_epu16(a, t), a);
    __m256i lc = _mm256_cmpeq_epi16(_mm256_min_epu16(c, t), c);
    // Pack word masks to bytes (packs works per lane, so fix the lane order after).
    __m256i pk = _mm256_permute4x64_epi64(_mm256_packs_epi16(la, lc), 0xD8);
    masks[b] = uint32_t(_mm256_movemask_epi8(pk));
  }
}

}  // namespace

const Kernels* avx2_kernels() {
  static const Kernels k{"avx2", dot, l2sq, dot_f16, l2sq_f16, fastscan, fastscan_mask};
  return &k;
}

}  // namespace winnow
