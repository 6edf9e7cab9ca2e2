#include "recenter.h"

#include <algorithm>
#include <shared_mutex>

#include "../utils/parallel.h"

namespace winnow::learn {

std::vector<float> recenter_centroids(const Store& s, const Params& P, size_t max_per_list, size_t nthreads) {
  const size_t nlist = P.nlist, dr = P.dr, d = P.d;
  std::vector<float> out = P.centroids;
  const VectorStore& vs = *s.vs;
  parallel_for(nlist, std::max<size_t>(1, nthreads), [&](size_t lb, size_t le, size_t) {
    std::vector<float> x(d), z(dr);
    std::vector<double> acc(dr);
    std::vector<uint32_t> ids;
    for (size_t l = lb; l < le; l++) {
      {
        const InvList& L = s.lists->list(l);
        std::shared_lock lk(L.mu);
        ids = L.ids;
      }
      ids.erase(std::remove_if(ids.begin(), ids.end(), [&](uint32_t id) { return vs.dead(id); }), ids.end());
      if (ids.empty()) continue;
      const size_t n = ids.size(), take = max_per_list && n > max_per_list ? max_per_list : n;
      std::fill(acc.begin(), acc.end(), 0.0);
      for (size_t i = 0; i < take; i++) {
        vs.read_float(ids[i * n / take], x.data());
        P.transform(x.data(), z.data(), true);
        for (size_t t = 0; t < dr; t++) acc[t] += z[t];
      }
      for (size_t t = 0; t < dr; t++) out[l * dr + t] = float(acc[t] / double(take));
    }
  });
  return out;
}

}  // namespace winnow::learn
