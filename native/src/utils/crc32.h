// CRC-32 (IEEE 802.3, reflected 0xEDB88320), slicing-by-8 so checksumming a
// multi-hundred-MB index file costs far less than reading it.
#pragma once
#include <cstddef>
#include <cstdint>

namespace winnow {
uint32_t crc32_update(uint32_t crc, const void* data, size_t n);  // start with crc = 0
}
