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

class TopK {
 public:
  explicit TopK(size_t k) : k_(k) { heap_.reserve(k + 1); }
  // Anything not below this cannot enter; lets scanners skip work.
  float threshold() const { return heap_.size() < k_ ? std::numeric_limits<float>::infinity() : heap_.front().dist; }
  void push(float d, uint32_t id) {
    if (k_ == 0) return;
    if (heap_.size() < k_) {
      heap_.push_back({d, id});
      std::push_heap(heap_.begin(), heap_.end(), scored_less);
    } else if (scored_less({d, id}, heap_.front())) {
      std::pop_heap(heap_.begin(), heap_.end(), scored_less);
      heap_.back() = {d, id};
      std::push_heap(heap_.begin(), heap_.end(), scored_less);
    }
  }
  size_t size() const { return heap_.size(); }
  // Ascending by distance; empties the heap.
  std::vector<Scored> take_sorted() {
    std::sort_heap(heap_.begin(), heap_.end(), scored_less);
    return std::move(heap_);
  }
  const std::vector<Scored>& raw() const { return heap_; }

 private:
  size_t k_;
  std::vector<Scored> heap_;
};

}  // namespace winnow
