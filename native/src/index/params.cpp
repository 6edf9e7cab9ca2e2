#include "params.h"

#include <algorithm>
#include <atomic>
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

namespace {
// 16-centroid k-means on 2-d points, specialised because it runs m times per build
// and the generic path's per-call overheads dominate at d = 2.
void kmeans16_2d(const float* x, size_t n, uint64_t seed, float* out) {
  float c[32];
  if (n < 16) {
    for (size_t k = 0; k < 16; k++) {
      c[2 * k] = n ? x[2 * (k % n)] : 0.f;
      c[2 * k + 1] = n ? x[2 * (k % n) + 1] : 0.f;
    }
    std::copy(c, c + 32, out);
    return;
  }
  uint64_t st = seed * 0x9E3779B97F4A7C15ull + 1;
  for (size_t k = 0; k < 16; k++) {
    st ^= st << 13; st ^= st >> 7; st ^= st << 17;
    size_t i = size_t(st % n);
    c[2 * k] = x[2 * i];
    c[2 * k + 1] = x[2 * i + 1];
  }
  for (int it = 0; it < 10; it++) {
    double sx[16] = {0}, sy[16] = {0};
    size_t cnt[16] = {0};
    for (size_t i = 0; i < n; i++) {
      float a = x[2 * i], b = x[2 * i + 1];
      float best = std::numeric_limits<float>::infinity();
      int bk = 0;
      for (int k = 0; k < 16; k++) {
        float da = a - c[2 * k], db = b - c[2 * k + 1];
        float dd = da * da + db * db;
        if (dd < best) { best = dd; bk = k; }
      }
      sx[bk] += a; sy[bk] += b; cnt[bk]++;
    }
    for (int k = 0; k < 16; k++) {
      if (cnt[k]) {
        c[2 * k] = float(sx[k] / double(cnt[k]));
        c[2 * k + 1] = float(sy[k] / double(cnt[k]));
      } else {  // re-seed an empty centroid from a random point
        st ^= st << 13; st ^= st >> 7; st ^= st << 17;
        size_t i = size_t(st % n);
        c[2 * k] = x[2 * i];
        c[2 * k + 1] = x[2 * i + 1];
      }
    }
  }
  std::copy(c, c + 32, out);
}
}  // namespace

std::shared_ptr<Params> train_params(const float* x, size_t n, const TrainConfig& cfg, const Progress& progress) {
  auto P = std::make_shared<Params>();
  P->d = cfg.d;
  P->dr = cfg.dr;
  P->m = cfg.dr / 2;
  P->nlist = cfg.nlist;
  if (progress) progress("transform", 0, 1);
  // A few thousand rows pin down the covariance; more only costs time.
  size_t npca = std::min<size_t>(n, 10000);
  P->T = train_pca_rotation(x, npca, cfg.d, cfg.dr, cfg.seed, cfg.nthreads);
  if (progress) progress("transform", 1, 1);
  // Only the rows k-means and PQ training will look at need reducing.
  n = std::min<size_t>(n, std::max<size_t>(cfg.nlist * 40, 65536));
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
  size_t npq = std::min<size_t>(n, 16384);
  P->codebooks.assign(P->m * 32, 0.f);
  std::atomic<size_t> pq_done{0};
  parallel_for(P->m, cfg.nthreads, [&](size_t jb, size_t je, size_t t) {
    std::vector<float> sub(npq * 2);
    for (size_t j = jb; j < je; j++) {
      for (size_t i = 0; i < npq; i++) {
        sub[2 * i] = xr[i * cfg.dr + 2 * j];
        sub[2 * i + 1] = xr[i * cfg.dr + 2 * j + 1];
      }
      kmeans16_2d(sub.data(), npq, cfg.seed + 100 + j, &P->codebooks[j * 32]);
      size_t d = ++pq_done;
      if (progress && t == 0) progress("pq", d, P->m);
    }
  });
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
