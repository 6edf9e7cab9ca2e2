#include "params.h"

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <string>

#include "../utils/parallel.h"
#include "../utils/simd.h"

namespace winnow {

void Params::transform(const float* x, float* out, bool centre) const {
  const Kernels& K = active_kernels();
  if (centre) {
    std::vector<float> xc(d);
    for (size_t t = 0; t < d; t++) xc[t] = x[t] - T.mean[t];
    for (size_t i = 0; i < dr; i++) out[i] = K.dot(&T.A[i * d], xc.data(), d);
  } else {
    for (size_t i = 0; i < dr; i++) out[i] = K.dot(&T.A[i * d], x, d);
  }
}

void Params::check_compatible(const Params& o) const {
  if (d != o.d || dr != o.dr || m != o.m || nlist != o.nlist || T.mean.size() != d || T.A.size() != dr * d ||
      centroids.size() != nlist * dr || codebooks.size() != m * 32)
    throw std::invalid_argument("search params: shapes must match the insert params (dim " + std::to_string(o.d) +
                                ", reducedDim " + std::to_string(o.dr) + ", nlist " + std::to_string(o.nlist) + ")");
}

std::shared_ptr<Params> train_params(const float* x, size_t n, const TrainConfig& cfg, const Progress& progress) {
  auto P = std::make_shared<Params>();
  P->d = cfg.d;
  P->dr = cfg.dr;
  P->m = cfg.dr / 2;
  P->nlist = cfg.nlist;
  if (progress) progress("transform", 0, 1);
  // A few thousand rows pin down the covariance; more only costs time.
  size_t npca = std::min<size_t>(n, 20000);
  P->T = train_pca_rotation(x, npca, cfg.d, cfg.dr, cfg.seed, cfg.nthreads);
  if (progress) progress("transform", 1, 1);
  std::vector<float> xr(n * cfg.dr);
  parallel_for(n, cfg.nthreads, [&](size_t b, size_t e, size_t) {
    for (size_t i = b; i < e; i++) P->transform(x + i * cfg.d, &xr[i * cfg.dr], true);
  });
  // IVF centroids in the reduced space so probing costs nlist x dr, not nlist x d.
  // ~40 points per centroid is enough for Lloyd to settle (FAISS warns below 39).
  size_t ncoarse = std::min<size_t>(n, cfg.nlist * 40);
  P->centroids = kmeans(xr.data(), ncoarse, cfg.dr, cfg.nlist, 10, cfg.seed + 1, cfg.nthreads, progress, "ivf");
  // 4-bit PQ codebooks: 16 centroids per 2-d sub-space, on the reduced vectors
  // themselves (not IVF residuals) so one LUT per query serves every probed list.
  size_t npq = std::min<size_t>(n, 65536);
  P->codebooks.assign(P->m * 32, 0.f);
  std::vector<float> sub(npq * 2);
  for (size_t j = 0; j < P->m; j++) {
    if (progress) progress("pq", j, P->m);
    for (size_t i = 0; i < npq; i++) {
      sub[2 * i] = xr[i * cfg.dr + 2 * j];
      sub[2 * i + 1] = xr[i * cfg.dr + 2 * j + 1];
    }
    if (npq >= 16) {
      auto cb = kmeans(sub.data(), npq, 2, 16, 12, cfg.seed + 100 + j, 1);
      std::copy(cb.begin(), cb.end(), P->codebooks.begin() + j * 32);
    } else {
      for (size_t c = 0; c < 16; c++) {
        P->codebooks[j * 32 + 2 * c] = sub[2 * (c % npq)];
        P->codebooks[j * 32 + 2 * c + 1] = sub[2 * (c % npq) + 1];
      }
    }
  }
  if (progress) progress("pq", P->m, P->m);
  return P;
}

void encode_reduced(const Params& p, const float* xr, size_t n, uint32_t* list_out, uint8_t* codes_out,
                    size_t nthreads) {
  assign_nearest(xr, n, p.centroids.data(), p.nlist, p.dr, list_out, nthreads);
  parallel_for(n, nthreads, [&](size_t b, size_t e, size_t) {
    for (size_t i = b; i < e; i++) {
      const float* v = xr + i * p.dr;
      for (size_t j = 0; j < p.m; j++) {
        const float* cb = &p.codebooks[j * 32];
        float best = std::numeric_limits<float>::infinity();
        uint8_t bc = 0;
        for (int c = 0; c < 16; c++) {
          float a = v[2 * j] - cb[2 * c], b2 = v[2 * j + 1] - cb[2 * c + 1];
          float dd = a * a + b2 * b2;
          if (dd < best) {
            best = dd;
            bc = uint8_t(c);
          }
        }
        codes_out[i * p.m + j] = bc;
      }
    }
  });
}

}  // namespace winnow
