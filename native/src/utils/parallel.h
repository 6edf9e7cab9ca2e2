// Minimal fork-join over std::thread: the machines this runs on have 2 cores and
// jobs are coarse (k-means passes, batch searches), so a pool would buy nothing.
#pragma once
#include <algorithm>
#include <cstddef>
#include <exception>
#include <functional>
#include <thread>
#include <vector>

namespace winnow {

inline size_t default_threads() {
  size_t h = std::thread::hardware_concurrency();
  return h == 0 ? 1 : h;
}

// fn(begin, end, thread_index) over contiguous ranges; rethrows the first exception.
inline void parallel_for(size_t n, size_t nthreads, const std::function<void(size_t, size_t, size_t)>& fn) {
  nthreads = std::max<size_t>(1, std::min(nthreads, n));
  if (nthreads <= 1) {
    if (n) fn(0, n, 0);
    return;
  }
  std::vector<std::thread> ts;
  std::vector<std::exception_ptr> errs(nthreads);
  for (size_t t = 0; t < nthreads; t++) {
    size_t b = n * t / nthreads, e = n * (t + 1) / nthreads;
    ts.emplace_back([&, b, e, t] {
      try {
        fn(b, e, t);
      } catch (...) {
        errs[t] = std::current_exception();
      }
    });
  }
  for (auto& th : ts) th.join();
  for (auto& e : errs)
    if (e) std::rethrow_exception(e);
}

}  // namespace winnow
