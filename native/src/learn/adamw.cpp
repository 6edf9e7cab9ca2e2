#include "adamw.h"

#include <cmath>

namespace winnow::learn {

AdamW::AdamW(size_t n, double beta1, double beta2, double eps, double weight_decay)
    : m_(n, 0.0), v_(n, 0.0), b1_(beta1), b2_(beta2), eps_(eps), wd_(weight_decay) {}

void AdamW::step(double* p, const double* g, double lr) { step(p, g, lr, lr); }

void AdamW::step(double* p, const double* g, double lr, double decay_lr) {
  t_++;
  const double c1 = 1.0 - std::pow(b1_, double(t_)), c2 = 1.0 - std::pow(b2_, double(t_));
  for (size_t i = 0; i < m_.size(); i++) {
    m_[i] = b1_ * m_[i] + (1 - b1_) * g[i];
    v_[i] = b2_ * v_[i] + (1 - b2_) * g[i] * g[i];
    const double mh = m_[i] / c1, vh = v_[i] / c2;
    p[i] -= lr * mh / (std::sqrt(vh) + eps_) + decay_lr * wd_ * p[i];
  }
}

double warmup_lr(double lr, size_t step, size_t warmup) {
  if (warmup == 0 || step >= warmup) return lr;
  return lr * double(step + 1) / double(warmup);
}

}  // namespace winnow::learn
