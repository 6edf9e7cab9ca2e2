// Lloyd's k-means (FAISS Clustering style: random init from the sample, empty
// clusters re-seeded by splitting the largest one).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace winnow {

using Progress = std::function<void(const char* phase, size_t done, size_t total)>;

std::vector<float> kmeans(const float* x, size_t n, size_t d, size_t k, size_t iters, uint64_t seed, size_t nthreads,
                          const Progress& progress = nullptr, const char* phase = "kmeans");

// Index of the nearest centroid (L2) for each row of x.
void assign_nearest(const float* x, size_t n, const float* centroids, size_t k, size_t d, uint32_t* out,
                    size_t nthreads);

}  // namespace winnow
