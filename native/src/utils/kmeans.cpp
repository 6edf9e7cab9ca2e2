#include "kmeans.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>

#include "parallel.h"
#include "rng.h"
#include "simd.h"

namespace winnow {

// ||x-c||^2 = ||x||^2 + ||c||^2 - 2<x,c>; ||x||^2 is constant per row so only
// ||c||^2 - 2<x,c> is compared, halving the arithmetic of a direct L2 scan.
void assign_nearest(const float* x, size_t n, const float* c, size_t k, size_t d, uint32_t* out, size_t nthreads) {
  const Kernels& K = active_kernels();
  std::vector<float> cn(k);
  for (size_t j = 0; j < k; j++) cn[j] = K.dot(c + j * d, c + j * d, d);
  parallel_for(n, nthreads, [&](size_t b, size_t e, size_t) {
    for (size_t i = b; i < e; i++) {
      const float* xi = x + i * d;
      float best = std::numeric_limits<float>::infinity();
      uint32_t bj = 0;
      for (size_t j = 0; j < k; j++) {
        float v = cn[j] - 2.f * K.dot(xi, c + j * d, d);
        if (v < best) {
          best = v;
          bj = uint32_t(j);
        }
      }
      out[i] = bj;
    }
  });
}

std::vector<float> kmeans(const float* x, size_t n, size_t d, size_t k, size_t iters, uint64_t seed, size_t nthreads,
                          const Progress& progress, const char* phase) {
  if (n < k) throw std::invalid_argument("k-means needs at least as many points as centroids");
  Rng rng(seed);
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; i++) perm[i] = i;
  for (size_t i = 0; i < k; i++) std::swap(perm[i], perm[i + rng.below(n - i)]);
  std::vector<float> c(k * d);
  for (size_t j = 0; j < k; j++) std::memcpy(&c[j * d], x + perm[j] * d, d * sizeof(float));
  std::vector<uint32_t> assign(n);
  std::vector<double> sums(k * d);
  std::vector<size_t> counts(k);
  for (size_t it = 0; it < iters; it++) {
    if (progress) progress(phase, it, iters);
    assign_nearest(x, n, c.data(), k, d, assign.data(), nthreads);
    std::fill(sums.begin(), sums.end(), 0.0);
    std::fill(counts.begin(), counts.end(), 0);
    for (size_t i = 0; i < n; i++) {
      size_t a = assign[i];
      counts[a]++;
      const float* xi = x + i * d;
      double* s = &sums[a * d];
      for (size_t t = 0; t < d; t++) s[t] += xi[t];
    }
    for (size_t j = 0; j < k; j++)
      if (counts[j])
        for (size_t t = 0; t < d; t++) c[j * d + t] = float(sums[j * d + t] / double(counts[j]));
    // Empty cluster: take half of the biggest one by copying its centroid with a
    // tiny symmetric perturbation (FAISS split_clusters).
    for (size_t j = 0; j < k; j++) {
      if (counts[j]) continue;
      size_t big = size_t(std::max_element(counts.begin(), counts.end()) - counts.begin());
      for (size_t t = 0; t < d; t++) {
        float v = c[big * d + t];
        float eps = 1e-4f * (std::abs(v) + 1e-6f);
        c[j * d + t] = v + ((t & 1) ? eps : -eps);
        c[big * d + t] = v - ((t & 1) ? eps : -eps);
      }
      counts[j] = counts[big] / 2;
      counts[big] -= counts[j];
    }
  }
  if (progress) progress(phase, iters, iters);
  return c;
}

}  // namespace winnow
