// Run-time selection: the addon is compiled for baseline x86-64; AVX2 code is
// only reached when the CPU reports avx2, fma and f16c.
#include <cstdlib>
#include <cstring>

#include "simd.h"

namespace winnow {

bool cpu_has_avx2() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
#else
  return false;
#endif
}

const Kernels& active_kernels() {
  static const Kernels* k = [] {
    const char* force = std::getenv("WINNOW_SIMD");  // "scalar" forces the reference path
    if (force && std::strcmp(force, "scalar") == 0) return &scalar_kernels();
    const Kernels* a = avx2_kernels();
    return (a && cpu_has_avx2()) ? a : &scalar_kernels();
  }();
  return *k;
}

}  // namespace winnow
