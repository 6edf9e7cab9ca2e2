#include "vector_text.h"

#include <cerrno>
#include <charconv>
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
    // std::from_chars is correctly rounded like strtof and several times faster; forms it reads
    // differently from strtof (a leading '+', hex, out-of-range values) go to strtof itself.
    float v = 0;
    const char* stop = nullptr;
    auto fc = std::from_chars(p, end, v, std::chars_format::general);
    const char* digits = *p == '-' ? p + 1 : p;  // the string is NUL-terminated: reading ahead is safe
    const bool hex = digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X');
    if (fc.ec == std::errc() && *p != '+' && !hex) {
      stop = fc.ptr;
    } else {
      errno = 0;
      char* e = nullptr;
      v = std::strtof(p, &e);
      if (e == p) return false;
      if (errno == ERANGE && (v == HUGE_VALF || v == -HUGE_VALF)) return false;
      stop = e;
    }
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
