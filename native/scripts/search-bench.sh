#!/bin/sh
# Builds native/scripts/search_bench (standalone, no Node) into /tmp and runs it.
set -e
S="$(cd "$(dirname "$0")/../src" && pwd)"
OUT=${OUT:-/tmp/winnow-search-bench}
mkdir -p "$OUT"
g++ -O3 -std=c++20 -ffp-contract=off -c "$S/utils/simd_avx2.cpp" -mavx2 -mfma -mf16c -o "$OUT/avx2.o"
g++ -O3 -std=c++20 -ffp-contract=off -g -I"$S" "$S/../scripts/search_bench.cpp" "$S/index/params.cpp" "$S/index/persist.cpp" \
  "$S/index/vector_index.cpp" "$S/invlists/invlists.cpp" "$S/utils/crc32.cpp" "$S/utils/kmeans.cpp" "$S/utils/pca.cpp" \
  "$S/utils/simd_dispatch.cpp" "$S/utils/simd_scalar.cpp" "$OUT/avx2.o" -lpthread -o "$OUT/search_bench"
exec "$OUT/search_bench" "$@"
