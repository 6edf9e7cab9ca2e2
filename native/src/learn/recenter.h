// After the search transform is learnt, HAKES (VLDB 2025, §4) re-centres the IVF
// centroids in the learnt space so probing compares like with like: centroid l becomes
// the mean of A'(x - mean) over the vectors stored in list l. List membership (decided
// by the insert params) does not change.
#pragma once
#include <cstddef>
#include <vector>

#include "../index/store.h"

namespace winnow::learn {

// P supplies the learnt transform; lists with no live vector keep P.centroids' row.
// At most max_per_list members of each list are averaged (evenly spaced); 0 = all.
std::vector<float> recenter_centroids(const Store& s, const Params& P, size_t max_per_list, size_t nthreads);

}  // namespace winnow::learn
