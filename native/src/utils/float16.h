// IEEE 754 binary16 <-> binary32, hand-written so the scalar path needs no F16C.
#pragma once
#include <cstdint>
#include <cstring>

namespace winnow {

// Exact widening (every half is representable as a float).
inline float half_to_float(uint16_t h) {
  uint32_t sign = uint32_t(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1f;
  uint32_t man = h & 0x3ff;
  uint32_t bits;
  if (exp == 0) {
    if (man == 0) {
      bits = sign;
    } else {  // subnormal: renormalise
      exp = 113;
      while ((man & 0x400) == 0) { man <<= 1; exp--; }
      man &= 0x3ff;
      bits = sign | (exp << 23) | (man << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (man << 13);
  } else {
    bits = sign | ((exp + 112) << 23) | (man << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, like _mm256_cvtps_ph(_MM_FROUND_TO_NEAREST_INT); overflow -> inf.
inline uint16_t float_to_half(float f) {
  uint32_t x;
  std::memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t absx = x & 0x7fffffff;
  if (absx >= 0x7f800000) return uint16_t(sign | 0x7c00 | (absx > 0x7f800000 ? 0x200 : 0));
  if (absx >= 0x477ff000) return uint16_t(sign | 0x7c00);  // rounds to >= 65520 -> inf
  if (absx < 0x38800000) {                                 // subnormal half or zero
    if (absx < 0x33000000) return uint16_t(sign);          // < 2^-25 rounds to 0
    uint32_t e = absx >> 23;
    uint32_t man = (absx & 0x7fffff) | 0x800000;
    uint32_t shift = 126 - e;  // value = man * 2^(e-150); half subnormal unit = 2^-24
    uint32_t q = man >> (shift - 0);
    // q = man >> (shift) where unit 2^-24 corresponds to shift = 126 - e.
    uint32_t rem = man & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (q & 1))) q++;
    return uint16_t(sign | q);
  }
  uint32_t r = absx + 0xfff + ((absx >> 13) & 1);  // round mantissa to 10 bits, ties to even
  r -= 112u << 23;
  return uint16_t(sign | (r >> 13));
}

}  // namespace winnow
