#include "id_filter.h"

#include <algorithm>

namespace winnow {

PreparedFilter::PreparedFilter(const int64_t* ext, size_t n) : sorted_(ext, ext + n), n_(n) {
  std::sort(sorted_.begin(), sorted_.end());
  sorted_.erase(std::unique(sorted_.begin(), sorted_.end()), sorted_.end());
}

std::shared_ptr<const IdFilter> PreparedFilter::for_store(const std::shared_ptr<VectorStore>& vs) const {
  std::lock_guard lk(mu_);
  uint32_t npub = vs->published();
  // Owner comparison: a freed store's address may be reused by a new one, its control block not.
  const bool same = built_ && !store_.owner_before(vs) && !vs.owner_before(store_);
  if (same && npub == npub_) return built_;
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
  store_ = vs;
  npub_ = npub;
  built_ = std::move(f);
  return built_;
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
