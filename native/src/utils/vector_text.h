// pgvector's text form of a vector, '[1,2.5,-3e-2]', parsed as its vector_in does: optional white
// space around the brackets and numbers, each number read with strtof (so every component is the
// correctly rounded float, as in pgvector), NaN, infinities and out-of-range values rejected.
#pragma once
#include <cstddef>
#include <vector>

namespace winnow {

// Appends the components to `out` (cleared first); false when the text is not a valid vector
// literal (the caller lets Postgres report the error).
bool parse_vector_text(const char* s, size_t n, std::vector<float>& out);

}  // namespace winnow
