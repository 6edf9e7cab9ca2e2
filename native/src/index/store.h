// One immutable-shape snapshot of the index contents. Train and compact build a new
// Store and swap it in atomically; readers keep whichever snapshot they loaded, so
// neither operation ever blocks a running search.
#pragma once
#include <memory>

#include "../invlists/invlists.h"
#include "params.h"
#include "vector_store.h"

namespace winnow {

struct Store {
  std::shared_ptr<VectorStore> vs;
  std::shared_ptr<const Params> ins;  // null until trained
  std::shared_ptr<InvLists> lists;    // null until trained
};

}  // namespace winnow
