// AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019), the
// optimiser HAKES (VLDB 2025, §4) trains its search parameters with. Parameters and
// moments are double; the caller supplies the learning rate per step (warm-up).
#pragma once
#include <cstddef>
#include <vector>

namespace winnow::learn {

class AdamW {
 public:
  explicit AdamW(size_t n, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8, double weight_decay = 0.01);
  // p -= lr * (m^ / (sqrt(v^) + eps) + wd * p), with bias-corrected moments.
  void step(double* p, const double* g, double lr);
  // Same with the decay at its own rate: p -= lr * m^ / (sqrt(v^) + eps) + decay_lr * wd * p.
  void step(double* p, const double* g, double lr, double decay_lr);
  size_t steps() const { return t_; }

 private:
  std::vector<double> m_, v_;
  double b1_, b2_, eps_, wd_;
  size_t t_ = 0;
};

// Linear warm-up from lr/warmup to lr over the first `warmup` steps, then constant.
double warmup_lr(double lr, size_t step, size_t warmup);

}  // namespace winnow::learn
