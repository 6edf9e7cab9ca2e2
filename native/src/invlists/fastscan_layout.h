// Blocked 4-bit code layout for fast-scan (FAISS pq4_fast_scan.h idea, own layout):
// per block of 32 vectors and per sub-quantiser pair p (m/2 pairs), 32 bytes:
//   byte i      (i < 16): low nibble = code[2p] of vector i,   high = code[2p] of vector i+16
//   byte 16 + i (i < 16): low nibble = code[2p+1] of vector i, high = code[2p+1] of vector i+16
// so one 256-bit register feeds vpshufb with table 2p in lane 0 and 2p+1 in lane 1.
#pragma once
#include <cstddef>
#include <cstdint>

namespace winnow {

inline size_t block_bytes(size_t m) { return m * 16; }  // 32 vectors x m nibbles

inline void set_code(uint8_t* block, size_t slot, size_t j, uint8_t code) {
  size_t p = j >> 1;
  size_t byte = p * 32 + (j & 1) * 16 + (slot & 15);
  if (slot < 16)
    block[byte] = uint8_t((block[byte] & 0xf0) | (code & 15));
  else
    block[byte] = uint8_t((block[byte] & 0x0f) | ((code & 15) << 4));
}

inline uint8_t get_code(const uint8_t* block, size_t slot, size_t j) {
  size_t p = j >> 1;
  size_t byte = p * 32 + (j & 1) * 16 + (slot & 15);
  return slot < 16 ? (block[byte] & 15) : (block[byte] >> 4);
}

}  // namespace winnow
