#include "samples.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <unordered_map>

#include "../index/vector_index.h"
#include "../invlists/fastscan_layout.h"
#include "../utils/parallel.h"
#include "../utils/rng.h"

namespace winnow::learn {

void Samples::load_queries(const size_t* which, size_t B, float* out) const {
  const size_t d = shape.d;
  for (size_t i = 0; i < B; i++) {
    float* q = out + i * d;
    store->vs->read_float(qid[which[i]], q);
    if (centre)
      for (size_t t = 0; t < d; t++) q[t] -= mean[t];
  }
}

Batch Samples::batch(const size_t* which, size_t B, std::vector<float>& Qbuf, std::vector<uint32_t>& nbuf,
                     std::vector<float>& obuf) const {
  const size_t K = shape.K;
  Qbuf.resize(B * shape.d);
  nbuf.resize(B * K);
  obuf.resize(B * K);
  load_queries(which, B, Qbuf.data());
  for (size_t i = 0; i < B; i++) {
    std::copy(&nbr[which[i] * K], &nbr[which[i] * K] + K, &nbuf[i * K]);
    std::copy(&orig[which[i] * K], &orig[which[i] * K] + K, &obuf[i * K]);
  }
  Batch b;
  b.B = B;
  b.Q = Qbuf.data();
  b.nbr = nbuf.data();
  b.orig = obuf.data();
  b.Y = Y.data();
  b.codes = codes.data();
  return b;
}

size_t Samples::bytes() const {
  return qid.size() * 4 + row_id.size() * 8 + nbr.size() * 4 + orig.size() * 4 + Y.size() * 4 + codes.size() + mean.size() * 4;
}

Samples collect_samples(const VectorIndex& idx, const SampleConfig& cfg, const LearnProgress& progress) {
  auto st = idx.contents();
  auto ins = st->ins;
  if (!ins || !st->lists) throw std::logic_error("learn: index is not trained");
  const VectorStore& vs = *st->vs;
  const IndexConfig& ic = idx.config();
  const size_t d = ic.d, dr = ins->dr, m = ins->m, K = cfg.K;
  const uint32_t npub = vs.published();
  std::vector<uint32_t> live;
  live.reserve(npub);
  for (uint32_t id = 0; id < npub; id++)
    if (!vs.dead(id)) live.push_back(id);
  if (live.size() < K + 2)
    throw std::invalid_argument("learn: need more than neighbors + 1 (" + std::to_string(K + 1) + ") vectors, have " +
                                std::to_string(live.size()));

  Samples S;
  S.store = st;
  S.shape.d = d;
  S.shape.dr = dr;
  S.shape.m = m;
  S.shape.K = K;
  S.shape.ip = ic.metric == Metric::IP;
  S.centre = !S.shape.ip;  // same rule as the search path (Params::transform)
  S.mean = ins->T.mean;

  // Sample queries uniformly without replacement (partial Fisher-Yates).
  Rng rng(cfg.seed);
  const size_t nq = std::min(cfg.max_queries, live.size());
  for (size_t i = 0; i < nq; i++) std::swap(live[i], live[i + rng.below(live.size() - i)]);
  std::vector<uint32_t> cand(live.begin(), live.begin() + nq);
  live.clear();
  live.shrink_to_fit();

  // K + 1 nearest neighbours with the current search parameters at generous settings;
  // the query itself is dropped. Distances come from the refine stage (exact).
  const size_t pool = std::max(K, std::min(cfg.pool, size_t(npub) - 2));
  const size_t nearK = pool > K ? K / 2 : K;
  SearchParamsIn sp;
  sp.k = pool + 1;
  sp.nprobe = cfg.nprobe ? cfg.nprobe : std::max<size_t>(32, ins->nlist / 4);
  // About 500 refine candidates either way (kFactor 10 for K = 50).
  sp.kfactor = cfg.kfactor ? cfg.kfactor : std::max<size_t>(2, (10 * K + pool) / (pool + 1));
  sp.nthreads = std::max<size_t>(1, cfg.nthreads);
  std::vector<uint32_t> nbr_int;
  nbr_int.reserve(nq * K);
  S.orig.reserve(nq * K);
  const size_t QB = 2048;
  std::vector<float> qbuf(QB * d);
  std::vector<int64_t> oid(QB * (pool + 1));
  std::vector<float> odist(QB * (pool + 1));
  std::vector<uint32_t> row(pool);
  std::vector<float> sim(pool);
  Rng pick(cfg.seed ^ 0x5EEDull);
  for (size_t b = 0; b < nq; b += QB) {
    if (progress) progress("neighbors", b, nq, std::numeric_limits<double>::quiet_NaN());
    const size_t nb = std::min(QB, nq - b);
    for (size_t i = 0; i < nb; i++) vs.read_float(cand[b + i], &qbuf[i * d]);
    idx.search(qbuf.data(), nb, sp, oid.data(), odist.data());
    std::shared_lock ml(vs.map_mu);
    for (size_t i = 0; i < nb; i++) {
      const int64_t self = vs.ext(cand[b + i]);
      size_t got = 0;
      for (size_t j = 0; j <= pool && got < pool; j++) {
        const int64_t e = oid[i * (pool + 1) + j];
        if (e == -1 || e == self) continue;
        auto it = vs.map.find(e);
        if (it == vs.map.end() || it->second >= npub) continue;  // added after our snapshot
        const float dist = odist[i * (pool + 1) + j];
        // Back to the similarity the filter ranks by: -||q-x||^2 (l2, and cos on unit
        // vectors: 2(1 - cos)) or the inner product.
        double s = ic.metric == Metric::L2 ? -double(dist) * dist : ic.metric == Metric::IP ? -double(dist) : -2.0 * dist;
        row[got] = it->second;
        sim[got] = float(s);
        got++;
      }
      if (got < pool) continue;  // too few neighbours: skip this query
      if (pool > K) {
        // Keep the first nearK; a random (K - nearK)-subset of the rest, in rank order.
        for (size_t j = nearK; j < K; j++) {
          size_t r = j + pick.below(pool - j);
          std::swap(row[j], row[r]);
          std::swap(sim[j], sim[r]);
        }
        std::vector<size_t> ord(K - nearK);
        for (size_t j = 0; j < ord.size(); j++) ord[j] = nearK + j;
        std::sort(ord.begin(), ord.end(), [&](size_t a, size_t b) { return sim[a] > sim[b]; });
        std::vector<uint32_t> r2(ord.size());
        std::vector<float> s2(ord.size());
        for (size_t j = 0; j < ord.size(); j++) r2[j] = row[ord[j]], s2[j] = sim[ord[j]];
        std::copy(r2.begin(), r2.end(), row.begin() + nearK);
        std::copy(s2.begin(), s2.end(), sim.begin() + nearK);
      }
      S.qid.push_back(cand[b + i]);
      nbr_int.insert(nbr_int.end(), row.begin(), row.begin() + K);
      S.orig.insert(S.orig.end(), sim.begin(), sim.begin() + K);
    }
  }
  if (progress) progress("neighbors", nq, nq, std::numeric_limits<double>::quiet_NaN());
  if (S.qid.empty()) throw std::runtime_error("learn: no query found enough neighbours");

  // Compact rows for the distinct neighbours.
  std::vector<uint32_t> rowof(npub, UINT32_MAX), ids;
  for (uint32_t id : nbr_int)
    if (rowof[id] == UINT32_MAX) {
      rowof[id] = uint32_t(ids.size());
      ids.push_back(id);
    }
  S.rows = ids.size();
  S.row_id = ids;
  S.nbr.resize(nbr_int.size());
  for (size_t i = 0; i < nbr_int.size(); i++) S.nbr[i] = rowof[nbr_int[i]];

  // Their stored codes, read back from the lists (never re-encoded: insert params stay).
  S.codes.assign(S.rows * m, 0);
  std::vector<uint8_t> found(S.rows, 0);
  S.row_list.assign(S.rows, 0);
  const size_t bb = block_bytes(m);
  for (size_t l = 0; l < st->lists->nlist(); l++) {
    const InvList& L = st->lists->list(l);
    std::shared_lock ll(L.mu);
    for (size_t i = 0; i < L.ids.size(); i++) {
      const uint32_t id = L.ids[i];
      if (id >= npub || rowof[id] == UINT32_MAX) continue;
      const uint8_t* blk = L.codes.data() + (i / 32) * bb;
      uint8_t* c = &S.codes[size_t(rowof[id]) * m];
      for (size_t j = 0; j < m; j++) c[j] = get_code(blk, i % 32, j);
      found[rowof[id]] = 1;
      S.row_list[rowof[id]] = uint32_t(l);
    }
  }
  for (size_t r = 0; r < S.rows; r++)
    if (!found[r]) throw std::runtime_error("learn: a neighbour has no code in the lists");

  // Insert-side reduced neighbours y = A (x - mean), fixed during training.
  S.Y.resize(S.rows * dr);
  parallel_for(S.rows, std::max<size_t>(1, cfg.nthreads), [&](size_t rb, size_t re, size_t th) {
    std::vector<float> x(d);
    for (size_t r = rb; r < re; r++) {
      vs.read_float(ids[r], x.data());
      ins->transform(x.data(), &S.Y[r * dr], true);
      if (th == 0 && progress && (r - rb) % 8192 == 0)
        progress("reduce", r - rb, re - rb, std::numeric_limits<double>::quiet_NaN());
    }
  });
  return S;
}

}  // namespace winnow::learn
