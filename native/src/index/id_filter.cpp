#include "id_filter.h"

#include <algorithm>
#include <atomic>
#include <shared_mutex>

#include "store.h"

namespace winnow {

PreparedFilter::PreparedFilter(const int64_t* ext, size_t n) : sorted_(ext, ext + n), n_(n) {
  std::sort(sorted_.begin(), sorted_.end());
  sorted_.erase(std::unique(sorted_.begin(), sorted_.end()), sorted_.end());
}

namespace {
std::atomic<size_t> g_compact_bytes{0};

// Reserves `bytes` of the compact-lists budget; false when they do not fit.
bool reserve_compact(size_t bytes) {
  size_t used = g_compact_bytes.load();
  do {
    if (used + bytes > kCompactBudgetBytes) return false;
  } while (!g_compact_bytes.compare_exchange_weak(used, used + bytes));
  return true;
}

// Copies each list's allowed entries (the set bits of its block masks) into fast-scan blocks of their
// own. Lists are read under their shared locks; the entries masks describe are never rewritten (lists
// only grow, and compact/train swap in new lists, which rebuilds the filter).
std::shared_ptr<const CompactLists> build_compact(const InvLists& lists, const std::vector<std::vector<uint32_t>>& masks) {
  const size_t m = lists.m(), bb = block_bytes(m);
  std::vector<size_t> counts(masks.size(), 0);
  size_t bytes = 0;
  for (size_t l = 0; l < masks.size(); l++) {
    for (uint32_t w : masks[l]) counts[l] += size_t(__builtin_popcount(w));
    bytes += (counts[l] + 31) / 32 * bb + counts[l] * sizeof(uint32_t);
  }
  if (!reserve_compact(bytes)) return nullptr;
  auto c = std::make_shared<CompactLists>();
  c->bytes = bytes;
  c->codes.resize(masks.size());
  c->ids.resize(masks.size());
  for (size_t l = 0; l < masks.size(); l++) {
    if (!counts[l]) continue;
    const InvList& L = lists.list(l);
    std::shared_lock ll(L.mu);
    auto& codes = c->codes[l];
    auto& ids = c->ids[l];
    codes.assign((counts[l] + 31) / 32 * bb, 0);
    ids.reserve(counts[l]);
    for (size_t b = 0; b < masks[l].size(); b++) {
      const uint8_t* src = L.codes.data() + b * bb;
      for (uint32_t w = masks[l][b]; w; w &= w - 1) {
        const size_t slot = size_t(__builtin_ctz(w)), to = ids.size();
        uint8_t* dst = codes.data() + (to / 32) * bb;
        for (size_t j = 0; j < m; j++) set_code(dst, to % 32, j, get_code(src, slot, j));
        ids.push_back(L.ids[b * 32 + slot]);
      }
    }
  }
  return c;
}

// Owner comparison: a freed object's address may be reused by a new one, its control block not.
template <typename T>
bool same_owner(const std::weak_ptr<T>& a, const std::shared_ptr<T>& b) {
  return !a.owner_before(b) && !b.owner_before(a);
}
}  // namespace

std::shared_ptr<const IdFilter> PreparedFilter::for_store(const Store& s) const {
  const std::shared_ptr<VectorStore>& vs = s.vs;
  std::lock_guard lk(mu_);
  uint32_t npub = vs->published();
  const bool same = built_ && same_owner(store_, vs);
  // Train and compact swap in new lists; untrained stores have none.
  const bool same_lists = built_ && (s.lists ? same_owner(lists_, s.lists) : built_->block_masks.empty());
  if (same && same_lists && npub == npub_) return built_;
  auto f = std::make_shared<IdFilter>();
  if (same && npub > npub_) {
    // Appended rows only (inserts, and updates: the new version of an id lives in a new slot; its
    // old slot is tombstoned). Slots are written before publish(), so ext() is readable up to npub.
    *f = *built_;
    f->bits.resize((npub + 63) / 64, 0);
    for (uint32_t id = npub_; id < npub; id++) {
      if (!std::binary_search(sorted_.begin(), sorted_.end(), vs->ext(id))) continue;
      f->bits[id >> 6] |= uint64_t(1) << (id & 63);
      f->ids.push_back(id);
    }
    extensions_++;
  } else {
    // One lookup per allowed id. The count is read under map_mu: add() maps a batch before
    // publishing it, so every slot below it that holds the live version of an id is mapped; later
    // slots are found by the extension above.
    std::shared_lock ml(vs->map_mu);
    npub = vs->published();
    f->bits.assign((npub + 63) / 64, 0);
    for (int64_t e : sorted_) {
      auto it = vs->map.find(e);
      if (it != vs->map.end() && it->second < npub) f->bits[it->second >> 6] |= uint64_t(1) << (it->second & 63);
    }
    ml.unlock();
    f->ids.reserve(sorted_.size());
    for (size_t w = 0; w < f->bits.size(); w++)
      for (uint64_t b = f->bits[w]; b; b &= b - 1) f->ids.push_back(uint32_t(w * 64 + __builtin_ctzll(b)));
    builds_++;
  }
  if (!same_lists) {
    // One pass over every list's ids; a list's tail block (and later appends) is left to the scan.
    f->block_masks.clear();
    if (s.lists) {
      f->block_masks.resize(s.lists->nlist());
      for (size_t l = 0; l < s.lists->nlist(); l++) {
        const InvList& L = s.lists->list(l);
        std::shared_lock ll(L.mu);
        auto& bm = f->block_masks[l];
        bm.resize(L.ids.size() / 32);
        for (size_t b = 0; b < bm.size(); b++) {
          // A block holding a row published after `npub` (an add racing this build) is left to the
          // scan: the extension above never revisits masks.
          const uint32_t* ids = L.ids.data() + b * 32;
          if (*std::max_element(ids, ids + 32) >= npub) {
            bm.resize(b);
            break;
          }
          bm[b] = f->mask_of(ids, 32);
        }
      }
    }
    f->compact.reset();
    if (s.lists && double(f->ids.size()) <= kCompactMaxFraction * double(npub)) {
      f->compact = build_compact(*s.lists, f->block_masks);
      if (f->compact) compactions_++;
    }
    lists_ = s.lists;
  }
  store_ = vs;
  npub_ = npub;
  built_ = std::move(f);
  return built_;
}

CompactLists::~CompactLists() { g_compact_bytes -= bytes; }

size_t compact_lists_bytes() { return g_compact_bytes.load(); }

size_t PreparedFilter::compactions() const {
  std::lock_guard lk(mu_);
  return compactions_;
}

size_t PreparedFilter::builds() const {
  std::lock_guard lk(mu_);
  return builds_;
}
size_t PreparedFilter::extensions() const {
  std::lock_guard lk(mu_);
  return extensions_;
}

}  // namespace winnow
