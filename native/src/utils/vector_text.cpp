#include "vector_text.h"

#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <string>

namespace winnow {

namespace {
// vector_isspace in pgvector: the characters isspace() accepts in the C locale.
inline bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
}  // namespace

bool parse_vector_text(const char* s, size_t n, std::vector<float>& out) {
  out.clear();
  // strtof needs a terminated string; the Buffer from the wire is not.
  std::string text(s, n);
  const char* p = text.c_str();
  const char* end = p + n;
  while (p < end && is_space(*p)) p++;
  if (p == end || *p != '[') return false;
  p++;
  while (p < end && is_space(*p)) p++;
  if (p < end && *p == ']') return false;  // pgvector: "vector must have at least 1 dimension"
  for (;;) {
    while (p < end && is_space(*p)) p++;
    if (p == end) return false;
    errno = 0;
    char* stop = nullptr;
    float v = std::strtof(p, &stop);
    if (stop == p) return false;
    if (errno == ERANGE && (v == HUGE_VALF || v == -HUGE_VALF)) return false;
    if (std::isnan(v) || std::isinf(v)) return false;
    out.push_back(v);
    p = stop;
    while (p < end && is_space(*p)) p++;
    if (p == end) return false;
    if (*p == ',') {
      p++;
      continue;
    }
    if (*p != ']') return false;
    p++;
    break;
  }
  while (p < end && is_space(*p)) p++;
  return p == end;
}

}  // namespace winnow
