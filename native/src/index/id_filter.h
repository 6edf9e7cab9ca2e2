// Filters of a search: allowed internal ids as a bitset over the slots of one VectorStore.
//
// IdFilter is built per query from external ids (one hash lookup each). PreparedFilter keeps a
// frozen set of external ids and remembers the IdFilter it last built, so a set that comes back
// query after query (the planner's cached allowed-id sets) costs no lookups. The remembered bitset
// belongs to one VectorStore at one published count: a different store (compact, rebuild, another
// index) rebuilds it, rows appended since are checked and added; tombstones need nothing here since
// the scan and brute force check them anyway.
#pragma once
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "../invlists/invlists.h"
#include "vector_store.h"

namespace winnow {

// A prepared filter's allowed entries copied out of the inverted lists (a per-predicate sub-index):
// per list, the allowed entries among the full blocks its block masks describe, their codes
// re-blocked in the fast-scan layout. At 10 % allowed nearly every block of 32 holds an allowed entry,
// so masks skip almost nothing and the scan reads ten codes for each one it may keep; here it reads
// only allowed codes. Built once per filter and lists, for filters allowing at most
// kCompactMaxFraction of the rows, within a process-wide memory budget.
struct CompactLists {
  std::vector<std::vector<uint8_t>> codes;  // per list: ceil(ids/32) blocks
  std::vector<std::vector<uint32_t>> ids;   // per list: internal ids, in list order
  size_t bytes = 0;
  CompactLists() = default;
  CompactLists(const CompactLists&) = delete;
  CompactLists& operator=(const CompactLists&) = delete;
  ~CompactLists();
};

// Allowed fraction above which a filter keeps block masks only (a copy would save little scanning
// for its memory), and the bytes all compact lists together may hold.
constexpr double kCompactMaxFraction = 0.5;
constexpr size_t kCompactBudgetBytes = size_t(256) << 20;
size_t compact_lists_bytes();  // in use now (tests, stats)

struct IdFilter {
  std::vector<uint64_t> bits;  // over internal ids
  std::vector<uint32_t> ids;   // same set, ascending (brute force reads it)
  // Prepared filters on a trained index: per inverted list, which entries of each full block of 32
  // (the fast-scan layout) are allowed, so the scan skips blocks with none and never looks at an
  // entry that is not allowed. Entries appended to a list later are checked in `bits`.
  std::vector<std::vector<uint32_t>> block_masks;
  // The same lists' allowed entries copied out (null: not worth it, or over budget); shared by the
  // filter's extensions, which leave the masks and this alone.
  std::shared_ptr<const CompactLists> compact;
  bool allows(uint32_t id) const { return (id >> 6) < bits.size() && ((bits[id >> 6] >> (id & 63)) & 1); }
  // Allowed entries among ids[0..n) (one block, n <= 32) as a bit mask.
  uint32_t mask_of(const uint32_t* ids, size_t n) const {
    uint32_t a = 0;
    for (size_t i = 0; i < n; i++) a |= uint32_t(allows(ids[i])) << i;
    return a;
  }
};

struct Store;

class PreparedFilter {
 public:
  // Copies the ids (any order, duplicates allowed).
  PreparedFilter(const int64_t* ext, size_t n);

  size_t size() const { return n_; }  // allowed external ids as given (duplicates included)
  // The filter over the store's slots published so far (and its lists' block masks); safe to call
  // from concurrent searches.
  std::shared_ptr<const IdFilter> for_store(const Store& s) const;

  // Rebuilds so far (tests and stats): full builds and incremental extensions.
  size_t builds() const;
  size_t extensions() const;
  size_t compactions() const;  // compact lists built

 private:
  std::vector<int64_t> sorted_;  // unique, ascending
  size_t n_;

  mutable std::mutex mu_;
  mutable std::weak_ptr<VectorStore> store_;  // the store `built_` indexes (owner identity)
  mutable std::weak_ptr<InvLists> lists_;     // the lists its block masks describe
  mutable uint32_t npub_ = 0;                 // its published count then
  mutable std::shared_ptr<const IdFilter> built_;
  mutable size_t builds_ = 0, extensions_ = 0, compactions_ = 0;
};

}  // namespace winnow
