// Standalone search benchmark (no Node): loads a saved index, runs single-thread
// searches and reports recall@10 plus wall and thread-CPU QPS. Used for tuning:
//   g++ -O3 -std=c++20 ... (see native/scripts/search-bench.sh)
#include <time.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <unordered_set>
#include <vector>

#include "index/vector_index.h"

using namespace winnow;

static std::vector<float> read_fvecs(const char* path, int& d) {
  std::ifstream f(path, std::ios::binary);
  std::vector<float> out;
  int dim;
  while (f.read(reinterpret_cast<char*>(&dim), 4)) {
    d = dim;
    size_t o = out.size();
    out.resize(o + dim);
    f.read(reinterpret_cast<char*>(&out[o]), dim * 4);
  }
  return out;
}
static std::vector<int> read_ivecs(const char* path, int& k) {
  std::ifstream f(path, std::ios::binary);
  std::vector<int> out;
  int kk;
  while (f.read(reinterpret_cast<char*>(&kk), 4)) {
    k = kk;
    size_t o = out.size();
    out.resize(o + kk);
    f.read(reinterpret_cast<char*>(&out[o]), kk * 4);
  }
  return out;
}
static double cpu_ns() {
  timespec ts;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: search_bench INDEX_DIR query.fvecs gt.ivecs [nprobe,kfactor ...]\n");
    return 2;
  }
  auto idx = VectorIndex::load(argv[1]);
  int d = 0, gk = 0;
  auto q = read_fvecs(argv[2], d);
  auto gt = read_ivecs(argv[3], gk);
  size_t nq = q.size() / d, k = 10;
  std::vector<int64_t> ids(k);
  std::vector<float> dist(k);
  for (int a = 4; a < argc; a++) {
    SearchParamsIn p;
    p.k = k;
    std::sscanf(argv[a], "%zu,%zu", &p.nprobe, &p.kfactor);
    for (int rep = 0; rep < 2; rep++) {
      size_t hit = 0;
      double c0 = cpu_ns();
      auto w0 = std::chrono::steady_clock::now();
      for (size_t i = 0; i < nq; i++) {
        idx->search(&q[i * d], 1, p, ids.data(), dist.data());
        std::unordered_set<int> truth(&gt[i * gk], &gt[i * gk] + k);
        for (size_t j = 0; j < k; j++) hit += truth.count(int(ids[j]));
      }
      double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - w0).count();
      double cpu = (cpu_ns() - c0) / 1e9;
      std::printf("nprobe=%zu kFactor=%zu recall@10=%.4f QPS(wall)=%.0f QPS(cpu)=%.0f\n", p.nprobe, p.kfactor,
                  double(hit) / double(nq * k), nq / wall, nq / cpu);
    }
  }
}
