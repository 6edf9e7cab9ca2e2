// Inverted lists holding fast-scan blocked codes plus dense internal ids.
// Each list has its own reader/writer lock: a scan holds it shared for one list
// only, an append holds it exclusively for one list's share of a batch, so readers
// never wait for a whole batch and never observe a half-written block.
#pragma once
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <vector>

#include "fastscan_layout.h"

namespace winnow {

struct InvList {
  mutable std::shared_mutex mu;
  std::vector<uint8_t> codes;  // nblocks * block_bytes(m)
  std::vector<uint32_t> ids;   // size = number of entries
};

class InvLists {
 public:
  InvLists(size_t nlist, size_t m);
  size_t nlist() const { return lists_.size(); }
  size_t m() const { return m_; }
  InvList& list(size_t i) { return *lists_[i]; }
  const InvList& list(size_t i) const { return *lists_[i]; }
  // codes: n x m unpacked codes (one byte per sub-quantiser). Locks the list.
  void append(size_t list, const uint32_t* ids, const uint8_t* codes, size_t n);
  // Unlocked variant for lists not yet visible to readers.
  void append_unlocked(size_t list, const uint32_t* ids, const uint8_t* codes, size_t n);
  size_t total() const;
  size_t bytes() const;

 private:
  size_t m_;
  std::vector<std::unique_ptr<InvList>> lists_;
};

}  // namespace winnow
