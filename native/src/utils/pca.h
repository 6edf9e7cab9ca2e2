// Dimensionality reduction learnt at train time: PCA to the top-r principal
// subspace followed by a random orthogonal rotation. The rotation spreads the
// variance evenly over the 2-d PQ sub-spaces (Jégou et al., "Aggregating local
// descriptors...", PAMI 2012 §IV; HAKES §4 uses a learnt transform for the same end).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace winnow {

struct LinearTransform {
  size_t d_in = 0, d_out = 0;
  std::vector<float> mean;  // d_in
  std::vector<float> A;     // d_out x d_in, row-major; rows orthonormal (or zero when d_out > d_in)
};

LinearTransform train_pca_rotation(const float* x, size_t n, size_t d, size_t r, uint64_t seed, size_t nthreads);

}  // namespace winnow
