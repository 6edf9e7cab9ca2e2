// On-disk format (little-endian), one file <dir>/index.winnow:
//   "WNWINDEX" | u32 version | u32 section count
//   per section: u32 tag | u32 0 | u64 payload bytes | payload | u32 CRC-32(payload)
//   "WNWEND\0\0"
// Saved to a temp file, fsync'd, renamed over the old file, then the directory is
// fsync'd, so a crash leaves either the old or the new index, never a mix. Loading is
// one sequential read; every section checksum is verified before anything is built.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string>

#include "../utils/crc32.h"
#include "store.h"
#include "vector_index.h"

namespace winnow {
namespace {

constexpr char kMagic[8] = {'W', 'N', 'W', 'I', 'N', 'D', 'E', 'X'};
constexpr char kEnd[8] = {'W', 'N', 'W', 'E', 'N', 'D', 0, 0};
constexpr uint32_t kVersion = 1;
enum Tag : uint32_t { META = 1, INS = 2, SRCH = 3, EXT = 4, TOMB = 5, VEC = 6, LISTS = 7 };
const char* kFile = "index.winnow";

std::string errstr(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

class Writer {
 public:
  explicit Writer(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd_ < 0) throw std::runtime_error(errstr("save: cannot create", path));
    buf_.reserve(1 << 20);
  }
  ~Writer() {
    if (fd_ >= 0) ::close(fd_);
  }
  void raw(const void* p, size_t n) {
    const uint8_t* c = static_cast<const uint8_t*>(p);
    if (in_section_) crc_ = crc32_update(crc_, p, n);
    while (n) {
      size_t take = std::min(n, (size_t(1) << 20) - buf_.size());
      buf_.insert(buf_.end(), c, c + take);
      c += take;
      n -= take;
      if (buf_.size() == (size_t(1) << 20)) flush();
    }
  }
  void begin(uint32_t tag, uint64_t len) {
    uint32_t h[2] = {tag, 0};
    raw(h, 8);
    raw(&len, 8);
    crc_ = 0;
    in_section_ = true;
  }
  void end() {
    in_section_ = false;
    raw(&crc_, 4);
  }
  void finish() {
    flush();
    if (::fsync(fd_) != 0) throw std::runtime_error(errstr("save: fsync failed for", path_));
    if (::close(fd_) != 0) {
      fd_ = -1;
      throw std::runtime_error(errstr("save: close failed for", path_));
    }
    fd_ = -1;
  }

 private:
  void flush() {
    size_t off = 0;
    while (off < buf_.size()) {
      ssize_t w = ::write(fd_, buf_.data() + off, buf_.size() - off);
      if (w < 0) {
        if (errno == EINTR) continue;
        throw std::runtime_error(errstr("save: write failed for", path_));
      }
      off += size_t(w);
    }
    buf_.clear();
  }
  std::string path_;
  int fd_ = -1;
  std::vector<uint8_t> buf_;
  uint32_t crc_ = 0;
  bool in_section_ = false;
};

uint64_t params_bytes_shape(size_t d, size_t dr, size_t nlist, size_t m) {
  return 4 * (d + dr * d + nlist * dr + m * 32);
}
uint64_t params_bytes(const Params& p) {
  return 4 * (p.T.mean.size() + p.T.A.size() + p.centroids.size() + p.codebooks.size());
}
void write_params(Writer& w, uint32_t tag, const Params& p) {
  w.begin(tag, params_bytes(p));
  w.raw(p.T.mean.data(), 4 * p.T.mean.size());
  w.raw(p.T.A.data(), 4 * p.T.A.size());
  w.raw(p.centroids.data(), 4 * p.centroids.size());
  w.raw(p.codebooks.data(), 4 * p.codebooks.size());
  w.end();
}

struct Reader {
  const uint8_t* p;
  size_t n, off = 0;
  std::string path;
  [[noreturn]] void corrupt(const std::string& why) const {
    throw std::runtime_error("load: " + path + " is corrupted or truncated (" + why + ")");
  }
  const uint8_t* take(size_t k) {
    if (k > n - off) corrupt("unexpected end of file");
    const uint8_t* r = p + off;
    off += k;
    return r;
  }
  template <typename T>
  T get() {
    T v;
    std::memcpy(&v, take(sizeof(T)), sizeof(T));
    return v;
  }
};

void read_floats(const uint8_t*& p, std::vector<float>& v, size_t n) {
  v.resize(n);
  std::memcpy(v.data(), p, n * 4);
  p += n * 4;
}

}  // namespace

void VectorIndex::save(const std::string& dir) const {
  std::lock_guard lk(writer_mu_);  // writers wait; searches continue
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) throw std::runtime_error(errstr("save: cannot create", dir));
  auto s = snapshot();
  auto sp = search_params();
  const VectorStore& vs = *s->vs;
  const uint64_t n = vs.published();
  const std::string final_path = dir + "/" + kFile;
  const std::string tmp = final_path + ".tmp-" + std::to_string(::getpid());
  try {
    Writer w(tmp);
    w.raw(kMagic, 8);
    uint32_t hdr[2] = {kVersion, s->ins ? 7u : 4u};
    w.raw(hdr, 8);
    uint64_t meta[10] = {cfg_.d, cfg_.dr, s->ins ? s->ins->m : cfg_.dr / 2, s->ins ? s->ins->nlist : cfg_.nlist,
                         uint64_t(cfg_.metric), cfg_.f16 ? 1u : 0u, cfg_.seed, s->ins ? 1u : 0u, n, vs.n_dead()};
    w.begin(META, sizeof meta);
    w.raw(meta, sizeof meta);
    w.end();
    w.begin(EXT, n * 8);
    for (uint32_t id = 0; id < n; id++) {
      int64_t e = vs.ext(id);
      w.raw(&e, 8);
    }
    w.end();
    w.begin(TOMB, n);
    for (uint32_t id = 0; id < n; id++) {
      uint8_t t = vs.dead(id);
      w.raw(&t, 1);
    }
    w.end();
    const size_t rb = vs.dim() * vs.elem_bytes();
    w.begin(VEC, n * rb);
    for (uint32_t id = 0; id < n; id++) w.raw(vs.row(id), rb);
    w.end();
    if (s->ins) {
      write_params(w, INS, *s->ins);
      write_params(w, SRCH, *sp);
      // Lists are copied under their read locks one at a time; a concurrent delete
      // only flips tombstones, which were captured above.
      std::vector<std::vector<uint8_t>> codes(s->lists->nlist());
      std::vector<std::vector<uint32_t>> ids(s->lists->nlist());
      uint64_t total = 0;
      for (size_t l = 0; l < s->lists->nlist(); l++) {
        const InvList& L = s->lists->list(l);
        std::shared_lock ll(L.mu);
        codes[l] = L.codes;
        ids[l] = L.ids;
        total += 8 + codes[l].size() + 4 * ids[l].size();
      }
      w.begin(LISTS, total);
      for (size_t l = 0; l < codes.size(); l++) {
        uint64_t cnt = ids[l].size();
        w.raw(&cnt, 8);
        w.raw(codes[l].data(), codes[l].size());
        w.raw(ids[l].data(), 4 * ids[l].size());
      }
      w.end();
    }
    w.raw(kEnd, 8);
    w.finish();
    if (::rename(tmp.c_str(), final_path.c_str()) != 0) throw std::runtime_error(errstr("save: rename failed for", tmp));
    int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
      ::fsync(dfd);
      ::close(dfd);
    }
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

std::unique_ptr<VectorIndex> VectorIndex::load(const std::string& dir) {
  const std::string path = dir + "/" + kFile;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error(errstr("load: cannot open", path));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    ::close(fd);
    throw std::runtime_error(errstr("load: cannot stat", path));
  }
  std::vector<uint8_t> buf(size_t(st.st_size));
  size_t off = 0;
  while (off < buf.size()) {
    ssize_t r = ::read(fd, buf.data() + off, buf.size() - off);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      ::close(fd);
      throw std::runtime_error(errstr("load: read failed for", path));
    }
    off += size_t(r);
  }
  ::close(fd);

  Reader R{buf.data(), buf.size(), 0, path};
  if (buf.size() < 16 || std::memcmp(R.take(8), kMagic, 8) != 0)
    throw std::runtime_error("load: " + path + " is not a Winnow index file (bad magic)");
  uint32_t version = R.get<uint32_t>(), nsec = R.get<uint32_t>();
  if (version != kVersion)
    throw std::runtime_error("load: " + path + " has format version " + std::to_string(version) +
                             ", this build reads version " + std::to_string(kVersion));
  struct Sec {
    const uint8_t* p = nullptr;
    uint64_t len = 0;
  } sec[8];
  for (uint32_t i = 0; i < nsec; i++) {
    uint32_t tag = R.get<uint32_t>();
    R.get<uint32_t>();
    uint64_t len = R.get<uint64_t>();
    if (tag == 0 || tag > 7 || sec[tag].p) R.corrupt("bad section tag " + std::to_string(tag));
    if (len > R.n - R.off) R.corrupt("section " + std::to_string(tag) + " runs past the end");
    const uint8_t* p = R.take(len);
    uint32_t crc = R.get<uint32_t>();
    if (crc32_update(0, p, len) != crc) R.corrupt("checksum mismatch in section " + std::to_string(tag));
    sec[tag] = {p, len};
  }
  if (std::memcmp(R.take(8), kEnd, 8) != 0 || R.off != R.n) R.corrupt("missing end marker");
  if (!sec[META].p || sec[META].len != 80) R.corrupt("missing metadata");
  uint64_t meta[10];
  std::memcpy(meta, sec[META].p, 80);
  IndexConfig cfg;
  cfg.d = meta[0];
  cfg.dr = meta[1];
  const size_t m = meta[2];
  cfg.nlist = meta[3];
  if (meta[4] > 2) R.corrupt("unknown metric");
  cfg.metric = Metric(meta[4]);
  cfg.f16 = meta[5] != 0;
  cfg.seed = meta[6];
  const bool trained = meta[7] != 0;
  const uint64_t n = meta[8];
  auto idx = std::make_unique<VectorIndex>(cfg);  // validates d / dr
  if (m != cfg.dr / 2) R.corrupt("inconsistent sub-quantiser count");
  const size_t rb = cfg.d * (cfg.f16 ? 2 : 4);
  if (!sec[EXT].p || sec[EXT].len != n * 8 || !sec[TOMB].p || sec[TOMB].len != n || !sec[VEC].p ||
      sec[VEC].len != n * rb)
    R.corrupt("vector sections do not match the metadata");
  if (n > uint64_t(VectorStore::kChunk) * VectorStore::kMaxChunks) R.corrupt("too many vectors");
  auto s = std::make_shared<Store>();
  s->vs = std::make_shared<VectorStore>(cfg.d, cfg.f16);
  VectorStore& vs = *s->vs;
  size_t dead = 0;
  vs.map.reserve(n);
  for (uint64_t id = 0; id < n; id++) {
    int64_t e;
    std::memcpy(&e, sec[EXT].p + id * 8, 8);
    bool t = sec[TOMB].p[id] != 0;
    vs.write_raw(uint32_t(id), e, sec[VEC].p + id * rb, t);
    if (t)
      dead++;
    else if (!vs.map.emplace(e, uint32_t(id)).second)
      R.corrupt("duplicate live id");
  }
  vs.publish(uint32_t(n));
  vs.set_n_dead(dead);
  std::shared_ptr<Params> sp;
  if (trained) {
    auto rp = [&](uint32_t tag) {
      auto P = std::make_shared<Params>();
      P->d = cfg.d;
      P->dr = cfg.dr;
      P->m = m;
      P->nlist = cfg.nlist;
      P->T.d_in = cfg.d;
      P->T.d_out = cfg.dr;
      if (!sec[tag].p || sec[tag].len != params_bytes_shape(cfg.d, cfg.dr, cfg.nlist, m)) R.corrupt("bad params section");
      const uint8_t* p = sec[tag].p;
      read_floats(p, P->T.mean, cfg.d);
      read_floats(p, P->T.A, cfg.dr * cfg.d);
      read_floats(p, P->centroids, cfg.nlist * cfg.dr);
      read_floats(p, P->codebooks, m * 32);
      return P;
    };
    if (cfg.nlist == 0) R.corrupt("trained index without lists");
    s->ins = rp(INS);
    sp = rp(SRCH);
    if (!sec[LISTS].p) R.corrupt("missing lists");
    auto lists = std::make_shared<InvLists>(cfg.nlist, m);
    const uint8_t* p = sec[LISTS].p;
    const uint8_t* end = p + sec[LISTS].len;
    const size_t bb = block_bytes(m);
    for (size_t l = 0; l < cfg.nlist; l++) {
      if (end - p < 8) R.corrupt("lists truncated");
      uint64_t cnt;
      std::memcpy(&cnt, p, 8);
      p += 8;
      uint64_t cb = (cnt + 31) / 32 * bb;
      if (cnt > n || uint64_t(end - p) < cb + 4 * cnt) R.corrupt("lists truncated");
      InvList& L = lists->list(l);
      L.codes.assign(p, p + cb);
      p += cb;
      L.ids.resize(cnt);
      std::memcpy(L.ids.data(), p, 4 * cnt);
      p += 4 * cnt;
      for (uint32_t id : L.ids)
        if (id >= n) R.corrupt("list entry out of range");
    }
    if (p != end) R.corrupt("trailing bytes in lists");
    s->lists = lists;
  }
  idx->store_ = s;
  idx->search_params_ = sp;
  return idx;
}

}  // namespace winnow
