#include "pca.h"

#include <algorithm>
#include <cmath>

#include "parallel.h"
#include "rng.h"
#include "simd.h"

namespace winnow {
namespace {

// Modified Gram–Schmidt on the rows of Q (r x d); degenerate rows are replaced by
// random directions so the result always has full row rank.
void orthonormalise(std::vector<float>& Q, size_t r, size_t d, Rng& rng) {
  for (size_t i = 0; i < r; i++) {
    float* qi = &Q[i * d];
    for (int pass = 0; pass < 2; pass++) {
      for (size_t j = 0; j < i; j++) {
        const float* qj = &Q[j * d];
        double p = 0;
        for (size_t t = 0; t < d; t++) p += double(qi[t]) * qj[t];
        for (size_t t = 0; t < d; t++) qi[t] -= float(p) * qj[t];
      }
    }
    double nn = 0;
    for (size_t t = 0; t < d; t++) nn += double(qi[t]) * qi[t];
    if (nn < 1e-20) {
      for (size_t t = 0; t < d; t++) qi[t] = float(rng.gaussian());
      i--;  // redo this row
      continue;
    }
    float inv = float(1.0 / std::sqrt(nn));
    for (size_t t = 0; t < d; t++) qi[t] *= inv;
  }
}

}  // namespace

// Top-r subspace by block power (subspace) iteration on the covariance: we only
// need the span, not individual eigenvectors, because a random rotation follows.
LinearTransform train_pca_rotation(const float* x, size_t n, size_t d, size_t r, uint64_t seed, size_t nthreads) {
  const Kernels& K = active_kernels();
  Rng rng(seed * 7919 + 17);
  LinearTransform T;
  T.d_in = d;
  T.d_out = r;
  T.mean.assign(d, 0.f);
  std::vector<double> m(d, 0.0);
  for (size_t i = 0; i < n; i++)
    for (size_t t = 0; t < d; t++) m[t] += x[i * d + t];
  for (size_t t = 0; t < d; t++) T.mean[t] = float(m[t] / double(std::max<size_t>(n, 1)));

  const size_t p = std::min(r, d);  // principal directions available
  std::vector<float> basis(p * d);
  if (p == d) {
    for (size_t i = 0; i < d; i++) basis[i * d + i] = 1.f;  // full rank: PCA is only a rotation
  } else {
    // Covariance via column dot products of the centred, transposed sample.
    std::vector<float> xt(d * n);
    for (size_t i = 0; i < n; i++)
      for (size_t t = 0; t < d; t++) xt[t * n + i] = x[i * d + t] - T.mean[t];
    std::vector<float> C(d * d);
    parallel_for(d, nthreads, [&](size_t b, size_t e, size_t) {
      for (size_t i = b; i < e; i++)
        for (size_t j = 0; j <= i; j++) C[i * d + j] = K.dot(&xt[i * n], &xt[j * n], n) / float(n);
    });
    for (size_t i = 0; i < d; i++)
      for (size_t j = i + 1; j < d; j++) C[i * d + j] = C[j * d + i];
    xt.clear();
    xt.shrink_to_fit();
    for (auto& v : basis) v = float(rng.gaussian());
    orthonormalise(basis, p, d, rng);
    std::vector<float> Z(p * d);
    for (int it = 0; it < 25; it++) {
      parallel_for(p, nthreads, [&](size_t b, size_t e, size_t) {
        for (size_t i = b; i < e; i++)
          for (size_t t = 0; t < d; t++) Z[i * d + t] = K.dot(&C[t * d], &basis[i * d], d);
      });
      basis.swap(Z);
      orthonormalise(basis, p, d, rng);
    }
  }
  // Random orthogonal r x r rotation (QR of a Gaussian matrix, via Gram–Schmidt).
  std::vector<float> R(r * r);
  for (auto& v : R) v = float(rng.gaussian());
  orthonormalise(R, r, r, rng);
  T.A.assign(r * d, 0.f);
  for (size_t i = 0; i < r; i++)
    for (size_t j = 0; j < p; j++) {
      float w = R[i * r + j];
      for (size_t t = 0; t < d; t++) T.A[i * d + t] += w * basis[j * d + t];
    }
  return T;
}

}  // namespace winnow
