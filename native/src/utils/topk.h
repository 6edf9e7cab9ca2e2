// Bounded max-heap keeping the k smallest (distance, id) pairs; ties broken by
// lower id so results are deterministic across runs and thread splits.
#pragma once
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace winnow {

struct Scored {
  float dist;
  uint32_t id;
};
inline bool scored_less(const Scored& a, const Scored& b) { return a.dist < b.dist || (a.dist == b.dist && a.id < b.id); }
// Functor form so std algorithms inline the comparison (a function pointer would not be).
struct ScoredLess {
  bool operator()(const Scored& a, const Scored& b) const { return scored_less(a, b); }
};

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k + 1); }
  // Anything not below this cannot enter; lets scanners skip work.
  float threshold() const { return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().dist; }
  void push(float d, uint32_t id) {
    if (k_ == 0) return;
    if (heap_.size() < k_) {
      heap_.push_back({d, id});
      std::push_heap(heap_.begin(), heap_.end(), ScoredLess());
    } else if (scored_less({d, id}, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), ScoredLess());
      heap_.back() = {d, id};
      std::push_heap(heap_.begin(), heap_.end(), ScoredLess());
    }
  }
  size_t size() const { return heap_.size(); }
  // Ascending by distance; empties the heap.
  std::vector<Scored> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), ScoredLess());
    return std::move(heap_);
  }
  const std::vector<Scored>& raw() const { return heap_; }

 private:
  size_t k_;
  std::vector<Scored> heap_;
};

// Reservoir selection (as FAISS ReservoirTopN): candidates below a threshold are
// appended; when the buffer reaches 2k it is cut back to the k best with
// nth_element and the threshold tightens. Amortised O(1) per push versus a heap's
// O(log k), which matters when a scan produces thousands of survivors.
class Reservoir {
 public:
  explicit Reservoir(size_t k) : k_(k) { buf_.reserve(2 * k + 1); }
  uint32_t threshold() const { return thr_; }  // accept values <= threshold
  void push(uint32_t v, uint32_t id) {
    buf_.push_back({float(v), id});
    if (buf_.size() >= 2 * k_) shrink();
  }
  size_t size() const { return buf_.size(); }
  const std::vector<Scored>& finish() {
    if (buf_.size() > k_) {
      std::nth_element(buf_.begin(), buf_.begin() + k_, buf_.end(), ScoredLess());
      buf_.resize(k_);
    }
    return buf_;
  }

 private:
  void shrink() {
    std::nth_element(buf_.begin(), buf_.begin() + (k_ - 1), buf_.end(), ScoredLess());
    buf_.resize(k_);
    thr_ = uint32_t(buf_[k_ - 1].dist);
    for (const Scored& s : buf_) thr_ = std::max(thr_, uint32_t(s.dist));
  }
  size_t k_;
  uint32_t thr_ = UINT32_MAX;
  std::vector<Scored> buf_;
};

}  // namespace winnow
