// Training data for learning the search parameters, collected from the index itself
// (HAKES, VLDB 2025, §4: self-supervised, queries sampled from the indexed vectors,
// each paired with its K nearest neighbours found by the index at generous settings).
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../index/store.h"
#include "kl_loss.h"

namespace winnow {
class VectorIndex;
}

namespace winnow::learn {

using LearnProgress = std::function<void(const std::string& phase, size_t done, size_t total, double value)>;

struct SampleConfig {
  size_t max_queries = 65536;
  size_t K = 50;
  size_t nprobe = 0, kfactor = 0;  // 0: generous defaults from nlist
  // 0 or <= K: the K nearest neighbours (HAKES). Larger: the K/2 nearest, then K - K/2 drawn at
  // random from ranks K/2+1..pool, so the loss also sees farther points that compete with the
  // nearest ones for the filter's top k*kFactor (ordered nearest first either way).
  size_t pool = 0;
  size_t nthreads = 2;
  uint64_t seed = 1;
};

struct Samples {
  LossShape shape;
  bool centre = true;                  // queries are centred by the insert mean (l2, cos)
  std::shared_ptr<const Store> store;  // keeps the query rows readable
  std::vector<float> mean;             // d
  std::vector<uint32_t> qid;           // internal ids of the sampled queries
  std::vector<uint32_t> nbr;           // qid.size() x K, rows of Y / codes
  std::vector<float> orig;             // qid.size() x K, original-space similarities
  std::vector<float> Y;                // rows x dr: insert-transformed neighbours
  std::vector<uint8_t> codes;          // rows x m: their stored codes
  std::vector<uint32_t> row_id;        // rows: internal id of each neighbour row
  std::vector<uint32_t> row_list;      // rows: the IVF list each neighbour is stored in
  size_t rows = 0;

  // Writes queries which[0..B) (indices into qid) as B x d float rows, centred if needed.
  void load_queries(const size_t* which, size_t B, float* out) const;
  // A batch view for kl_loss over queries which[0..B); Qbuf gets B x d floats.
  Batch batch(const size_t* which, size_t B, std::vector<float>& Qbuf, std::vector<uint32_t>& nbuf,
              std::vector<float>& obuf) const;
  size_t bytes() const;
};

Samples collect_samples(const VectorIndex& idx, const SampleConfig& cfg, const LearnProgress& progress);

}  // namespace winnow::learn
