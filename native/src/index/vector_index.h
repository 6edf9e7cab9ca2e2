// HAKES-style filter/refine vector index (arXiv 2505.12524 §3): a cheap filter stage
// (linear reduction d -> dr, IVF probe in reduced space, 4-bit fast-scan PQ) picks
// k * kFactor candidates that are re-ranked on the stored full-precision vectors.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "../invlists/invlists.h"
#include "id_filter.h"
#include "params.h"
#include "vector_store.h"

namespace winnow {

struct IndexConfig {
  size_t d = 0;
  Metric metric = Metric::L2;
  size_t nlist = 0;  // 0: chosen at train time from the sample size
  size_t dr = 0;     // 0: d/4 rounded to a multiple of 4
  bool f16 = false;
  uint64_t seed = 1234;
};


struct SearchParamsIn {
  size_t k = 10, nprobe = 16, kfactor = 10, nthreads = 1;
  const int64_t* filter_ext = nullptr;  // allowed external ids (any order)
  size_t filter_n = 0;
  bool has_filter = false;
  const uint64_t* filter_bits = nullptr;  // optional bitset over internal ids (C++ callers)
  size_t filter_bits_words = 0;
  // Instead of filter_ext/filter_bits: a set prepared once and reused across queries (id_filter.h).
  const PreparedFilter* prepared = nullptr;
  // Filtered queries with at most this many allowed ids use exact brute force;
  // SIZE_MAX = default (brute_filter_work() / dim).
  size_t brute_limit = SIZE_MAX;
};

struct Store;
class Reservoir;

class VectorIndex {
 public:
  explicit VectorIndex(const IndexConfig& cfg);
  ~VectorIndex();

  const IndexConfig& config() const { return cfg_; }
  bool trained() const;
  size_t size() const;  // live vectors
  size_t dr() const { return cfg_.dr; }
  size_t nlist() const;

  // nlist: lists for an index created with nlist 0 (automatic), e.g. chosen from a table's size when
  // the sample is smaller than the table; 0 = from the sample's size.
  void train(const float* x, size_t n, const Progress& progress, size_t nthreads, size_t nlist = 0);
  // Inserts or replaces (same external id = update: old version tombstoned first).
  void add(const int64_t* ids, const float* x, size_t n, size_t nthreads);
  size_t remove(const int64_t* ids, size_t n);
  void compact();

  // out_ids/out_dist: nq*k; padding id -1, distance +inf.
  void search(const float* q, size_t nq, const SearchParamsIn& p, int64_t* out_ids, float* out_dist) const;
  void brute_force(const float* q, size_t nq, const SearchParamsIn& p, int64_t* out_ids, float* out_dist) const;
  // search() with explicit filter-stage params instead of the installed ones (learning
  // validates candidate params this way before installing them); shapes must match.
  void search_with(const Params& sp, const float* q, size_t nq, const SearchParamsIn& p, int64_t* out_ids,
                   float* out_dist) const;

  // HAKES decoupling: search-side params are swapped atomically; readers keep the
  // snapshot they started with.
  void set_search_params(std::shared_ptr<const Params> p);
  void reset_search_params();
  std::shared_ptr<const Params> search_params() const;
  std::shared_ptr<const Params> insert_params() const;
  // The current contents snapshot (read-only use: learning reads rows, lists and codes).
  std::shared_ptr<const Store> contents() const;

  void save(const std::string& dir) const;
  static std::unique_ptr<VectorIndex> load(const std::string& dir);

  struct Stats {
    size_t count, deleted, d, dr, nlist;
    double filter_bytes, total_bytes;
  };
  Stats stats() const;

  // Filtered queries whose allowed set is this small (allowed ids x dim) are answered
  // by exact brute force over the allowed ids instead of the IVF scan; measured, see
  // native/README.md. WINNOW_FILTER_BRUTE_WORK overrides it (for re-measuring).
  static double brute_filter_work();

 private:
  std::shared_ptr<Store> snapshot() const;
  void validate_vectors(const float* x, size_t n, const char* what) const;
  void prepare(const float* in, float* out) const;  // copy, normalise for cos
  IdFilter build_filter(const Store& s, const SearchParamsIn& p) const;
  // The query's filter (null: none): the prepared set's, held in `held`, or built into `local`.
  const IdFilter* filter_for(const Store& s, const SearchParamsIn& p, IdFilter& local,
                             std::shared_ptr<const IdFilter>& held) const;
  void search_on(const Store& s, const Params* sp, const float* q, size_t nq, const SearchParamsIn& p, int64_t* out_ids,
                 float* out_dist) const;
  void search_one(const Store& s, const Params* sp, const float* q, const SearchParamsIn& p, const IdFilter* f,
                  int64_t* out_ids, float* out_dist) const;
  void scan_codes(const uint8_t* codes, const uint32_t* ids, size_t n, size_t m, const uint8_t* lut, const IdFilter* f,
                  std::vector<uint16_t>& acc, std::vector<uint32_t>& masks, Reservoir& cand, const VectorStore& vs) const;
  void scan_allowed(const InvList& L, const IdFilter& f, size_t list, size_t m, const uint8_t* lut,
                    std::vector<uint16_t>& acc, std::vector<uint32_t>& masks, std::vector<uint32_t>& allow,
                    Reservoir& cand, const VectorStore& vs) const;
  void brute_one(const Store& s, const float* q, size_t k, const IdFilter* f, int64_t* out_ids, float* out_dist) const;
  float score(const VectorStore& vs, const float* q, uint32_t id) const;
  float finish(float s) const;

  IndexConfig cfg_;
  mutable std::mutex writer_mu_;
  std::shared_ptr<Store> store_;
  std::shared_ptr<const Params> search_params_;
};

}  // namespace winnow
