#include "kl_loss.h"

#include <algorithm>
#include <cmath>

#include "../utils/parallel.h"

namespace winnow::learn {

namespace {
// log-softmax of v (n entries) into out.
void log_softmax(const double* v, size_t n, double* out) {
  double mx = *std::max_element(v, v + n), s = 0;
  for (size_t i = 0; i < n; i++) s += std::exp(v[i] - mx);
  double lse = mx + std::log(s);
  for (size_t i = 0; i < n; i++) out[i] = v[i] - lse;
}
// Dot product with four independent partial sums (a fixed order, so results are
// deterministic) so the compiler can overlap the additions; a single running sum is one long
// dependency chain.
double dot4(const double* a, const float* q, size_t d) {
  double s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  size_t t = 0;
  for (; t + 4 <= d; t += 4) {
    s0 += a[t] * double(q[t]);
    s1 += a[t + 1] * double(q[t + 1]);
    s2 += a[t + 2] * double(q[t + 2]);
    s3 += a[t + 3] * double(q[t + 3]);
  }
  for (; t < d; t++) s0 += a[t] * double(q[t]);
  return (s0 + s1) + (s2 + s3);
}
}  // namespace

double kl_loss(const LossShape& sh, const double* A, const double* C, const Batch& b, double* gA, double* gC,
               size_t nthreads, double terms[2]) {
  const size_t d = sh.d, dr = sh.dr, m = sh.m, K = sh.K, B = b.B;
  const bool grad = gA && gC;
  nthreads = std::max<size_t>(1, nthreads);
  // z = Q A^T, tiled (rows of A x queries) so both tiles stay in L2 instead of streaming the
  // whole batch once per row; each dot product still sums over t in order.
  constexpr size_t RB = 16, QB = 16;
  std::vector<double> Z(B * dr), dZ(grad ? B * dr : 0);
  parallel_for((dr + RB - 1) / RB, nthreads, [&](size_t bb, size_t be, size_t) {
    for (size_t blk = bb; blk < be; blk++) {
      const size_t r0 = blk * RB, r1 = std::min(dr, r0 + RB);
      for (size_t i0 = 0; i0 < B; i0 += QB) {
        const size_t i1 = std::min(B, i0 + QB);
        for (size_t r = r0; r < r1; r++) {
          const double* a = A + r * d;
          for (size_t i = i0; i < i1; i++) {
            Z[i * dr + r] = dot4(a, b.Q + i * d, d);
          }
        }
      }
    }
  });
  // Per-query similarities, softmaxes and gradients w.r.t. z and the codebooks.
  std::vector<std::vector<double>> gCt(grad ? nthreads : 0, std::vector<double>(grad ? m * 32 : 0, 0.0));
  std::vector<double> lossq(B), t1q(B), t2q(B);
  const double inv_tau = 1.0 / sh.tau;
  parallel_for(B, nthreads, [&](size_t ib, size_t ie, size_t th) {
    std::vector<double> so(K), s1(K), s2(K), lp(K), l1(K), l2(K), R(K * dr);
    for (size_t i = ib; i < ie; i++) {
      const double* z = &Z[i * dr];
      for (size_t k = 0; k < K; k++) {
        const uint32_t u = b.nbr[i * K + k];
        const float* y = b.Y + size_t(u) * dr;
        const uint8_t* code = b.codes + size_t(u) * m;
        double* r = &R[k * dr];
        for (size_t j = 0; j < m; j++) {
          const double* c = C + j * 32 + 2 * code[j];
          r[2 * j] = c[0];
          r[2 * j + 1] = c[1];
        }
        double a = 0, c2 = 0;
        if (sh.ip) {
          for (size_t t = 0; t < dr; t++) a += z[t] * double(y[t]), c2 += z[t] * r[t];
        } else {
          for (size_t t = 0; t < dr; t++) {
            double e1 = z[t] - double(y[t]), e2 = z[t] - r[t];
            a -= e1 * e1;
            c2 -= e2 * e2;
          }
        }
        so[k] = double(b.orig[i * K + k]) * inv_tau;
        s1[k] = a * inv_tau;
        s2[k] = c2 * inv_tau;
      }
      log_softmax(so.data(), K, lp.data());
      log_softmax(s1.data(), K, l1.data());
      log_softmax(s2.data(), K, l2.data());
      double kl1 = 0, kl2 = 0;
      for (size_t k = 0; k < K; k++) {
        double p = std::exp(lp[k]);
        kl1 += p * (lp[k] - l1[k]);
        kl2 += p * (lp[k] - l2[k]);
      }
      t1q[i] = kl1;
      t2q[i] = kl2;
      lossq[i] = sh.w1 * kl1 + kl2;
      if (!grad) continue;
      // dKL/ds_k = (softmax(s)_k - p_k) / tau, per term; then the chain rule through s.
      double* dz = &dZ[i * dr];
      double* gc = gCt[th].data();
      const double w = 1.0 / double(B);
      for (size_t k = 0; k < K; k++) {
        double p = std::exp(lp[k]);
        double g1 = sh.w1 * (std::exp(l1[k]) - p) * inv_tau * w, g2 = (std::exp(l2[k]) - p) * inv_tau * w;
        const uint32_t u = b.nbr[i * K + k];
        const float* y = b.Y + size_t(u) * dr;
        const uint8_t* code = b.codes + size_t(u) * m;
        const double* r = &R[k * dr];
        if (sh.ip) {
          for (size_t t = 0; t < dr; t++) dz[t] += g1 * double(y[t]) + g2 * r[t];
          for (size_t j = 0; j < m; j++) {
            double* c = gc + j * 32 + 2 * code[j];
            c[0] += g2 * z[2 * j];
            c[1] += g2 * z[2 * j + 1];
          }
        } else {
          for (size_t t = 0; t < dr; t++) dz[t] += -2 * g1 * (z[t] - double(y[t])) - 2 * g2 * (z[t] - r[t]);
          for (size_t j = 0; j < m; j++) {
            double* c = gc + j * 32 + 2 * code[j];
            c[0] += 2 * g2 * (z[2 * j] - r[2 * j]);
            c[1] += 2 * g2 * (z[2 * j + 1] - r[2 * j + 1]);
          }
        }
      }
    }
  });
  double loss = 0, t1 = 0, t2 = 0;
  for (size_t i = 0; i < B; i++) loss += lossq[i], t1 += t1q[i], t2 += t2q[i];
  if (terms) {
    terms[0] = t1 / double(B);
    terms[1] = t2 / double(B);
  }
  if (!grad) return loss / double(B);
  // gA = dZ^T Q, tiled like the forward pass; each gA entry accumulates over queries in order.
  parallel_for((dr + RB - 1) / RB, nthreads, [&](size_t bb, size_t be, size_t) {
    for (size_t blk = bb; blk < be; blk++) {
      const size_t r0 = blk * RB, r1 = std::min(dr, r0 + RB);
      std::fill(gA + r0 * d, gA + r1 * d, 0.0);
      for (size_t i0 = 0; i0 < B; i0 += QB) {
        const size_t i1 = std::min(B, i0 + QB);
        for (size_t r = r0; r < r1; r++) {
          double* g = gA + r * d;
          for (size_t i = i0; i < i1; i++) {
            const double sc = dZ[i * dr + r];
            if (sc == 0) continue;
            const float* q = b.Q + i * d;
            for (size_t t = 0; t < d; t++) g[t] += sc * double(q[t]);
          }
        }
      }
    }
  });
  std::fill(gC, gC + m * 32, 0.0);
  for (auto& g : gCt)
    for (size_t t = 0; t < m * 32; t++) gC[t] += g[t];
  return loss / double(B);
}

}  // namespace winnow::learn
