// The learnt parameters of the filter stage. HAKES (arXiv 2505.12524, §3.2)
// decouples the parameters used to *encode* vectors at insert time from those used
// to *search*: insert params are frozen at training so stored codes stay valid;
// search params (query transform, probe centroids, LUT codebooks) may be replaced
// later (e.g. learnt to better rank the frozen codes) without re-encoding.
#pragma once
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "../utils/kmeans.h"
#include "../utils/pca.h"

namespace winnow {

enum class Metric : uint32_t { L2 = 0, IP = 1, COS = 2 };

struct Params {
  size_t d = 0, dr = 0, m = 0, nlist = 0;
  LinearTransform T;             // d -> dr
  std::vector<float> centroids;  // nlist x dr (IVF coarse quantiser, reduced space)
  std::vector<float> codebooks;  // m x 16 x 2 (4-bit PQ, two dims per sub-quantiser)

  // out = A (x - mean) when centre, else A x. Inner-product queries skip the mean:
  // <q, x> = <q, mean> + <q, x - mean> and the first term is the same for every x.
  void transform(const float* x, float* out, bool centre) const;
  // Throws std::invalid_argument when shapes differ from `like`.
  void check_compatible(const Params& like) const;
};

struct TrainConfig {
  size_t d, dr, nlist;
  Metric metric;
  uint64_t seed;
  size_t nthreads;
};

// x is already normalised for cosine.
std::shared_ptr<Params> train_params(const float* x, size_t n, const TrainConfig& cfg, const Progress& progress);

// Assigns each reduced vector to its IVF list and writes m unpacked 4-bit codes.
void encode_reduced(const Params& p, const float* xr, size_t n, uint32_t* list_out, uint8_t* codes_out,
                    size_t nthreads);

}  // namespace winnow
