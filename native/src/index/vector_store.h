// Full-precision vectors and id bookkeeping, addressed by dense internal id.
// Storage grows in fixed-size chunks that never move, so a reader holding an id
// below the published count can read its vector without any lock while a writer
// appends; tombstones are per-id atomics.
#pragma once
#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <shared_mutex>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "../utils/float16.h"

namespace winnow {

class VectorStore {
 public:
  static constexpr size_t kChunkBits = 14, kChunk = size_t(1) << kChunkBits, kMaxChunks = 65536;

  VectorStore(size_t d, bool f16) : d_(d), f16_(f16), dir_(new std::atomic<Chunk*>[kMaxChunks]) {
    for (size_t i = 0; i < kMaxChunks; i++) dir_[i].store(nullptr, std::memory_order_relaxed);
  }
  ~VectorStore() {
    for (size_t i = 0; i < kMaxChunks; i++) delete dir_[i].load(std::memory_order_relaxed);
  }
  VectorStore(const VectorStore&) = delete;
  VectorStore& operator=(const VectorStore&) = delete;

  size_t dim() const { return d_; }
  bool f16() const { return f16_; }
  size_t elem_bytes() const { return f16_ ? 2 : 4; }
  uint32_t published() const { return n_pub_.load(std::memory_order_acquire); }

  // Writer only (caller serialises writers). Slot becomes visible after publish().
  void write(uint32_t id, int64_t ext, const float* v) {
    Chunk* c = chunk_for_write(id);
    size_t o = id & (kChunk - 1);
    c->ext[o] = ext;
    set_dead(c, o, false);
    if (f16_) {
      uint16_t* dst = reinterpret_cast<uint16_t*>(c->data.get()) + o * d_;
      for (size_t t = 0; t < d_; t++) dst[t] = float_to_half(v[t]);
    } else {
      std::memcpy(reinterpret_cast<float*>(c->data.get()) + o * d_, v, d_ * 4);
    }
  }
  // Raw row copy (load / compact), bypassing conversion.
  void write_raw(uint32_t id, int64_t ext, const void* row, bool dead) {
    Chunk* c = chunk_for_write(id);
    size_t o = id & (kChunk - 1);
    c->ext[o] = ext;
    set_dead(c, o, dead);
    std::memcpy(c->data.get() + o * d_ * elem_bytes(), row, d_ * elem_bytes());
  }
  void publish(uint32_t n) { n_pub_.store(n, std::memory_order_release); }

  const void* row(uint32_t id) const {
    const Chunk* c = dir_[id >> kChunkBits].load(std::memory_order_acquire);
    return c->data.get() + (id & (kChunk - 1)) * d_ * elem_bytes();
  }
  // Row as float32 (float16 rows are widened exactly).
  void read_float(uint32_t id, float* out) const {
    const void* r = row(id);
    if (f16_) {
      const uint16_t* h = static_cast<const uint16_t*>(r);
      for (size_t t = 0; t < d_; t++) out[t] = half_to_float(h[t]);
    } else {
      std::memcpy(out, r, d_ * 4);
    }
  }
  int64_t ext(uint32_t id) const { return dir_[id >> kChunkBits].load(std::memory_order_acquire)->ext[id & (kChunk - 1)]; }
  // Tombstones are bits (2 KiB per chunk) so the scan's liveness check stays in L1/L2.
  bool dead(uint32_t id) const {
    const Chunk* c = dir_[id >> kChunkBits].load(std::memory_order_acquire);
    size_t o = id & (kChunk - 1);
    return (c->tomb[o >> 6].load(std::memory_order_acquire) >> (o & 63)) & 1;
  }
  void kill(uint32_t id) {
    Chunk* c = dir_[id >> kChunkBits].load(std::memory_order_acquire);
    size_t o = id & (kChunk - 1);
    c->tomb[o >> 6].fetch_or(uint64_t(1) << (o & 63), std::memory_order_release);
    n_dead_.fetch_add(1, std::memory_order_relaxed);
  }
  size_t n_dead() const { return n_dead_.load(std::memory_order_relaxed); }
  void set_n_dead(size_t n) { n_dead_.store(n, std::memory_order_relaxed); }

  // External id -> internal id of the live version.
  mutable std::shared_mutex map_mu;
  std::unordered_map<int64_t, uint32_t> map;

 private:
  struct Chunk {
    std::unique_ptr<uint8_t[]> data;
    int64_t ext[kChunk];
    std::atomic<uint64_t> tomb[kChunk / 64];
  };
  static void set_dead(Chunk* c, size_t o, bool dead) {
    uint64_t bit = uint64_t(1) << (o & 63);
    if (dead)
      c->tomb[o >> 6].fetch_or(bit, std::memory_order_relaxed);
    else
      c->tomb[o >> 6].fetch_and(~bit, std::memory_order_relaxed);
  }
  Chunk* chunk_for_write(uint32_t id) {
    size_t ci = id >> kChunkBits;
    if (ci >= kMaxChunks) throw std::length_error("index full");
    Chunk* c = dir_[ci].load(std::memory_order_relaxed);
    if (!c) {
      c = new Chunk();
      c->data.reset(new uint8_t[kChunk * d_ * elem_bytes()]);
      for (auto& t : c->tomb) t.store(~uint64_t(0), std::memory_order_relaxed);
      dir_[ci].store(c, std::memory_order_release);
    }
    return c;
  }
  size_t d_;
  bool f16_;
  std::unique_ptr<std::atomic<Chunk*>[]> dir_;
  std::atomic<uint32_t> n_pub_{0};
  std::atomic<size_t> n_dead_{0};
};

}  // namespace winnow
