#include "vector_index.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <unordered_set>

#include "../utils/parallel.h"
#include "../utils/simd.h"
#include "../utils/topk.h"
#include "store.h"

namespace winnow {

namespace {
constexpr size_t kMaxDim = 65536;

// Opt-in phase timing (WINNOW_PROFILE=1) for tuning; printed at exit. Off by default.
struct PhaseProfile {
  bool on = std::getenv("WINNOW_PROFILE") != nullptr;
  std::atomic<uint64_t> ns[6] = {};
  std::atomic<uint64_t> queries{0};
  ~PhaseProfile() {
    if (!on || !queries) return;
    const char* names[6] = {"transform", "coarse", "lut", "scan", "refine", "total"};
    for (int i = 0; i < 6; i++)
      std::fprintf(stderr, "winnow profile %-9s %8.2f us/query\n", names[i], double(ns[i]) / 1000.0 / double(queries));
  }
};
PhaseProfile g_prof;
inline uint64_t now_ns() {
  return uint64_t(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}
std::string num(size_t v) { return std::to_string(v); }
}  // namespace

double VectorIndex::brute_filter_work() {
  static const double v = [] {
    const char* e = std::getenv("WINNOW_FILTER_BRUTE_WORK");
    return e ? std::atof(e) : 3e5;
  }();
  return v;
}

VectorIndex::VectorIndex(const IndexConfig& cfg) : cfg_(cfg) {
  if (cfg_.d == 0 || cfg_.d > kMaxDim) throw std::invalid_argument("dim must be between 1 and " + num(kMaxDim));
  // Default reduced dimension, measured: embedding models with a decaying spectrum
  // (wordnet-use-512, fashion-mnist-784) keep recall at d/4, while low-dimensional,
  // flat-spectrum data (glove-100) loses half its recall even at d/2, so small d keeps
  // every dimension (the transform is then only a variance-balancing rotation).
  if (cfg_.dr == 0) cfg_.dr = cfg_.d <= 128 ? (cfg_.d + 3) / 4 * 4 : std::max<size_t>(4, (cfg_.d / 4) / 4 * 4);
  size_t dr_max = std::min<size_t>(512, std::max<size_t>(4, (cfg_.d + 3) / 4 * 4));
  if (cfg_.dr % 4 != 0 || cfg_.dr > dr_max)
    throw std::invalid_argument("reducedDim must be a multiple of 4 and at most " + num(dr_max) + ", got " +
                                num(cfg_.dr));
  auto s = std::make_shared<Store>();
  s->vs = std::make_shared<VectorStore>(cfg_.d, cfg_.f16);
  store_ = s;
}

VectorIndex::~VectorIndex() = default;

std::shared_ptr<Store> VectorIndex::snapshot() const { return std::atomic_load(&store_); }
bool VectorIndex::trained() const { return snapshot()->ins != nullptr; }
size_t VectorIndex::size() const {
  auto s = snapshot();
  return s->vs->published() - s->vs->n_dead();
}
size_t VectorIndex::nlist() const {
  auto s = snapshot();
  return s->ins ? s->ins->nlist : cfg_.nlist;
}
std::shared_ptr<const Params> VectorIndex::search_params() const { return std::atomic_load(&search_params_); }
std::shared_ptr<const Params> VectorIndex::insert_params() const { return snapshot()->ins; }
std::shared_ptr<const Store> VectorIndex::contents() const { return snapshot(); }

void VectorIndex::set_search_params(std::shared_ptr<const Params> p) {
  std::lock_guard lk(writer_mu_);
  auto ins = snapshot()->ins;
  if (!ins) throw std::logic_error("setSearchParams: index is not trained");
  if (!p) throw std::invalid_argument("setSearchParams: null params");
  p->check_compatible(*ins);
  std::atomic_store(&search_params_, p);
}

void VectorIndex::reset_search_params() {
  std::lock_guard lk(writer_mu_);
  std::atomic_store(&search_params_, snapshot()->ins);
}

void VectorIndex::validate_vectors(const float* x, size_t n, const char* what) const {
  for (size_t i = 0; i < n; i++) {
    const float* v = x + i * cfg_.d;
    double nn = 0;
    for (size_t t = 0; t < cfg_.d; t++) {
      if (!std::isfinite(v[t]))
        throw std::invalid_argument(std::string(what) + ": vector " + num(i) + " has a non-finite component at " +
                                    num(t));
      nn += double(v[t]) * v[t];
    }
    if (cfg_.metric == Metric::COS && nn == 0)
      throw std::invalid_argument(std::string(what) + ": vector " + num(i) +
                                  " is all zeros, which has no cosine direction");
    if (!std::isfinite(nn)) throw std::invalid_argument(std::string(what) + ": vector " + num(i) + " overflows");
  }
}

void VectorIndex::prepare(const float* in, float* out) const {
  std::copy(in, in + cfg_.d, out);
  if (cfg_.metric == Metric::COS) {
    double nn = 0;
    for (size_t t = 0; t < cfg_.d; t++) nn += double(in[t]) * in[t];
    float inv = float(1.0 / std::sqrt(nn));
    for (size_t t = 0; t < cfg_.d; t++) out[t] *= inv;
  }
}

namespace {
void row_to_float(const VectorStore& vs, uint32_t id, float* out) {
  const void* r = vs.row(id);
  if (vs.f16()) {
    const uint16_t* h = static_cast<const uint16_t*>(r);
    for (size_t t = 0; t < vs.dim(); t++) out[t] = half_to_float(h[t]);
  } else {
    std::memcpy(out, r, vs.dim() * 4);
  }
}
}  // namespace

void VectorIndex::train(const float* x, size_t n, const Progress& progress, size_t nthreads, size_t want_nlist) {
  validate_vectors(x, n, "train");
  std::lock_guard lk(writer_mu_);
  auto s = snapshot();
  if (s->ins) throw std::logic_error("train: index is already trained");
  // Default nlist ~0.75·sqrt(n), measured on wordnet-use-512 (116k, dr 128, float16):
  // 256 lists reach recall@10 0.95 at the same QPS as 512 (nprobe 20 vs 24, kFactor 5)
  // and beat 1024 and 1366 (= 4·sqrt(n)); fast-scan makes long lists cheap while the
  // reduced-space probe and the k-means build scale with nlist (build 5 s vs 9.5 s).
  size_t nlist = cfg_.nlist ? cfg_.nlist
                 : want_nlist ? want_nlist
                              : std::max<size_t>(1, std::min<size_t>(n / 39, size_t(0.75 * std::sqrt(double(n)) + 0.5)));
  if (n < nlist || n == 0)
    throw std::invalid_argument("train: need at least nlist (" + num(nlist) + ") sample vectors, got " + num(n));
  std::vector<float> xs(n * cfg_.d);
  for (size_t i = 0; i < n; i++) prepare(x + i * cfg_.d, &xs[i * cfg_.d]);
  TrainConfig tc{cfg_.d, cfg_.dr, nlist, cfg_.metric, cfg_.seed, nthreads};
  auto P = train_params(xs.data(), n, tc, progress);
  xs.clear();
  xs.shrink_to_fit();
  auto lists = std::make_shared<InvLists>(nlist, P->m);
  // Vectors added before training get encoded now, in bounded batches.
  const uint32_t npub = s->vs->published();
  const size_t B = 8192;
  std::vector<uint32_t> ids;
  std::vector<float> rows, red;
  std::vector<uint32_t> li;
  std::vector<uint8_t> codes;
  for (uint32_t b = 0; b < npub; b += B) {
    if (progress) progress("encode", b, npub);
    ids.clear();
    for (uint32_t id = b; id < std::min<uint32_t>(npub, b + B); id++)
      if (!s->vs->dead(id)) ids.push_back(id);
    rows.resize(ids.size() * cfg_.d);
    red.resize(ids.size() * cfg_.dr);
    for (size_t i = 0; i < ids.size(); i++) row_to_float(*s->vs, ids[i], &rows[i * cfg_.d]);
    parallel_for(ids.size(), nthreads, [&](size_t bb, size_t e, size_t) {
      for (size_t i = bb; i < e; i++) P->transform(&rows[i * cfg_.d], &red[i * cfg_.dr], true);
    });
    li.resize(ids.size());
    codes.resize(ids.size() * P->m);
    encode_reduced(*P, red.data(), ids.size(), li.data(), codes.data(), nthreads);
    for (size_t i = 0; i < ids.size(); i++) lists->append_unlocked(li[i], &ids[i], &codes[i * P->m], 1);
  }
  if (progress) progress("encode", npub, npub);
  auto ns = std::make_shared<Store>();
  ns->vs = s->vs;
  ns->ins = P;
  ns->lists = lists;
  std::atomic_store(&search_params_, std::shared_ptr<const Params>(P));
  std::atomic_store(&store_, ns);
}

void VectorIndex::add(const int64_t* ext, const float* x, size_t n, size_t nthreads) {
  if (n == 0) return;
  validate_vectors(x, n, "add");
  {
    std::unordered_set<int64_t> seen;
    seen.reserve(n * 2);
    for (size_t i = 0; i < n; i++)
      if (!seen.insert(ext[i]).second) throw std::invalid_argument("add: id " + std::to_string(ext[i]) + " appears twice in one batch");
  }
  std::vector<float> xs(n * cfg_.d);
  for (size_t i = 0; i < n; i++) prepare(x + i * cfg_.d, &xs[i * cfg_.d]);

  std::lock_guard lk(writer_mu_);
  auto s = snapshot();
  VectorStore& vs = *s->vs;
  const uint32_t base = vs.published();
  if (uint64_t(base) + n > uint64_t(VectorStore::kChunk) * VectorStore::kMaxChunks || uint64_t(base) + n > 0xFFFFFFF0ull)
    throw std::length_error("add: index capacity exceeded; compact() or use another index");
  std::vector<uint32_t> li;
  std::vector<uint8_t> codes;
  if (s->ins) {
    const Params& P = *s->ins;
    std::vector<float> red(n * P.dr);
    parallel_for(n, nthreads, [&](size_t b, size_t e, size_t) {
      for (size_t i = b; i < e; i++) P.transform(&xs[i * cfg_.d], &red[i * P.dr], true);
    });
    li.resize(n);
    codes.resize(n * P.m);
    encode_reduced(P, red.data(), n, li.data(), codes.data(), nthreads);
  }
  // Nothing below can fail except allocation. Old versions die first so no reader
  // ever sees two live versions of one id.
  std::vector<uint32_t> old;
  {
    std::shared_lock ml(vs.map_mu);
    for (size_t i = 0; i < n; i++) {
      auto it = vs.map.find(ext[i]);
      if (it != vs.map.end()) old.push_back(it->second);
    }
  }
  for (uint32_t o : old) vs.kill(o);
  for (size_t i = 0; i < n; i++) vs.write(base + uint32_t(i), ext[i], &xs[i * cfg_.d]);
  {
    // Map before publish: a reader that sees a slot published (under map_mu) also sees its map
    // entry, which a PreparedFilter's one-time build relies on (id_filter.h).
    std::unique_lock ml(vs.map_mu);
    for (size_t i = 0; i < n; i++) vs.map[ext[i]] = base + uint32_t(i);
  }
  vs.publish(base + uint32_t(n));
  if (s->ins) {
    // Group by list so each list lock is taken once, briefly.
    std::vector<uint32_t> order(n);
    for (size_t i = 0; i < n; i++) order[i] = uint32_t(i);
    std::stable_sort(order.begin(), order.end(), [&](uint32_t a, uint32_t b) { return li[a] < li[b]; });
    std::vector<uint32_t> gids;
    std::vector<uint8_t> gcodes;
    const size_t m = s->ins->m;
    for (size_t i = 0; i < n;) {
      size_t j = i;
      gids.clear();
      gcodes.clear();
      while (j < n && li[order[j]] == li[order[i]]) {
        gids.push_back(base + order[j]);
        gcodes.insert(gcodes.end(), &codes[order[j] * m], &codes[order[j] * m] + m);
        j++;
      }
      s->lists->append(li[order[i]], gids.data(), gcodes.data(), gids.size());
      i = j;
    }
  }
}

size_t VectorIndex::remove(const int64_t* ext, size_t n) {
  std::lock_guard lk(writer_mu_);
  auto s = snapshot();
  VectorStore& vs = *s->vs;
  size_t removed = 0;
  std::unique_lock ml(vs.map_mu);
  for (size_t i = 0; i < n; i++) {
    auto it = vs.map.find(ext[i]);
    if (it == vs.map.end()) continue;
    vs.kill(it->second);
    vs.map.erase(it);
    removed++;
  }
  return removed;
}

// Rebuilds storage without tombstones (ids renumbered densely, list order kept) and
// swaps it in; concurrent searches finish on the old snapshot.
void VectorIndex::compact() {
  std::lock_guard lk(writer_mu_);
  auto s = snapshot();
  const VectorStore& old = *s->vs;
  auto nvs = std::make_shared<VectorStore>(cfg_.d, cfg_.f16);
  const uint32_t npub = old.published();
  std::vector<uint32_t> remap(npub, UINT32_MAX);
  uint32_t next = 0;
  nvs->map.reserve(npub - old.n_dead());
  for (uint32_t id = 0; id < npub; id++) {
    if (old.dead(id)) continue;
    nvs->write_raw(next, old.ext(id), old.row(id), false);
    nvs->map[old.ext(id)] = next;
    remap[id] = next++;
  }
  nvs->publish(next);
  auto ns = std::make_shared<Store>();
  ns->vs = nvs;
  ns->ins = s->ins;
  if (s->lists) {
    const size_t m = s->ins->m, bb = block_bytes(m);
    auto nl = std::make_shared<InvLists>(s->lists->nlist(), m);
    std::vector<uint8_t> code(m);
    for (size_t l = 0; l < nl->nlist(); l++) {
      const InvList& L = s->lists->list(l);
      std::shared_lock ll(L.mu);
      for (size_t i = 0; i < L.ids.size(); i++) {
        uint32_t nid = remap[L.ids[i]];
        if (nid == UINT32_MAX) continue;
        const uint8_t* blk = L.codes.data() + (i / 32) * bb;
        for (size_t j = 0; j < m; j++) code[j] = get_code(blk, i % 32, j);
        nl->append_unlocked(l, &nid, code.data(), 1);
      }
    }
    ns->lists = nl;
  }
  std::atomic_store(&store_, ns);
}

float VectorIndex::score(const VectorStore& vs, const float* q, uint32_t id) const {
  const Kernels& K = active_kernels();
  const void* r = vs.row(id);
  if (cfg_.metric == Metric::L2)
    return vs.f16() ? K.l2sq_f16(q, static_cast<const uint16_t*>(r), cfg_.d)
                    : K.l2sq(q, static_cast<const float*>(r), cfg_.d);
  return -(vs.f16() ? K.dot_f16(q, static_cast<const uint16_t*>(r), cfg_.d)
                    : K.dot(q, static_cast<const float*>(r), cfg_.d));
}

// pgvector operator semantics: <-> Euclidean, <#> negative inner product, <=> 1 - cos.
float VectorIndex::finish(float s) const {
  switch (cfg_.metric) {
    case Metric::L2: return std::sqrt(std::max(0.f, s));
    case Metric::IP: return s;
    default: return 1.f + s;
  }
}

IdFilter VectorIndex::build_filter(const Store& s, const SearchParamsIn& p) const {
  IdFilter f;
  const VectorStore& vs = *s.vs;
  const uint32_t npub = vs.published();
  f.bits.assign((npub + 63) / 64, 0);
  if (p.filter_ext) {
    std::shared_lock ml(vs.map_mu);
    for (size_t i = 0; i < p.filter_n; i++) {
      auto it = vs.map.find(p.filter_ext[i]);
      if (it != vs.map.end() && it->second < npub) f.bits[it->second >> 6] |= uint64_t(1) << (it->second & 63);
    }
  } else if (!p.filter_bits) {
    return f;  // has_filter with empty list: nothing allowed
  }
  if (p.filter_bits) {
    for (size_t w = 0; w < f.bits.size(); w++) {
      uint64_t b = w < p.filter_bits_words ? p.filter_bits[w] : 0;
      f.bits[w] = p.filter_ext ? (f.bits[w] & b) : b;
    }
    if (!f.bits.empty() && (npub & 63)) f.bits.back() &= (uint64_t(1) << (npub & 63)) - 1;
  }
  for (size_t w = 0; w < f.bits.size(); w++)
    for (uint64_t b = f.bits[w]; b; b &= b - 1) {
      uint32_t id = uint32_t(w * 64 + __builtin_ctzll(b));
      if (!vs.dead(id)) f.ids.push_back(id);
    }
  return f;
}

const IdFilter* VectorIndex::filter_for(const Store& s, const SearchParamsIn& p, IdFilter& local,
                                        std::shared_ptr<const IdFilter>& held) const {
  if (p.prepared) {
    held = p.prepared->for_store(s);
    return held.get();
  }
  if (!p.has_filter) return nullptr;
  local = build_filter(s, p);
  return &local;
}

void VectorIndex::brute_one(const Store& s, const float* q, size_t k, const IdFilter* f, int64_t* out_ids,
                            float* out_dist) const {
  const VectorStore& vs = *s.vs;
  TopK top(k);
  if (f) {
    for (uint32_t id : f->ids)
      if (!vs.dead(id)) top.push(score(vs, q, id), id);
  } else {
    const uint32_t npub = vs.published();
    for (uint32_t id = 0; id < npub; id++)
      if (!vs.dead(id)) top.push(score(vs, q, id), id);
  }
  auto r = top.take_sorted();
  for (size_t i = 0; i < k; i++) {
    out_ids[i] = i < r.size() ? vs.ext(r[i].id) : -1;
    out_dist[i] = i < r.size() ? finish(r[i].dist) : std::numeric_limits<float>::infinity();
  }
}

void VectorIndex::brute_force(const float* q, size_t nq, const SearchParamsIn& p, int64_t* out_ids,
                              float* out_dist) const {
  if (p.k == 0) throw std::invalid_argument("k must be a positive integer");
  validate_vectors(q, nq, "query");
  auto s = snapshot();
  IdFilter f;
  std::shared_ptr<const IdFilter> held;
  const IdFilter* fp = filter_for(*s, p, f, held);
  const size_t nth = std::max<size_t>(1, p.nthreads);
  if (nq >= nth || nth == 1) {
    parallel_for(nq, nth, [&](size_t b, size_t e, size_t) {
      std::vector<float> qq(cfg_.d);
      for (size_t i = b; i < e; i++) {
        prepare(q + i * cfg_.d, qq.data());
        brute_one(*s, qq.data(), p.k, fp, out_ids + i * p.k, out_dist + i * p.k);
      }
    });
    return;
  }
  // Few queries: split the collection across threads instead, then merge.
  const VectorStore& vs = *s->vs;
  const uint32_t npub = vs.published();
  const size_t total = fp ? fp->ids.size() : npub;
  std::vector<float> qq(cfg_.d);
  for (size_t i = 0; i < nq; i++) {
    prepare(q + i * cfg_.d, qq.data());
    std::vector<std::vector<Scored>> parts(nth);
    parallel_for(total, nth, [&](size_t b, size_t e, size_t t) {
      TopK top(p.k);
      for (size_t j = b; j < e; j++) {
        uint32_t id = fp ? fp->ids[j] : uint32_t(j);
        if (!vs.dead(id)) top.push(score(vs, qq.data(), id), id);
      }
      parts[t] = top.take_sorted();
    });
    TopK top(p.k);
    for (auto& part : parts)
      for (auto& c : part) top.push(c.dist, c.id);
    auto r = top.take_sorted();
    for (size_t j = 0; j < p.k; j++) {
      out_ids[i * p.k + j] = j < r.size() ? vs.ext(r[j].id) : -1;
      out_dist[i * p.k + j] = j < r.size() ? finish(r[j].dist) : std::numeric_limits<float>::infinity();
    }
  }
}

void VectorIndex::search(const float* q, size_t nq, const SearchParamsIn& p, int64_t* out_ids, float* out_dist) const {
  if (p.k == 0) throw std::invalid_argument("k must be a positive integer");
  if (p.nprobe == 0) throw std::invalid_argument("nprobe must be a positive integer");
  if (p.kfactor == 0) throw std::invalid_argument("kFactor must be a positive integer");
  auto s = snapshot();
  auto sp = search_params();
  if (!s->ins || !sp) {  // untrained: exact search (documented)
    brute_force(q, nq, p, out_ids, out_dist);
    return;
  }
  search_on(*s, sp.get(), q, nq, p, out_ids, out_dist);
}

void VectorIndex::search_with(const Params& sp, const float* q, size_t nq, const SearchParamsIn& p, int64_t* out_ids,
                              float* out_dist) const {
  if (p.k == 0 || p.nprobe == 0 || p.kfactor == 0) throw std::invalid_argument("k, nprobe and kFactor must be positive");
  auto s = snapshot();
  if (!s->ins) throw std::logic_error("search_with: index is not trained");
  sp.check_compatible(*s->ins);
  search_on(*s, &sp, q, nq, p, out_ids, out_dist);
}

void VectorIndex::search_on(const Store& st, const Params* sp, const float* q, size_t nq, const SearchParamsIn& p,
                            int64_t* out_ids, float* out_dist) const {
  const Store* s = &st;
  validate_vectors(q, nq, "query");
  IdFilter f;
  std::shared_ptr<const IdFilter> held;
  const IdFilter* fp = filter_for(*s, p, f, held);
  parallel_for(nq, std::max<size_t>(1, p.nthreads), [&](size_t b, size_t e, size_t) {
    std::vector<float> qq(cfg_.d);
    for (size_t i = b; i < e; i++) {
      prepare(q + i * cfg_.d, qq.data());
      search_one(*s, sp, qq.data(), p, fp, out_ids + i * p.k, out_dist + i * p.k);
    }
  });
}

// Fast-scans n codes (blocks of 32, the last one padded) and offers every entry whose code distance
// is within the candidates' threshold, allowed by f when given, and live to the candidates.
void VectorIndex::scan_codes(const uint8_t* codes, const uint32_t* ids, size_t n, size_t m, const uint8_t* lut,
                             const IdFilter* f, std::vector<uint16_t>& acc, std::vector<uint32_t>& masks,
                             Reservoir& cand, const VectorStore& vs) const {
  if (n == 0) return;
  const size_t nb = (n + 31) / 32;
  if (acc.size() < nb * 32) acc.resize(nb * 32);
  if (masks.size() < nb) masks.resize(nb);
  active_kernels().fastscan_mask(codes, nb, m, lut, uint16_t(std::min<uint32_t>(cand.threshold(), 65535)), acc.data(),
                                 masks.data());
  for (size_t b = 0; b < nb; b++) {
    uint32_t mask = masks[b];
    if (b == nb - 1 && (n & 31)) mask &= (uint32_t(1) << (n & 31)) - 1;  // padding slots
    for (; mask; mask &= mask - 1) {
      const size_t i = b * 32 + size_t(__builtin_ctz(mask));
      const uint32_t a = acc[i], id = ids[i];
      if (a > cand.threshold() || (f && !f->allows(id)) || vs.dead(id)) continue;
      cand.push(a, id);
    }
  }
}

// One list's filtered scan with a prepared filter. Its compact copy of the list's allowed entries
// (IdFilter::compact), when it has one, is scanned whole and stands for the blocks the masks describe;
// otherwise only runs of blocks holding an allowed entry go through the fast-scan kernel (the
// threshold tightens between runs). Blocks past the masks (appended since) are checked entry by
// entry. Either way only allowed entries reach the candidate checks.
void VectorIndex::scan_allowed(const InvList& L, const IdFilter& f, size_t list, size_t m, const uint8_t* lut,
                               std::vector<uint16_t>& acc, std::vector<uint32_t>& masks, std::vector<uint32_t>& allow,
                               Reservoir& cand, const VectorStore& vs) const {
  const Kernels& K = active_kernels();
  const std::vector<uint32_t>& bm = f.block_masks[list];
  const size_t n = L.ids.size(), nb = (n + 31) / 32, bb = block_bytes(m);
  const uint32_t* ids = L.ids.data();
  size_t first = 0;
  if (f.compact) {
    const std::vector<uint32_t>& cids = f.compact->ids[list];
    scan_codes(f.compact->codes[list].data(), cids.data(), cids.size(), m, lut, nullptr, acc, masks, cand, vs);
    first = bm.size();
  }
  allow.resize(nb);
  for (size_t b = first; b < nb; b++)
    allow[b] = b < bm.size() ? bm[b] : f.mask_of(ids + b * 32, std::min<size_t>(32, n - b * 32));
  for (size_t b = first; b < nb;) {
    if (!allow[b]) {
      b++;
      continue;
    }
    size_t e = b + 1;
    while (e < nb && allow[e]) e++;
    K.fastscan_mask(L.codes.data() + b * bb, e - b, m, lut, uint16_t(std::min<uint32_t>(cand.threshold(), 65535)),
                    acc.data() + b * 32, masks.data() + b);
    for (; b < e; b++) {
      for (uint32_t mask = masks[b] & allow[b]; mask; mask &= mask - 1) {
        const size_t i = b * 32 + size_t(__builtin_ctz(mask));
        const uint32_t a = acc[i];
        if (a > cand.threshold() || vs.dead(ids[i])) continue;
        cand.push(a, ids[i]);
      }
    }
  }
}

// Filter stage (HAKES §3.1): probe IVF lists in reduced space, score 4-bit codes with
// quantised LUTs, keep k*kFactor candidates; refine stage: exact distances on stored
// vectors. Tombstoned or filtered-out entries are skipped inside the scan and probing
// continues past nprobe until enough candidates exist, so k results come back
// whenever k qualifying vectors exist.
void VectorIndex::search_one(const Store& s, const Params* sp, const float* q, const SearchParamsIn& p,
                             const IdFilter* f, int64_t* out_ids, float* out_dist) const {
  const size_t k = p.k, kprime = std::max(k, k * p.kfactor);
  const double limit = p.brute_limit == SIZE_MAX ? brute_filter_work() / double(cfg_.d) : double(p.brute_limit);
  if (f && (f->ids.size() <= kprime || double(f->ids.size()) <= limit)) {
    brute_one(s, q, k, f, out_ids, out_dist);
    return;
  }
  const bool prof = g_prof.on;
  uint64_t t0 = prof ? now_ns() : 0, tp = t0;
  auto mark = [&](int phase) {
    if (!prof) return;
    uint64_t t = now_ns();
    g_prof.ns[phase] += t - tp;
    tp = t;
  };
  const Kernels& K = active_kernels();
  const VectorStore& vs = *s.vs;
  const size_t dr = sp->dr, m = sp->m, nlist = sp->nlist;
  const bool ip = cfg_.metric == Metric::IP;
  std::vector<float> qr(dr);
  sp->transform(q, qr.data(), !ip);
  mark(0);

  std::vector<Scored> coarse(nlist);
  for (size_t c = 0; c < nlist; c++) {
    const float* cen = &sp->centroids[c * dr];
    coarse[c] = {ip ? -K.dot(qr.data(), cen, dr) : K.l2sq(qr.data(), cen, dr), uint32_t(c)};
  }
  size_t nprobe = std::min(p.nprobe, nlist);
  if (nprobe < nlist) std::nth_element(coarse.begin(), coarse.begin() + nprobe, coarse.end(), ScoredLess());
  std::sort(coarse.begin(), coarse.begin() + nprobe, ScoredLess());
  mark(1);

  // LUT quantised to uint8 with one global scale (sum of m entries fits uint16 for m <= 256).
  std::vector<float> lutf(m * 16);
  float bias = 0, maxrange = 0;
  for (size_t j = 0; j < m; j++) {
    const float* cb = &sp->codebooks[j * 32];
    float mn = std::numeric_limits<float>::infinity(), mx = -mn;
    for (int c = 0; c < 16; c++) {
      float v;
      if (ip) {
        v = -(qr[2 * j] * cb[2 * c] + qr[2 * j + 1] * cb[2 * c + 1]);
      } else {
        float a = qr[2 * j] - cb[2 * c], b = qr[2 * j + 1] - cb[2 * c + 1];
        v = a * a + b * b;
      }
      lutf[j * 16 + c] = v;
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    for (int c = 0; c < 16; c++) lutf[j * 16 + c] -= mn;
    bias += mn;
    maxrange = std::max(maxrange, mx - mn);
  }
  (void)bias;  // ranking uses the integer sums; exact distances come from refinement
  const float scale = maxrange > 0 ? 255.f / maxrange : 0.f;
  alignas(32) uint8_t lut[256 * 16];
  for (size_t i = 0; i < m * 16; i++) lut[i] = uint8_t(std::min(255.f, lutf[i] * scale + 0.5f));  // values are >= 0: truncation rounds

  mark(2);
  Reservoir cand(kprime);
  std::vector<uint16_t> acc;
  std::vector<uint32_t> masks, allow;
  for (size_t pi = 0; pi < nlist; pi++) {
    if (pi >= nprobe && cand.size() >= kprime) break;
    if (pi == nprobe) std::sort(coarse.begin() + nprobe, coarse.end(), ScoredLess());
    const InvList& L = s.lists->list(coarse[pi].id);
    std::shared_lock ll(L.mu);
    const size_t n = L.ids.size();
    if (n == 0) continue;
    const size_t nb = (n + 31) / 32;
    acc.resize(nb * 32);
    masks.resize(nb);
    if (f && f->block_masks.size() == nlist)
      scan_allowed(L, *f, coarse[pi].id, m, lut, acc, masks, allow, cand, vs);
    else
      scan_codes(L.codes.data(), L.ids.data(), n, m, lut, f, acc, masks, cand, vs);
  }
  mark(3);
  // Refine on full vectors; rows are random reads, so prefetch a few candidates ahead.
  const std::vector<Scored>& cl = cand.finish();
  const size_t row_bytes = cfg_.d * vs.elem_bytes();
  // Rows are far apart in memory: first ask for every candidate row into L2 (many
  // misses in flight), then pull the next rows into L1 just ahead of use.
  auto prefetch_row = [&](uint32_t id, bool l1) {
    const char* r = static_cast<const char*>(vs.row(id));
    for (size_t o = 0; o < row_bytes; o += 64) {
      if (l1)
        __builtin_prefetch(r + o, 0, 3);
      else
        __builtin_prefetch(r + o, 0, 1);
    }
  };
  constexpr size_t kAhead = 2;
  for (size_t i = kAhead; i < cl.size(); i++) prefetch_row(cl[i].id, false);
  for (size_t i = 0; i < std::min(kAhead, cl.size()); i++) prefetch_row(cl[i].id, true);
  TopK top(k);
  for (size_t i = 0; i < cl.size(); i++) {
    if (i + kAhead < cl.size()) prefetch_row(cl[i + kAhead].id, true);
    if (!vs.dead(cl[i].id)) top.push(score(vs, q, cl[i].id), cl[i].id);
  }
  auto r = top.take_sorted();
  for (size_t i = 0; i < k; i++) {
    out_ids[i] = i < r.size() ? vs.ext(r[i].id) : -1;
    out_dist[i] = i < r.size() ? finish(r[i].dist) : std::numeric_limits<float>::infinity();
  }
  if (prof) {
    mark(4);
    g_prof.ns[5] += tp - t0;
    g_prof.queries++;
  }
}

VectorIndex::Stats VectorIndex::stats() const {
  auto s = snapshot();
  Stats st{};
  st.count = s->vs->published() - s->vs->n_dead();
  st.deleted = s->vs->n_dead();
  st.d = cfg_.d;
  st.dr = cfg_.dr;
  st.nlist = s->ins ? s->ins->nlist : cfg_.nlist;
  st.filter_bytes = double(cfg_.dr) / 4.0;
  double total = double(s->vs->published()) * (double(cfg_.d) * s->vs->elem_bytes() + 8 + 1) +
                 (s->lists ? double(s->lists->bytes()) : 0.0) + double(st.count) * 24.0 /* id map entry, approx */;
  st.total_bytes = st.count ? total / double(st.count) : 0.0;
  return st;
}

}  // namespace winnow
