// HAKES's self-supervised objective for the search-side filter parameters (Hu et al.,
// "HAKES: Scalable Vector Database for Embedding Search Service", VLDB 2025, §4):
// for a query q and its K nearest neighbours x_1..x_K, the softmax of the similarities
// in the original space is the target; the filter's compressed similarities must keep
// it. Two KL terms share the learnt query transform A' (z = A' q~):
//   KL( softmax(s(q, x_i)/tau) || softmax(s(z, y_i)/tau) )   y_i = A x~_i  (insert transform, fixed)
//   KL( softmax(s(q, x_i)/tau) || softmax(s(z, r_i)/tau) )   r_i = C'[code_i] (learnt codebooks,
//                                                             codes fixed from insert time)
// s is the inner product for 'ip' and -||a-b||^2 otherwise (what the LUTs rank by).
// Everything is double so a finite-difference check can verify the gradients tightly.
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace winnow::learn {

struct LossShape {
  size_t d = 0, dr = 0, m = 0, K = 0;
  bool ip = false;  // similarity: inner product (true) or negative squared L2 (false)
  double tau = 1;   // softmax temperature
  double w1 = 1;    // weight of the first (dimensionality-reduction) term; the second has weight 1
};

// One mini-batch. Q rows are already centred when the metric centres queries.
struct Batch {
  size_t B = 0;
  const float* Q = nullptr;        // B x d
  const uint32_t* nbr = nullptr;   // B x K, rows of Y / codes
  const float* orig = nullptr;     // B x K original-space similarities
  const float* Y = nullptr;        // (rows) x dr, insert-space reduced neighbours
  const uint8_t* codes = nullptr;  // (rows) x m, stored 4-bit codes (one byte each)
};

// Mean loss over the batch. When gA/gC are non-null they receive the gradient of that
// mean w.r.t. A (dr x d) and C (m x 16 x 2), overwritten. `terms`, when non-null,
// receives the two KL terms' means separately.
double kl_loss(const LossShape& sh, const double* A, const double* C, const Batch& b, double* gA, double* gC,
               size_t nthreads, double terms[2] = nullptr);

}  // namespace winnow::learn
