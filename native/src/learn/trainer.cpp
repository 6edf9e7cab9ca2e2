#include "trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <stdexcept>
#include <unordered_set>

#include "../index/vector_index.h"
#include "../utils/rng.h"
#include "adamw.h"
#include "probe.h"
#include "recenter.h"

namespace winnow::learn {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// Mean loss over `which` (no gradients), in batches.
double eval_loss(const Samples& S, const std::vector<size_t>& which, const double* A, const double* C, size_t batch,
                 size_t nthreads) {
  std::vector<float> Q, O;
  std::vector<uint32_t> N;
  double sum = 0;
  for (size_t b = 0; b < which.size(); b += batch) {
    const size_t B = std::min(batch, which.size() - b);
    Batch bt = S.batch(&which[b], B, Q, N, O);
    sum += kl_loss(S.shape, A, C, bt, nullptr, nullptr, nthreads) * double(B);
  }
  return sum / double(which.size());
}

// Recall@10 of each validation query's own top-10 sampled neighbours, searching with P.
double val_recall(const VectorIndex& idx, const Samples& S, const std::vector<size_t>& which, const Params& P,
                  size_t nprobe, size_t kfactor, size_t nthreads) {
  const size_t d = S.shape.d, K = S.shape.K, k = std::min<size_t>(10, K);
  const VectorStore& vs = *S.store->vs;
  std::vector<float> q(which.size() * d);
  for (size_t i = 0; i < which.size(); i++) vs.read_float(S.qid[which[i]], &q[i * d]);
  SearchParamsIn sp;
  sp.k = k + 1;
  sp.nprobe = nprobe;
  sp.kfactor = kfactor;
  sp.nthreads = nthreads;
  std::vector<int64_t> ids(which.size() * (k + 1));
  std::vector<float> dist(ids.size());
  idx.search_with(P, q.data(), which.size(), sp, ids.data(), dist.data());
  size_t hit = 0;
  for (size_t i = 0; i < which.size(); i++) {
    const int64_t self = vs.ext(S.qid[which[i]]);
    std::unordered_set<int64_t> truth;
    for (size_t j = 0; j < k; j++) truth.insert(vs.ext(S.row_id[S.nbr[which[i] * K + j]]));
    size_t taken = 0;
    for (size_t j = 0; j <= k && taken < k; j++) {
      const int64_t e = ids[i * (k + 1) + j];
      if (e == self) continue;
      taken++;
      hit += truth.count(e);
    }
  }
  return double(hit) / double(which.size() * k);
}
}  // namespace

