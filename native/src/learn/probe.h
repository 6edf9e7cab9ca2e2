// Optional extension beyond HAKES (off by default): learn the probing centroids too. For each
// training query the target is the distribution of its neighbours' softmax weights over the
// IVF lists they are stored in; the prediction is the softmax over all lists of the probe
// similarity s(A'q~, c'_l) / tau. Minimising the cross-entropy (AdamW, same schedule) moves
// c' so that lists holding a query's neighbours rank first. List membership never changes.
#pragma once
#include <vector>

#include "samples.h"

namespace winnow::learn {

struct ProbeConfig {
  size_t batch = 512, epochs = 1, nthreads = 2;
  double lr = 1e-3, weight_decay = 0.01, warmup_fraction = 0.1;
  uint64_t seed = 1;
};

// The probe loss on explicit data (mean over B queries), and its gradient w.r.t. C (nlist x dr)
// when g is non-null. Q: B x d (centred as the metric requires); orig: B x K original similarities;
// lists: B x K list of each neighbour. Exposed for the finite-difference test.
double probe_loss_raw(const LossShape& sh, const double* A, const double* C, size_t nlist, const float* Q, size_t B,
                      const float* orig, const uint32_t* lists, double* g, size_t nthreads);

// A: learnt transform (dr x d); centroids: nlist x dr, updated in place.
// Returns the mean loss over `val` before and after.
std::pair<double, double> learn_probe(const Samples& S, const std::vector<size_t>& train, const std::vector<size_t>& val,
                                      const double* A, size_t nlist, std::vector<double>& centroids,
                                      const ProbeConfig& cfg);

}  // namespace winnow::learn
