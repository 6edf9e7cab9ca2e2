// Extension beyond HAKES (learnProbe, on by default): learn the probing centroids too. For each
// training query the targets are the IVF lists its nearest neighbours are stored in; the probe
// scores are s(A'q~, c'_l) / tau_p. Two losses (AdamW, same schedule) move c' so that lists holding
// a query's neighbours rank first: the coverage surrogate (default) asks every target list to
// outscore the non-target list that would push it out of the first n probed lists (softplus of the
// difference); the cross-entropy between the targets and the softmax over all lists mostly raises
// the first list. List membership never changes (stored codes stay where they are).
#pragma once
#include <utility>
#include <vector>

#include "samples.h"

namespace winnow::learn {

struct ProbeConfig {
  size_t batch = 512, epochs = 1, nthreads = 2;
  double lr = 1e-3, weight_decay = 0.01, warmup_fraction = 0.1;
  double lr_scale = 1;  // the Adam step is lr * lr_scale (weight decay at lr): LearnConfig::scale_lr
  double tau = 1;       // probe softmax temperature (absolute)
  // 0: cross-entropy over all lists. n > 0: coverage surrogate for nprobe n (each target list must
  // outscore the non-target list that would push it out of the first n; softplus of the difference).
  size_t cutoff = 0;
  size_t target_k = 0;  // 0: targets are the softmax weights of all K neighbours; else uniform over the first target_k
  uint64_t seed = 1;
};

// The probe loss on explicit data (mean over B queries), and its gradient w.r.t. C (nlist x dr)
// when g is non-null. Q: B x d (centred as the metric requires); orig: B x K original similarities;
// lists: B x K list of each neighbour. Temperature sh.tau; cutoff and target_k as in ProbeConfig.
// Exposed for the finite-difference test.
double probe_loss_raw(const LossShape& sh, const double* A, const double* C, size_t nlist, const float* Q, size_t B,
                      const float* orig, const uint32_t* lists, double* g, size_t nthreads, size_t cutoff = 0,
                      size_t target_k = 0);

// Same loss on already-transformed queries Z (B x dr, z = A'q~), with cfg's temperature and targets.
double probe_loss_z(const LossShape& sh, const ProbeConfig& cfg, const double* C, size_t nlist, const double* Z,
                    size_t B, const float* orig, const uint32_t* lists, double* g);

// The samples' queries through the learnt (search) transform: qid.size() x dr floats, exactly what
// the search path computes (Params::transform).
std::vector<float> transform_queries(const Samples& S, const Params& P, size_t nthreads);

// Probe coverage: share of each query's first `top` neighbours whose list is among the `nprobe`
// lists ranked first by centroids C (nlist x dr) for z = Z[query]. This is the recall the probe
// allows at that nprobe with an exact filter stage.
double probe_coverage(const Samples& S, const std::vector<float>& Z, const std::vector<size_t>& which,
                      const float* C, size_t nlist, size_t nprobe, size_t top, bool ip, size_t nthreads);

// Trains centroids (nlist x dr, in place) on queries `train` with Z precomputed.
// Returns the mean loss over `val` before and after.
std::pair<double, double> learn_probe(const Samples& S, const std::vector<float>& Z, const std::vector<size_t>& train,
                                      const std::vector<size_t>& val, size_t nlist, std::vector<double>& centroids,
                                      const ProbeConfig& cfg);

}  // namespace winnow::learn