LearnReport learn_search_params(VectorIndex& idx, const LearnConfig& cfg, const LearnProgress& progress,
                                std::shared_ptr<const Params>* out) {
  if (cfg.batch == 0 || cfg.epochs == 0 || cfg.lrs.empty()) throw std::invalid_argument("learn: batch, epochs and learning rates must be positive");
  for (double lr : cfg.lrs)
    if (!(lr > 0) || !std::isfinite(lr)) throw std::invalid_argument("learn: learning rates must be positive");
  if (cfg.sample.K < 2) throw std::invalid_argument("learn: neighbors must be at least 2");
  const auto t_start = std::chrono::steady_clock::now();
  const size_t nth = std::max<size_t>(1, cfg.nthreads);
  LearnReport R;

  SampleConfig sc = cfg.sample;
  sc.nthreads = nth;
  Samples S = collect_samples(idx, sc, progress);
  R.seconds_samples = seconds_since(t_start);
  auto ins = S.store->ins;
  const size_t nq = S.qid.size();
  if (nq < 2) throw std::invalid_argument("learn: need at least 2 sample queries");

  // Validation split of the *training samples* chooses the learning rate; the
  // caller's evaluation queries are never seen here.
  std::vector<size_t> order(nq);
  for (size_t i = 0; i < nq; i++) order[i] = i;
  Rng rng(cfg.seed ^ 0xC0FFEEull);
  for (size_t i = nq - 1; i > 0; i--) std::swap(order[i], order[rng.below(i + 1)]);
  size_t nval = std::clamp<size_t>(size_t(std::llround(cfg.val_fraction * double(nq))), 1, std::min(cfg.max_val, nq - 1));
  std::vector<size_t> val(order.begin(), order.begin() + nval), train(order.begin() + nval, order.end());
  R.train_queries = train.size();
  R.val_queries = val.size();
  R.neighbors = S.shape.K;

  // Temperature: the mean spread (std) of a training query's original similarities,
  // so the target softmax is equally peaked whatever the metric's scale.
  {
    const size_t K = S.shape.K;
    double acc = 0;
    for (size_t i : train) {
      double mu = 0, s2 = 0;
      for (size_t k = 0; k < K; k++) mu += S.orig[i * K + k];
      mu /= double(K);
      for (size_t k = 0; k < K; k++) s2 += (S.orig[i * K + k] - mu) * (S.orig[i * K + k] - mu);
      acc += std::sqrt(s2 / double(K));
    }
    R.tau = acc / double(train.size()) * cfg.temperature_scale;
    if (!(R.tau > 0) || !std::isfinite(R.tau)) R.tau = 1;
    S.shape.tau = R.tau;
    S.shape.w1 = cfg.reduction_term_weight;
  }

  const size_t nA = ins->T.A.size(), nC = ins->codebooks.size();
  std::vector<double> A0(ins->T.A.begin(), ins->T.A.end()), C0(ins->codebooks.begin(), ins->codebooks.end());
  auto rms = [](const auto& v) {
    double s = 0;
    for (double x : v) s += x * x;
    return v.empty() ? 0.0 : std::sqrt(s / double(v.size()));
  };
  const double rmsA = rms(A0);
  auto rel = [&](double r) { return rmsA > 0 && r > 0 && std::isfinite(r / rmsA) ? r / rmsA : 1.0; };
  const double cb_scale = rel(rms(C0)), probe_scale = rel(rms(ins->centroids));
  std::vector<bool> scalings;
  const bool auto_on = cb_scale < 0.1 || cb_scale > 10;
  if (cfg.scale_lr == LearnConfig::SCALE_OFF || cfg.scale_lr == LearnConfig::SCALE_BOTH ||
      (cfg.scale_lr == LearnConfig::SCALE_AUTO && !auto_on))
    scalings.push_back(false);
  if (cfg.scale_lr == LearnConfig::SCALE_ON || cfg.scale_lr == LearnConfig::SCALE_BOTH ||
      (cfg.scale_lr == LearnConfig::SCALE_AUTO && auto_on))
    scalings.push_back(true);
  bool chose_scaled = false;
  R.val_loss_before = eval_loss(S, val, A0.data(), C0.data(), cfg.batch, nth);
  if (progress) progress("validate initial", 0, 1, R.val_loss_before);

  const auto t_train = std::chrono::steady_clock::now();
  const size_t steps_per_epoch = (train.size() + cfg.batch - 1) / cfg.batch;
  const size_t steps = steps_per_epoch * cfg.epochs;
  const size_t warm = size_t(std::llround(cfg.warmup_fraction * double(steps)));
  std::vector<double> bestA = A0, bestC = C0;
  double best = R.val_loss_before;
  R.lr = 0;
  std::vector<double> A, C, gA(nA), gC(nC);
  std::vector<float> Q, O;
  std::vector<uint32_t> N;
  const size_t trials = cfg.lrs.size() * scalings.size();
  for (size_t ti = 0; ti < trials; ti++) {
    const size_t li = ti % cfg.lrs.size();
    const bool scaled = scalings[ti / cfg.lrs.size()];
    const double lr = cfg.lrs[li], cscale = scaled ? cb_scale : 1.0;
    char phase[64];
    // Progress names the scaling only when both ways are tried (phase names are part of the SQL notices).
    const bool tag = scaled && scalings.size() > 1;
    std::snprintf(phase, sizeof phase, tag ? "train lr=%g scaled" : "train lr=%g", lr);
    A = A0;
    C = C0;
    AdamW optA(nA, 0.9, 0.999, 1e-8, cfg.weight_decay), optC(nC, 0.9, 0.999, 1e-8, cfg.weight_decay);
    Rng shuf(cfg.seed + 17 * (li + 1));
    std::vector<size_t> tr = train;
    size_t step = 0;
    for (size_t ep = 0; ep < cfg.epochs; ep++) {
      for (size_t i = tr.size() - 1; i > 0; i--) std::swap(tr[i], tr[shuf.below(i + 1)]);
      for (size_t b = 0; b < tr.size(); b += cfg.batch, step++) {
        const size_t B = std::min(cfg.batch, tr.size() - b);
        Batch bt = S.batch(&tr[b], B, Q, N, O);
        double loss = kl_loss(S.shape, A.data(), C.data(), bt, gA.data(), gC.data(), nth);
        const double lr_t = warmup_lr(lr, step, warm);
        if (cfg.learn_transform) optA.step(A.data(), gA.data(), lr_t);
        optC.step(C.data(), gC.data(), lr_t * cscale, lr_t);
        if (progress && (step % 10 == 0 || step + 1 == steps)) progress(phase, step + 1, steps, loss);
      }
    }
    const double vl = eval_loss(S, val, A.data(), C.data(), cfg.batch, nth);
    R.sweep.push_back({lr, vl, scaled});
    std::snprintf(phase, sizeof phase, tag ? "validate lr=%g scaled" : "validate lr=%g", lr);
    if (progress) progress(phase, ti + 1, trials, vl);
    if (vl < best) {
      best = vl;
      bestA = A;
      bestC = C;
      R.lr = lr;
      chose_scaled = scaled;
    }
  }
  R.codebook_lr_scale = chose_scaled ? cb_scale : 1.0;
  R.probe_lr_scale = chose_scaled ? probe_scale : 1.0;
  R.val_loss_after = best;
  R.steps = steps;
  R.bytes = S.bytes() + (nA + nC) * 8 * 8 /* A0,C0, A,C, best, grads, 2 moments */ +
            cfg.batch * (S.shape.d * 4 + S.shape.dr * 16 + S.shape.K * 8);
  R.seconds_train = seconds_since(t_train);

  auto P = std::make_shared<Params>(*ins);
  for (size_t i = 0; i < nA; i++) P->T.A[i] = float(bestA[i]);
  for (size_t i = 0; i < nC; i++) P->codebooks[i] = float(bestC[i]);

  // Re-centre IVF centroids in the learnt space, then check both variants against the
  // insert params on the validation queries; keep the better (never a regression).
  const auto t_rc = std::chrono::steady_clock::now();
  // The recall-0.99 regime (wordnet-use-512: nprobe 32-48 of 256, kFactor 8-14), where both
  // probing and the PQ ranking still lose neighbours.
  R.val_nprobe = std::max<size_t>(8, ins->nlist / 8);
  R.val_kfactor = 8;
  std::vector<size_t> vr(val.begin(), val.begin() + std::min<size_t>(val.size(), 2000));
  R.val_recall_before = val_recall(idx, S, vr, *ins, R.val_nprobe, R.val_kfactor, nth);
  R.val_recall_no_recenter = val_recall(idx, S, vr, *P, R.val_nprobe, R.val_kfactor, nth);
  R.val_recall_after = R.val_recall_no_recenter;
  if (cfg.recenter && R.lr > 0) {
    if (progress) progress("recenter", 0, 1, kNaN);
    auto Pr = std::make_shared<Params>(*P);
    Pr->centroids = recenter_centroids(*S.store, *P, 0, nth);
    double rr = val_recall(idx, S, vr, *Pr, R.val_nprobe, R.val_kfactor, nth);
    if (progress) progress("recenter", 1, 1, rr);
    if (rr >= R.val_recall_after) {
      R.val_recall_after = rr;
      R.recentered = true;
      P = Pr;
    }
  }
  if (cfg.learn_probe && R.lr > 0) {
    // Extension (probe.h): probing centroids trained on where the samples' neighbours live,
    // starting from the centroids chosen above. Temperature and learning rate are chosen by the
    // validation queries' probe coverage (share of their top-10 neighbours stored in the first
    // cov_nprobe lists); kept only if validation recall improves too.
    const auto Z = transform_queries(S, *P, nth);
    const size_t top = std::min<size_t>(10, S.shape.K);
    R.probe_nprobe = std::max<size_t>(1, std::min(ins->nlist, cfg.probe_coverage_nprobe
                                                                  ? cfg.probe_coverage_nprobe
                                                                  : std::max<size_t>(8, ins->nlist / 8)));
    R.probe_coverage_before =
        probe_coverage(S, Z, val, P->centroids.data(), ins->nlist, R.probe_nprobe, top, S.shape.ip, nth);
    double best_cov = R.probe_coverage_before;
    std::vector<double> bestCent;
    const std::vector<double>& plrs = cfg.probe_lrs.empty() ? cfg.lrs : cfg.probe_lrs;
    size_t trial = 0;
    for (double ts : cfg.probe_tau_scales) {
      for (double plr : plrs) {
        std::vector<double> cent(P->centroids.begin(), P->centroids.end());
        ProbeConfig pc;
        pc.batch = cfg.batch;
        pc.epochs = cfg.probe_epochs ? cfg.probe_epochs : cfg.epochs;
        pc.nthreads = nth;
        pc.lr = plr;
        pc.lr_scale = R.probe_lr_scale;
        pc.weight_decay = cfg.weight_decay;
        pc.warmup_fraction = cfg.warmup_fraction;
        pc.seed = cfg.seed;
        pc.tau = R.tau * ts;
        pc.target_k = cfg.probe_target_k;
        pc.cutoff = cfg.probe_coverage_loss ? R.probe_nprobe : 0;
        auto [b, a] = learn_probe(S, Z, train, val, ins->nlist, cent, pc);
        std::vector<float> cf(cent.begin(), cent.end());
        const double cov = probe_coverage(S, Z, val, cf.data(), ins->nlist, R.probe_nprobe, top, S.shape.ip, nth);
        R.probe_sweep.push_back({ts, plr, a, cov});
        char phase[80];
        std::snprintf(phase, sizeof phase, "probe tau=%gx lr=%g", ts, plr);
        if (progress) progress(phase, ++trial, cfg.probe_tau_scales.size() * plrs.size(), cov);
        if (cov > best_cov) {
          best_cov = cov;
          bestCent = std::move(cent);
          R.probe_lr = plr;
          R.probe_tau_scale = ts;
          R.probe_loss_before = b;
          R.probe_loss_after = a;
        }
      }
    }
    R.probe_coverage_after = best_cov;
    if (!bestCent.empty()) {
      auto Pp = std::make_shared<Params>(*P);
      for (size_t i = 0; i < bestCent.size(); i++) Pp->centroids[i] = float(bestCent[i]);
      R.val_recall_probe = val_recall(idx, S, vr, *Pp, R.val_nprobe, R.val_kfactor, nth);
      if (progress) progress("validate probe", 1, 1, R.val_recall_probe);
      if (R.val_recall_probe > R.val_recall_after) {
        R.val_recall_after = R.val_recall_probe;
        R.probe_learned = true;
        P = Pp;
      }
    }
  }
  R.seconds_recenter = seconds_since(t_rc);
  if (progress) progress("validate recall", 1, 1, R.val_recall_after);

  if (out) *out = P;
  if (cfg.install == LearnConfig::ALWAYS ||
      (cfg.install == LearnConfig::IF_BETTER && R.lr > 0 && R.val_recall_after >= R.val_recall_before)) {
    idx.set_search_params(P);
    R.installed = true;
  }
  R.seconds_total = seconds_since(t_start);
  if (progress) progress(R.installed ? "installed" : "not installed", 1, 1, kNaN);
  return R;
}

}  // namespace winnow::learn
