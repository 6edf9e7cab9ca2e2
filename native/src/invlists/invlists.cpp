#include "invlists.h"

#include <mutex>

namespace winnow {

InvLists::InvLists(size_t nlist, size_t m) : m_(m) {
  lists_.reserve(nlist);
  for (size_t i = 0; i < nlist; i++) lists_.push_back(std::make_unique<InvList>());
}

void InvLists::append_unlocked(size_t li, const uint32_t* ids, const uint8_t* codes, size_t n) {
  InvList& L = *lists_[li];
  const size_t bb = block_bytes(m_);
  size_t pos = L.ids.size();
  size_t need_blocks = (pos + n + 31) / 32;
  if (L.codes.size() < need_blocks * bb) L.codes.resize(need_blocks * bb, 0);
  for (size_t i = 0; i < n; i++, pos++) {
    uint8_t* blk = L.codes.data() + (pos / 32) * bb;
    for (size_t j = 0; j < m_; j++) set_code(blk, pos % 32, j, codes[i * m_ + j]);
  }
  L.ids.insert(L.ids.end(), ids, ids + n);
}

void InvLists::append(size_t li, const uint32_t* ids, const uint8_t* codes, size_t n) {
  std::unique_lock lk(lists_[li]->mu);
  append_unlocked(li, ids, codes, n);
}

size_t InvLists::total() const {
  size_t t = 0;
  for (auto& l : lists_) {
    std::shared_lock lk(l->mu);
    t += l->ids.size();
  }
  return t;
}

size_t InvLists::bytes() const {
  size_t t = 0;
  for (auto& l : lists_) {
    std::shared_lock lk(l->mu);
    t += l->codes.size() + l->ids.size() * sizeof(uint32_t);
  }
  return t;
}

}  // namespace winnow
