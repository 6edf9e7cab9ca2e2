#include "probe.h"

#include <algorithm>
#include <cmath>

#include "../utils/parallel.h"
#include "../utils/rng.h"
#include "adamw.h"

namespace winnow::learn {

double probe_loss_raw(const LossShape& sh, const double* A, const double* C, size_t nlist, const float* Q, size_t B,
                      const float* orig, const uint32_t* lists, double* g, size_t nthreads) {
  const size_t d = sh.d, dr = sh.dr, K = sh.K;
  const double inv_tau = 1.0 / sh.tau;
  nthreads = std::max<size_t>(1, nthreads);
  std::vector<std::vector<double>> gt(g ? nthreads : 0, std::vector<double>(g ? nlist * dr : 0, 0.0));
  std::vector<double> lq(B);
  parallel_for(B, nthreads, [&](size_t ib, size_t ie, size_t th) {
    std::vector<double> z(dr), u(nlist), t(nlist), p(K);
    for (size_t i = ib; i < ie; i++) {
      const float* q = Q + i * d;
      for (size_t r = 0; r < dr; r++) {
        double s = 0;
        for (size_t c = 0; c < d; c++) s += A[r * d + c] * double(q[c]);
        z[r] = s;
      }
      // Target: the neighbours' softmax weights summed per list they are stored in.
      double mx = -1e300;
      for (size_t k = 0; k < K; k++) mx = std::max(mx, double(orig[i * K + k]) * inv_tau);
      double sum = 0;
      for (size_t k = 0; k < K; k++) sum += (p[k] = std::exp(double(orig[i * K + k]) * inv_tau - mx));
      std::fill(t.begin(), t.end(), 0.0);
      for (size_t k = 0; k < K; k++) t[lists[i * K + k]] += p[k] / sum;
      double umx = -1e300;
      for (size_t l = 0; l < nlist; l++) {
        const double* c = C + l * dr;
        double s = 0;
        if (sh.ip) {
          for (size_t r = 0; r < dr; r++) s += z[r] * c[r];
        } else {
          for (size_t r = 0; r < dr; r++) s -= (z[r] - c[r]) * (z[r] - c[r]);
        }
        u[l] = s * inv_tau;
        umx = std::max(umx, u[l]);
      }
      double us = 0;
      for (size_t l = 0; l < nlist; l++) us += std::exp(u[l] - umx);
      const double lse = umx + std::log(us);
      double loss = 0;
      for (size_t l = 0; l < nlist; l++)
        if (t[l] > 0) loss -= t[l] * (u[l] - lse);
      lq[i] = loss;
      if (!g) continue;
      double* gg = gt[th].data();
      for (size_t l = 0; l < nlist; l++) {
        const double du = (std::exp(u[l] - lse) - t[l]) * inv_tau / double(B);
        if (du == 0) continue;
        const double* c = C + l * dr;
        for (size_t r = 0; r < dr; r++) gg[l * dr + r] += sh.ip ? du * z[r] : du * 2 * (z[r] - c[r]);
      }
    }
  });
  if (g) {
    std::fill(g, g + nlist * dr, 0.0);
    for (auto& x : gt)
      for (size_t j = 0; j < nlist * dr; j++) g[j] += x[j];
  }
  double s = 0;
  for (double v : lq) s += v;
  return s / double(B);
}

namespace {
// Mean loss over queries which[0..B) of the samples (and gradient when g).
double probe_loss(const Samples& S, const size_t* which, size_t B, const double* A, size_t nlist, const double* C,
                  double* g, size_t nthreads) {
  const size_t K = S.shape.K;
  std::vector<float> Q(B * S.shape.d), O(B * K);
  std::vector<uint32_t> L(B * K);
  S.load_queries(which, B, Q.data());
  for (size_t i = 0; i < B; i++)
    for (size_t k = 0; k < K; k++) {
      O[i * K + k] = S.orig[which[i] * K + k];
      L[i * K + k] = S.row_list[S.nbr[which[i] * K + k]];
    }
  return probe_loss_raw(S.shape, A, C, nlist, Q.data(), B, O.data(), L.data(), g, nthreads);
}

double mean_loss(const Samples& S, const std::vector<size_t>& which, const double* A, size_t nlist, const double* C,
                 size_t batch, size_t nthreads) {
  double s = 0;
  for (size_t b = 0; b < which.size(); b += batch) {
    const size_t B = std::min(batch, which.size() - b);
    s += probe_loss(S, &which[b], B, A, nlist, C, nullptr, nthreads) * double(B);
  }
  return s / double(which.size());
}
}  // namespace

std::pair<double, double> learn_probe(const Samples& S, const std::vector<size_t>& train, const std::vector<size_t>& val,
                                      const double* A, size_t nlist, std::vector<double>& C, const ProbeConfig& cfg) {
  const size_t nth = std::max<size_t>(1, cfg.nthreads);
  const double before = mean_loss(S, val, A, nlist, C.data(), cfg.batch, nth);
  AdamW opt(C.size(), 0.9, 0.999, 1e-8, cfg.weight_decay);
  std::vector<double> g(C.size());
  std::vector<size_t> tr = train;
  Rng rng(cfg.seed + 991);
  const size_t steps = cfg.epochs * ((tr.size() + cfg.batch - 1) / cfg.batch);
  const size_t warm = size_t(std::llround(cfg.warmup_fraction * double(steps)));
  size_t step = 0;
  for (size_t ep = 0; ep < cfg.epochs; ep++) {
    for (size_t i = tr.size() - 1; i > 0; i--) std::swap(tr[i], tr[rng.below(i + 1)]);
    for (size_t b = 0; b < tr.size(); b += cfg.batch, step++) {
      const size_t B = std::min(cfg.batch, tr.size() - b);
      probe_loss(S, &tr[b], B, A, nlist, C.data(), g.data(), nth);
      opt.step(C.data(), g.data(), warmup_lr(cfg.lr, step, warm));
    }
  }
  return {before, mean_loss(S, val, A, nlist, C.data(), cfg.batch, nth)};
}

}  // namespace winnow::learn
