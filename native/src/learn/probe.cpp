#include "probe.h"

#include <algorithm>
#include <cmath>

#include "../index/params.h"
#include "../utils/parallel.h"
#include "../utils/rng.h"
#include "adamw.h"

namespace winnow::learn {

namespace {
// One query's loss and (when gg) gradient contribution (scaled by w) for z (dr), with the
// neighbours' original similarities o (K) and lists ls (K).
double probe_one(const LossShape& sh, const ProbeConfig& cfg, const double* C, size_t nlist, const double* z,
                 const float* o, const uint32_t* ls, double w, double* gg, std::vector<double>& u,
                 std::vector<double>& t, std::vector<double>& p) {
  const size_t dr = sh.dr, K = sh.K;
  const double inv_tau = 1.0 / cfg.tau;
  std::fill(t.begin(), t.end(), 0.0);
  if (cfg.target_k) {
    const size_t tk = std::min(cfg.target_k, K);
    for (size_t k = 0; k < tk; k++) t[ls[k]] += 1.0 / double(tk);
  } else {
    // The neighbours' softmax weights (at the main loss's temperature sh.tau) summed per list.
    const double it = 1.0 / sh.tau;
    double mx = -1e300;
    for (size_t k = 0; k < K; k++) mx = std::max(mx, double(o[k]) * it);
    double sum = 0;
    for (size_t k = 0; k < K; k++) sum += (p[k] = std::exp(double(o[k]) * it - mx));
    for (size_t k = 0; k < K; k++) t[ls[k]] += p[k] / sum;
  }
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
  if (cfg.cutoff) {
    // Coverage surrogate: every target list must outscore c, the (cutoff - |T|)-th best non-target
    // list; then it is among the first `cutoff` lists. softplus((u_c - u_t)) per target, weighted.
    size_t nt = 0;
    for (size_t l = 0; l < nlist; l++) nt += t[l] > 0;
    const size_t need = cfg.cutoff > nt ? cfg.cutoff - nt : 1;
    std::vector<std::pair<double, size_t>> nont;
    nont.reserve(nlist);
    for (size_t l = 0; l < nlist; l++)
      if (t[l] == 0) nont.push_back({-u[l], l});
    if (nont.empty()) return 0;
    const size_t r = std::min(need, nont.size()) - 1;
    std::nth_element(nont.begin(), nont.begin() + r, nont.end());
    const size_t c = nont[r].second;
    double loss = 0, dc = 0;
    for (size_t l = 0; l < nlist; l++) {
      if (t[l] == 0) continue;
      const double x = u[c] - u[l];
      loss += t[l] * (x > 30 ? x : std::log1p(std::exp(x)));
      const double sg = 1.0 / (1.0 + std::exp(-x));
      if (gg) {
        const double du = -t[l] * sg * inv_tau * w;
        const double* cl = C + l * dr;
        for (size_t q = 0; q < dr; q++) gg[l * dr + q] += sh.ip ? du * z[q] : du * 2 * (z[q] - cl[q]);
      }
      dc += t[l] * sg;
    }
    if (gg) {
      const double du = dc * inv_tau * w;
      const double* cc = C + c * dr;
      for (size_t q = 0; q < dr; q++) gg[c * dr + q] += sh.ip ? du * z[q] : du * 2 * (z[q] - cc[q]);
    }
    return loss;
  }
  double us = 0;
  for (size_t l = 0; l < nlist; l++) us += std::exp(u[l] - umx);
  const double lse = umx + std::log(us);
  double loss = 0;
  for (size_t l = 0; l < nlist; l++)
    if (t[l] > 0) loss -= t[l] * (u[l] - lse);
  if (gg) {
    for (size_t l = 0; l < nlist; l++) {
      const double du = (std::exp(u[l] - lse) - t[l]) * inv_tau * w;
      if (du == 0) continue;
      const double* c = C + l * dr;
      for (size_t r = 0; r < dr; r++) gg[l * dr + r] += sh.ip ? du * z[r] : du * 2 * (z[r] - c[r]);
    }
  }
  return loss;
}

double run_batch(const LossShape& sh, const ProbeConfig& cfg, const double* C, size_t nlist, size_t B,
                 const std::function<void(size_t i, double* z, const float** o, const uint32_t** ls)>& get, double* g) {
  const size_t dr = sh.dr, nth = std::max<size_t>(1, cfg.nthreads);
  const size_t np = nlist * dr;
  std::vector<std::vector<double>> gt(g ? nth : 0, std::vector<double>(g ? np : 0, 0.0));
  std::vector<double> lq(B);
  parallel_for(B, nth, [&](size_t ib, size_t ie, size_t th) {
    std::vector<double> z(dr), u(nlist), t(nlist), p(sh.K);
    for (size_t i = ib; i < ie; i++) {
      const float* o;
      const uint32_t* ls;
      get(i, z.data(), &o, &ls);
      lq[i] = probe_one(sh, cfg, C, nlist, z.data(), o, ls, 1.0 / double(B), g ? gt[th].data() : nullptr, u, t, p);
    }
  });
  if (g) {
    std::fill(g, g + np, 0.0);
    for (auto& x : gt)
      for (size_t j = 0; j < np; j++) g[j] += x[j];
  }
  double s = 0;
  for (double v : lq) s += v;
  return s / double(B);
}
}  // namespace

double probe_loss_raw(const LossShape& sh, const double* A, const double* C, size_t nlist, const float* Q, size_t B,
                      const float* orig, const uint32_t* lists, double* g, size_t nthreads, size_t cutoff,
                      size_t target_k) {
  const size_t d = sh.d, dr = sh.dr, K = sh.K;
  ProbeConfig cfg;
  cfg.tau = sh.tau;
  cfg.target_k = target_k;
  cfg.cutoff = cutoff;
  cfg.nthreads = nthreads;
  return run_batch(sh, cfg, C, nlist, B,
                   [&](size_t i, double* z, const float** o, const uint32_t** ls) {
                     const float* q = Q + i * d;
                     for (size_t r = 0; r < dr; r++) {
                       double s = 0;
                       for (size_t c = 0; c < d; c++) s += A[r * d + c] * double(q[c]);
                       z[r] = s;
                     }
                     *o = orig + i * K;
                     *ls = lists + i * K;
                   },
                   g);
}

double probe_loss_z(const LossShape& sh, const ProbeConfig& cfg, const double* C, size_t nlist, const double* Z,
                    size_t B, const float* orig, const uint32_t* lists, double* g) {
  const size_t dr = sh.dr, K = sh.K;
  return run_batch(sh, cfg, C, nlist, B,
                   [&](size_t i, double* z, const float** o, const uint32_t** ls) {
                     std::copy(Z + i * dr, Z + (i + 1) * dr, z);
                     *o = orig + i * K;
                     *ls = lists + i * K;
                   },
                   g);
}

std::vector<float> transform_queries(const Samples& S, const Params& P, size_t nthreads) {
  const size_t n = S.qid.size(), d = S.shape.d, dr = S.shape.dr;
  std::vector<float> Z(n * dr);
  parallel_for(n, std::max<size_t>(1, nthreads), [&](size_t b, size_t e, size_t) {
    std::vector<float> x(d);
    for (size_t i = b; i < e; i++) {
      S.store->vs->read_float(S.qid[i], x.data());
      P.transform(x.data(), &Z[i * dr], S.centre);
    }
  });
  return Z;
}

double probe_coverage(const Samples& S, const std::vector<float>& Z, const std::vector<size_t>& which,
                      const float* C, size_t nlist, size_t nprobe, size_t top, bool ip, size_t nthreads) {
  const size_t dr = S.shape.dr, K = S.shape.K, tk = std::min(top, K);
  if (nprobe >= nlist) return 1.0;
  std::vector<size_t> hits(which.size());
  parallel_for(which.size(), std::max<size_t>(1, nthreads), [&](size_t b, size_t e, size_t) {
    std::vector<float> dist(nlist), tmp(nlist);
    for (size_t w = b; w < e; w++) {
      const size_t i = which[w];
      const float* z = &Z[i * dr];
      for (size_t l = 0; l < nlist; l++) {
        const float* c = C + l * dr;
        double s = 0;
        if (ip) {
          for (size_t r = 0; r < dr; r++) s -= double(z[r]) * c[r];
        } else {
          for (size_t r = 0; r < dr; r++) s += (double(z[r]) - c[r]) * (double(z[r]) - c[r]);
        }
        dist[l] = float(s);
      }
      tmp = dist;
      std::nth_element(tmp.begin(), tmp.begin() + (nprobe - 1), tmp.end());
      const float cut = tmp[nprobe - 1];
      size_t h = 0;
      for (size_t k = 0; k < tk; k++) h += dist[S.row_list[S.nbr[i * K + k]]] <= cut;
      hits[w] = h;
    }
  });
  size_t h = 0;
  for (size_t v : hits) h += v;
  return double(h) / double(which.size() * tk);
}

namespace {
double probe_loss_samples(const Samples& S, const std::vector<float>& Z, const size_t* which, size_t B,
                          size_t nlist, const double* C, double* g, const ProbeConfig& cfg) {
  const size_t K = S.shape.K, dr = S.shape.dr;
  std::vector<double> Zb(B * dr);
  std::vector<float> O(B * K);
  std::vector<uint32_t> L(B * K);
  for (size_t i = 0; i < B; i++) {
    for (size_t r = 0; r < dr; r++) Zb[i * dr + r] = Z[which[i] * dr + r];
    for (size_t k = 0; k < K; k++) {
      O[i * K + k] = S.orig[which[i] * K + k];
      L[i * K + k] = S.row_list[S.nbr[which[i] * K + k]];
    }
  }
  return probe_loss_z(S.shape, cfg, C, nlist, Zb.data(), B, O.data(), L.data(), g);
}

double mean_loss(const Samples& S, const std::vector<float>& Z, const std::vector<size_t>& which, size_t nlist,
                 const double* C, const ProbeConfig& cfg) {
  double s = 0;
  for (size_t b = 0; b < which.size(); b += cfg.batch) {
    const size_t B = std::min(cfg.batch, which.size() - b);
    s += probe_loss_samples(S, Z, &which[b], B, nlist, C, nullptr, cfg) * double(B);
  }
  return s / double(which.size());
}
}  // namespace

std::pair<double, double> learn_probe(const Samples& S, const std::vector<float>& Z, const std::vector<size_t>& train,
                                      const std::vector<size_t>& val, size_t nlist, std::vector<double>& C,
                                      const ProbeConfig& cfg) {
  const double before = mean_loss(S, Z, val, nlist, C.data(), cfg);
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
      probe_loss_samples(S, Z, &tr[b], B, nlist, C.data(), g.data(), cfg);
      const double lr_t = warmup_lr(cfg.lr, step, warm);
      opt.step(C.data(), g.data(), lr_t * cfg.lr_scale, lr_t);
    }
  }
  return {before, mean_loss(S, Z, val, nlist, C.data(), cfg)};
}

}  // namespace winnow::learn
