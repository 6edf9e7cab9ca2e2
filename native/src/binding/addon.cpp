// N-API binding. Everything slow (train, batch add, batch/brute search, compact,
// save, load) runs in AsyncWorkers on libuv's pool so the event loop never stalls;
// inputs are copied on the JS thread first so callers may reuse their buffers.
// C++ exceptions become JS Errors; nothing here aborts the process.
#include <napi.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "../index/vector_index.h"
#include "../invlists/fastscan_layout.h"
#include "../utils/vector_text.h"
#include "../learn/kl_loss.h"
#include "../learn/probe.h"
#include "../learn/trainer.h"
#include "../utils/float16.h"
#include "../utils/simd.h"

using namespace winnow;

namespace {

struct AddonData {
  Napi::FunctionReference ctor;
  Napi::FunctionReference filter_ctor;
};

class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  std::function<void()> cleanup;

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    if (cleanup) cleanup();
    try {
      deferred_.Resolve(done_(Env()));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (cleanup) cleanup();
    deferred_.Reject(e.Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
};

[[noreturn]] void type_error(Napi::Env env, const std::string& msg) { throw Napi::TypeError::New(env, msg); }

template <typename T, napi_typedarray_type TT>
Napi::TypedArrayOf<T> typed(const Napi::Value& v, const char* name, const char* tname) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != TT)
    type_error(v.Env(), std::string(name) + " must be a " + tname);
  return v.As<Napi::TypedArrayOf<T>>();
}
Napi::Float32Array f32(const Napi::Value& v, const char* name) {
  return typed<float, napi_float32_array>(v, name, "Float32Array");
}
Napi::TypedArrayOf<int64_t> i64(const Napi::Value& v, const char* name) {
  return typed<int64_t, napi_bigint64_array>(v, name, "BigInt64Array");
}

size_t uint_arg(const Napi::Value& v, const char* name, bool allow_zero = false) {
  if (!v.IsNumber()) type_error(v.Env(), std::string(name) + " must be a number");
  double d = v.As<Napi::Number>().DoubleValue();
  if (!(d == d) || d != double(int64_t(d)) || d < (allow_zero ? 0 : 1) || d > 1e12)
    throw Napi::RangeError::New(v.Env(), std::string(name) + " must be a " + (allow_zero ? "non-negative" : "positive") +
                                              " integer, got " + v.ToString().Utf8Value());
  return size_t(d);
}

size_t rows_of(Napi::Env env, size_t len, size_t d, const char* name) {
  if (len == 0 || len % d != 0)
    throw Napi::RangeError::New(env, std::string(name) + ": length " + std::to_string(len) +
                                         " is not a positive multiple of dim " + std::to_string(d));
  return len / d;
}

Napi::Object make_result(Napi::Env env, const int64_t* ids, const float* dist, size_t n) {
  auto I = Napi::BigInt64Array::New(env, n);
  auto D = Napi::Float32Array::New(env, n);
  std::memcpy(I.Data(), ids, n * 8);
  std::memcpy(D.Data(), dist, n * 4);
  auto o = Napi::Object::New(env);
  o.Set("ids", I);
  o.Set("distances", D);
  return o;
}

// new NativeFilter(ids: BigInt64Array): a frozen allowed-id set whose bitset is built once per
// index contents and reused by every search given it (id_filter.h), instead of one hash lookup per
// allowed id per query.
class NativeFilter : public Napi::ObjectWrap<NativeFilter> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeFilter",
                       {
                           InstanceMethod("size", &NativeFilter::Size),
                           InstanceMethod("builds", &NativeFilter::Builds),
                           InstanceMethod("compactions", &NativeFilter::Compactions),
                       });
  }
  NativeFilter(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeFilter>(info) {
    auto ids = i64(info[0], "ids");
    f_ = std::make_shared<PreparedFilter>(ids.Data(), ids.ElementLength());
  }
  const std::shared_ptr<PreparedFilter>& get() const { return f_; }

 private:
  std::shared_ptr<PreparedFilter> f_;
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(f_->size())); }
  // { full, extended }: bitsets built from scratch and extended with appended rows (tests).
  Napi::Value Builds(const Napi::CallbackInfo& info) {
    auto o = Napi::Object::New(info.Env());
    o.Set("full", double(f_->builds()));
    o.Set("extended", double(f_->extensions()));
    return o;
  }
  // Compact copies of the allowed entries built (IdFilter::compact; tests).
  Napi::Value Compactions(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(f_->compactions())); }
};

// Bytes all prepared filters' compact lists hold now (id_filter.h budget; tests and stats).
Napi::Value CompactListsBytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(compact_lists_bytes())); }

class NativeIndex : public Napi::ObjectWrap<NativeIndex> {
 public:
  static Napi::Function Init(Napi::Env env) {
    return DefineClass(env, "NativeIndex",
                       {
                           InstanceMethod("isTrained", &NativeIndex::IsTrained),
                           InstanceMethod("size", &NativeIndex::Size),
                           InstanceMethod("train", &NativeIndex::Train),
                           InstanceMethod("add", &NativeIndex::Add),
                           InstanceMethod("addSync", &NativeIndex::AddSync),
                           InstanceMethod("remove", &NativeIndex::Remove),
                           InstanceMethod("search", &NativeIndex::Search),
                           InstanceMethod("searchBatch", &NativeIndex::SearchBatch),
                           InstanceMethod("bruteForce", &NativeIndex::BruteForce),
                           InstanceMethod("compact", &NativeIndex::Compact),
                           InstanceMethod("save", &NativeIndex::Save),
                           InstanceMethod("stats", &NativeIndex::Stats),
                           InstanceMethod("config", &NativeIndex::Config),
                           InstanceMethod("getParams", &NativeIndex::GetParams),
                           InstanceMethod("setSearchParams", &NativeIndex::SetSearchParams),
                           InstanceMethod("resetSearchParams", &NativeIndex::ResetSearchParams),
                           InstanceMethod("learn", &NativeIndex::Learn),
                           StaticMethod("load", &NativeIndex::Load),
                       });
  }

  // new NativeIndex(dim, metric, nlist, reducedDim, float16, seed) or new NativeIndex(External<shared_ptr>)
  NativeIndex(const Napi::CallbackInfo& info) : Napi::ObjectWrap<NativeIndex>(info) {
    Napi::Env env = info.Env();
    if (info.Length() == 1 && info[0].IsExternal()) {
      idx_ = *info[0].As<Napi::External<std::shared_ptr<VectorIndex>>>().Data();
      return;
    }
    IndexConfig c;
    c.d = uint_arg(info[0], "dim");
    std::string metric = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "";
    if (metric == "l2") c.metric = Metric::L2;
    else if (metric == "ip") c.metric = Metric::IP;
    else if (metric == "cos") c.metric = Metric::COS;
    else throw Napi::TypeError::New(env, "metric must be 'l2', 'ip' or 'cos'");
    c.nlist = uint_arg(info[2], "nlist", true);
    c.dr = uint_arg(info[3], "reducedDim", true);
    c.f16 = info[4].ToBoolean();
    c.seed = uint_arg(info[5], "seed", true);
    try {
      idx_ = std::make_shared<VectorIndex>(c);
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

 private:
  std::shared_ptr<VectorIndex> idx_;

  template <typename F>
  static auto guard(Napi::Env env, F&& f) -> decltype(f()) {
    try {
      return f();
    } catch (const Napi::Error&) {
      throw;
    } catch (const std::exception& e) {
      throw Napi::Error::New(env, e.what());
    }
  }

  Napi::Value IsTrained(const Napi::CallbackInfo& info) { return Napi::Boolean::New(info.Env(), idx_->trained()); }
  Napi::Value Size(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), double(idx_->size())); }

  Napi::Value Config(const Napi::CallbackInfo& info) {
    auto o = Napi::Object::New(info.Env());
    const auto& c = idx_->config();
    o.Set("dim", double(c.d));
    o.Set("metric", c.metric == Metric::L2 ? "l2" : c.metric == Metric::IP ? "ip" : "cos");
    o.Set("reducedDim", double(c.dr));
    o.Set("nlist", double(idx_->nlist()));
    o.Set("vectorStorage", c.f16 ? "float16" : "float32");
    o.Set("seed", double(c.seed));
    return o;
  }

  // train(sample, progress?, threads)
  Napi::Value Train(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto x = f32(info[0], "sample");
    const size_t d = idx_->config().d;
    size_t n = rows_of(env, x.ElementLength(), d, "train sample");
    size_t threads = uint_arg(info[2], "threads");
    size_t nlist = info.Length() > 3 && !info[3].IsUndefined() ? uint_arg(info[3], "nlist") : 0;
    auto data = std::make_shared<std::vector<float>>(x.Data(), x.Data() + n * d);
    auto idx = idx_;
    std::shared_ptr<Napi::ThreadSafeFunction> tsfn;
    if (info[1].IsFunction())
      tsfn = std::make_shared<Napi::ThreadSafeFunction>(
          Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "winnow-train-progress", 0, 1));
    auto w = new PromiseWorker(
        env,
        [idx, data, n, threads, nlist, tsfn] {
          Progress prog;
          if (tsfn) {
            prog = [tsfn](const char* phase, size_t done, size_t total) {
              struct P {
                std::string phase;
                double done, total;
              };
              auto* p = new P{phase, double(done), double(total)};
              auto st = tsfn->NonBlockingCall(p, [](Napi::Env env, Napi::Function cb, P* p) {
                try {
                  cb.Call({Napi::String::New(env, p->phase), Napi::Number::New(env, p->done),
                           Napi::Number::New(env, p->total)});
                } catch (...) {
                }
                delete p;
              });
              if (st != napi_ok) delete p;
            };
          }
          idx->train(data->data(), n, prog, threads, nlist);
        },
        [](Napi::Env env) { return env.Undefined(); });
    if (tsfn) w->cleanup = [tsfn] { tsfn->Release(); };
    w->Queue();
    return w->promise();
  }

  // add/addSync: ids and vectors must describe the same number of rows of this index's dimension.
  size_t checkAddArgs(Napi::Env env, const Napi::BigInt64Array& ids, const Napi::Float32Array& x) {
    const size_t d = idx_->config().d;
    size_t n = ids.ElementLength();
    if (x.ElementLength() != n * d)
      throw Napi::RangeError::New(env, "add: vectors length " + std::to_string(x.ElementLength()) + " != ids (" +
                                           std::to_string(n) + ") x dim (" + std::to_string(d) + ")");
    return n;
  }

  Napi::Value Add(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto ids = i64(info[0], "ids");
    auto x = f32(info[1], "vectors");
    const size_t d = idx_->config().d;
    const size_t n = checkAddArgs(env, ids, x);
    size_t threads = uint_arg(info[2], "threads");
    auto vid = std::make_shared<std::vector<int64_t>>(ids.Data(), ids.Data() + n);
    auto vx = std::make_shared<std::vector<float>>(x.Data(), x.Data() + n * d);
    auto idx = idx_;
    auto w = new PromiseWorker(
        env, [idx, vid, vx, n, threads] { idx->add(vid->data(), vx->data(), n, threads); },
        [](Napi::Env env) { return env.Undefined(); });
    w->Queue();
    return w->promise();
  }

  Napi::Value AddSync(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto ids = i64(info[0], "ids");
    auto x = f32(info[1], "vectors");
    const size_t n = checkAddArgs(env, ids, x);
    guard(env, [&] { idx_->add(ids.Data(), x.Data(), n, 1); });
    return env.Undefined();
  }

  Napi::Value Remove(const Napi::CallbackInfo& info) {
    auto ids = i64(info[0], "ids");
    size_t r = guard(info.Env(), [&] { return idx_->remove(ids.Data(), ids.ElementLength()); });
    return Napi::Number::New(info.Env(), double(r));
  }

  // opts object: { k, nprobe, kFactor, filter?, threads }; filter is a BigInt64Array or a NativeFilter
  // (then *prepared holds it, keeping it alive for an async search).
  static SearchParamsIn parse_opts(Napi::Env env, const Napi::Value& v, std::vector<int64_t>* filter_copy,
                                   Napi::TypedArrayOf<int64_t>* filter_view,
                                   std::shared_ptr<PreparedFilter>* prepared) {
    if (!v.IsObject()) type_error(env, "search options must be an object");
    auto o = v.As<Napi::Object>();
    SearchParamsIn p;
    p.k = uint_arg(o.Get("k"), "k");
    p.nprobe = uint_arg(o.Get("nprobe"), "nprobe");
    p.kfactor = uint_arg(o.Get("kFactor"), "kFactor");
    p.nthreads = uint_arg(o.Get("threads"), "threads");
    if (p.k > 100000) throw Napi::RangeError::New(env, "k must be at most 100000");
    auto bl = o.Get("bruteForceBelow");
    if (!bl.IsUndefined()) p.brute_limit = uint_arg(bl, "bruteForceBelow", true);
    auto f = o.Get("filter");
    if (f.IsObject() && !f.IsTypedArray() &&
        f.As<Napi::Object>().InstanceOf(env.GetInstanceData<AddonData>()->filter_ctor.Value())) {
      *prepared = NativeFilter::Unwrap(f.As<Napi::Object>())->get();
      p.has_filter = true;
      p.prepared = prepared->get();
      p.filter_n = p.prepared->size();
    } else if (!f.IsUndefined() && !f.IsNull()) {
      auto fa = i64(f, "filter");
      p.has_filter = true;
      p.filter_n = fa.ElementLength();
      if (filter_copy) {
        filter_copy->assign(fa.Data(), fa.Data() + p.filter_n);
        p.filter_ext = filter_copy->data();
      } else {
        *filter_view = fa;
        p.filter_ext = fa.Data();
      }
      if (p.filter_n == 0) p.filter_ext = nullptr;
    }
    return p;
  }

  Napi::Value Search(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto q = f32(info[0], "query");
    const size_t d = idx_->config().d;
    size_t nq = rows_of(env, q.ElementLength(), d, "query");
    Napi::TypedArrayOf<int64_t> fv;
    std::shared_ptr<PreparedFilter> pf;
    SearchParamsIn p = parse_opts(env, info[1], nullptr, &fv, &pf);
    std::vector<int64_t> ids(nq * p.k);
    std::vector<float> dist(nq * p.k);
    guard(env, [&] { idx_->search(q.Data(), nq, p, ids.data(), dist.data()); });
    return make_result(env, ids.data(), dist.data(), ids.size());
  }

  Napi::Value Batch(const Napi::CallbackInfo& info, bool brute) {
    Napi::Env env = info.Env();
    auto q = f32(info[0], "queries");
    const size_t d = idx_->config().d;
    size_t nq = rows_of(env, q.ElementLength(), d, "queries");
    auto fc = std::make_shared<std::vector<int64_t>>();
    std::shared_ptr<PreparedFilter> pf;
    SearchParamsIn p = parse_opts(env, info[1], fc.get(), nullptr, &pf);
    auto vq = std::make_shared<std::vector<float>>(q.Data(), q.Data() + nq * d);
    auto ids = std::make_shared<std::vector<int64_t>>(nq * p.k);
    auto dist = std::make_shared<std::vector<float>>(nq * p.k);
    auto idx = idx_;
    auto w = new PromiseWorker(
        env,
        [idx, vq, fc, pf, p, nq, ids, dist, brute] {
          if (brute)
            idx->brute_force(vq->data(), nq, p, ids->data(), dist->data());
          else
            idx->search(vq->data(), nq, p, ids->data(), dist->data());
        },
        [ids, dist](Napi::Env env) -> Napi::Value { return make_result(env, ids->data(), dist->data(), ids->size()); });
    w->Queue();
    return w->promise();
  }
  Napi::Value SearchBatch(const Napi::CallbackInfo& info) { return Batch(info, false); }
  Napi::Value BruteForce(const Napi::CallbackInfo& info) { return Batch(info, true); }

  Napi::Value Compact(const Napi::CallbackInfo& info) {
    auto idx = idx_;
    auto w = new PromiseWorker(info.Env(), [idx] { idx->compact(); }, [](Napi::Env env) { return env.Undefined(); });
    w->Queue();
    return w->promise();
  }

  Napi::Value Save(const Napi::CallbackInfo& info) {
    if (!info[0].IsString()) type_error(info.Env(), "dir must be a string");
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    auto idx = idx_;
    auto w = new PromiseWorker(info.Env(), [idx, dir] { idx->save(dir); }, [](Napi::Env env) { return env.Undefined(); });
    w->Queue();
    return w->promise();
  }

  static Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsString()) type_error(env, "dir must be a string");
    std::string dir = info[0].As<Napi::String>().Utf8Value();
    auto out = std::make_shared<std::shared_ptr<VectorIndex>>();
    auto w = new PromiseWorker(
        env, [dir, out] { *out = std::shared_ptr<VectorIndex>(VectorIndex::load(dir)); },
        [out](Napi::Env env) -> Napi::Value {
          auto* data = env.GetInstanceData<AddonData>();
          auto ext = Napi::External<std::shared_ptr<VectorIndex>>::New(
              env, new std::shared_ptr<VectorIndex>(*out),
              [](Napi::Env, std::shared_ptr<VectorIndex>* p) { delete p; });
          return data->ctor.New({ext});
        });
    w->Queue();
    return w->promise();
  }

  Napi::Value Stats(const Napi::CallbackInfo& info) {
    auto s = idx_->stats();
    auto o = Napi::Object::New(info.Env());
    o.Set("count", double(s.count));
    o.Set("deleted", double(s.deleted));
    o.Set("dim", double(s.d));
    o.Set("reducedDim", double(s.dr));
    o.Set("nlist", double(s.nlist));
    o.Set("filterBytesPerVector", s.filter_bytes);
    o.Set("totalBytesPerVector", s.total_bytes);
    return o;
  }

  // getParams('insert' | 'search') -> { transform, mean, centroids, codebooks } copies, or null when untrained.
  Napi::Value GetParams(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    std::string which = info[0].IsString() ? info[0].As<Napi::String>().Utf8Value() : "";
    if (which != "insert" && which != "search") type_error(env, "which must be 'insert' or 'search'");
    auto p = which == "insert" ? idx_->insert_params() : idx_->search_params();
    if (!p) return env.Null();
    auto copy = [&](const std::vector<float>& v) {
      auto a = Napi::Float32Array::New(env, v.size());
      std::memcpy(a.Data(), v.data(), v.size() * 4);
      return a;
    };
    auto o = Napi::Object::New(env);
    o.Set("transform", copy(p->T.A));
    o.Set("mean", copy(p->T.mean));
    o.Set("centroids", copy(p->centroids));
    o.Set("codebooks", copy(p->codebooks));
    return o;
  }

  Napi::Value SetSearchParams(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) type_error(env, "params must be an object");
    auto o = info[0].As<Napi::Object>();
    auto ins = idx_->insert_params();
    if (!ins) throw Napi::Error::New(env, "setSearchParams: index is not trained");
    auto P = std::make_shared<Params>(*ins);
    auto take = [&](const char* key, std::vector<float>& dst) {
      auto a = f32(o.Get(key), key);
      for (size_t i = 0; i < a.ElementLength(); i++)
        if (!std::isfinite(a[i])) throw Napi::RangeError::New(env, std::string(key) + " has a non-finite value");
      dst.assign(a.Data(), a.Data() + a.ElementLength());
    };
    take("transform", P->T.A);
    take("mean", P->T.mean);
    take("centroids", P->centroids);
    take("codebooks", P->codebooks);
    guard(env, [&] { idx_->set_search_params(P); });
    return env.Undefined();
  }

  Napi::Value ResetSearchParams(const Napi::CallbackInfo& info) {
    guard(info.Env(), [&] { idx_->reset_search_params(); });
    return info.Env().Undefined();
  }

  // learn(opts, progress?) -> Promise<report>. opts fields are all present (index.ts fills defaults).
  Napi::Value Learn(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsObject()) type_error(env, "learn options must be an object");
    auto o = info[0].As<Napi::Object>();
    learn::LearnConfig c;
    c.sample.max_queries = uint_arg(o.Get("sampleQueries"), "sampleQueries");
    c.sample.K = uint_arg(o.Get("neighbors"), "neighbors");
    c.sample.nprobe = uint_arg(o.Get("neighborNprobe"), "neighborNprobe", true);
    c.sample.kfactor = uint_arg(o.Get("neighborKFactor"), "neighborKFactor", true);
    c.sample.seed = uint_arg(o.Get("seed"), "seed", true);
    c.seed = c.sample.seed;
    c.batch = uint_arg(o.Get("batchSize"), "batchSize");
    c.epochs = uint_arg(o.Get("epochs"), "epochs");
    c.max_val = uint_arg(o.Get("maxValidation"), "maxValidation");
    c.nthreads = uint_arg(o.Get("threads"), "threads");
    auto num = [&](const char* key) {
      auto v = o.Get(key);
      if (!v.IsNumber()) type_error(env, std::string(key) + " must be a number");
      return v.As<Napi::Number>().DoubleValue();
    };
    c.val_fraction = num("validationFraction");
    c.weight_decay = num("weightDecay");
    c.warmup_fraction = num("warmupFraction");
    c.temperature_scale = num("temperatureScale");
    c.reduction_term_weight = num("reductionTermWeight");
    if (!(c.reduction_term_weight >= 0) || !std::isfinite(c.reduction_term_weight)) throw Napi::RangeError::New(env, "reductionTermWeight must be >= 0");
    if (!(c.temperature_scale > 0) || !std::isfinite(c.temperature_scale)) throw Napi::RangeError::New(env, "temperatureScale must be positive");
    if (!(c.val_fraction > 0 && c.val_fraction < 1)) throw Napi::RangeError::New(env, "validationFraction must be in (0, 1)");
    if (!(c.weight_decay >= 0) || !(c.warmup_fraction >= 0 && c.warmup_fraction <= 1))
      throw Napi::RangeError::New(env, "weightDecay must be >= 0 and warmupFraction in [0, 1]");
    auto lrs = o.Get("learningRates");
    if (!lrs.IsArray()) type_error(env, "learningRates must be an array");
    c.lrs.clear();
    for (uint32_t i = 0; i < lrs.As<Napi::Array>().Length(); i++) {
      auto v = lrs.As<Napi::Array>().Get(i);
      if (!v.IsNumber() || !(v.As<Napi::Number>().DoubleValue() > 0))
        throw Napi::RangeError::New(env, "learningRates must be positive numbers");
      c.lrs.push_back(v.As<Napi::Number>().DoubleValue());
    }
    if (c.lrs.empty()) throw Napi::RangeError::New(env, "learningRates must not be empty");
    // Learned-probe options (optional here; index.ts fills them).
    auto pos_list = [&](const char* key, std::vector<double>& out, bool allow_empty) {
      auto v = o.Get(key);
      if (v.IsUndefined()) return;
      if (!v.IsArray()) type_error(env, std::string(key) + " must be an array");
      out.clear();
      for (uint32_t i = 0; i < v.As<Napi::Array>().Length(); i++) {
        auto x = v.As<Napi::Array>().Get(i);
        if (!x.IsNumber() || !(x.As<Napi::Number>().DoubleValue() > 0) || !std::isfinite(x.As<Napi::Number>().DoubleValue()))
          throw Napi::RangeError::New(env, std::string(key) + " must be positive numbers");
        out.push_back(x.As<Napi::Number>().DoubleValue());
      }
      if (out.empty() && !allow_empty) throw Napi::RangeError::New(env, std::string(key) + " must not be empty");
    };
    pos_list("probeTemperatureScales", c.probe_tau_scales, false);
    pos_list("probeLearningRates", c.probe_lrs, true);
    if (!o.Get("neighborPool").IsUndefined()) c.sample.pool = uint_arg(o.Get("neighborPool"), "neighborPool", true);
    if (!o.Get("probeLoss").IsUndefined()) {
      auto v = o.Get("probeLoss");
      const std::string pl = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
      if (pl != "coverage" && pl != "crossEntropy") throw Napi::RangeError::New(env, "probeLoss must be 'coverage' or 'crossEntropy'");
      c.probe_coverage_loss = pl == "coverage";
    }
    if (!o.Get("probeEpochs").IsUndefined()) c.probe_epochs = uint_arg(o.Get("probeEpochs"), "probeEpochs", true);
    if (!o.Get("probeTargetNeighbors").IsUndefined()) c.probe_target_k = uint_arg(o.Get("probeTargetNeighbors"), "probeTargetNeighbors", true);
    if (!o.Get("probeCoverageNprobe").IsUndefined()) c.probe_coverage_nprobe = uint_arg(o.Get("probeCoverageNprobe"), "probeCoverageNprobe", true);
    c.recenter = o.Get("recenter").ToBoolean();
    c.learn_transform = o.Get("learnTransform").ToBoolean();
    if (!o.Get("scaleLearningRates").IsUndefined()) {
      auto v = o.Get("scaleLearningRates");
      const std::string sv = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
      c.scale_lr = sv == "both"      ? learn::LearnConfig::SCALE_BOTH
                   : sv == "auto"    ? learn::LearnConfig::SCALE_AUTO
                   : v.ToBoolean()   ? learn::LearnConfig::SCALE_ON
                                     : learn::LearnConfig::SCALE_OFF;
    }
    c.learn_probe = o.Get("learnProbe").ToBoolean();
    auto inst = o.Get("install");
    c.install = inst.IsString() && inst.As<Napi::String>().Utf8Value() == "always" ? learn::LearnConfig::ALWAYS
                : inst.ToBoolean()                                                  ? learn::LearnConfig::IF_BETTER
                                                                                    : learn::LearnConfig::NEVER;
    if (!idx_->trained()) throw Napi::Error::New(env, "learn: index is not trained");
    auto idx = idx_;
    std::shared_ptr<Napi::ThreadSafeFunction> tsfn;
    if (info[1].IsFunction())
      tsfn = std::make_shared<Napi::ThreadSafeFunction>(
          Napi::ThreadSafeFunction::New(env, info[1].As<Napi::Function>(), "winnow-learn-progress", 0, 1));
    auto rep = std::make_shared<learn::LearnReport>();
    // Progress calls still queued when the promise settles are counted so the JS side can
    // wait for them: callers then see every progress event before the result.
    auto sent = std::make_shared<std::atomic<size_t>>(0);
    auto w = new PromiseWorker(
        env,
        [idx, c, tsfn, rep, sent] {
          learn::LearnProgress prog;
          if (tsfn) {
            prog = [tsfn, sent](const std::string& phase, size_t done, size_t total, double value) {
              struct P {
                std::string phase;
                double done, total, value;
              };
              auto* p = new P{phase, double(done), double(total), value};
              auto st = tsfn->NonBlockingCall(p, [](Napi::Env env, Napi::Function cb, P* p) {
                try {
                  cb.Call({Napi::String::New(env, p->phase), Napi::Number::New(env, p->done),
                           Napi::Number::New(env, p->total),
                           std::isnan(p->value) ? env.Undefined() : Napi::Number::New(env, p->value)});
                } catch (...) {
                }
                delete p;
              });
              if (st != napi_ok)
                delete p;
              else
                ++*sent;
            };
          }
          *rep = learn::learn_search_params(*idx, c, prog);
        },
        [rep, sent](Napi::Env env) -> Napi::Value {
          const auto& r = *rep;
          auto o = Napi::Object::New(env);
          o.Set("progressEvents", double(sent->load()));
          o.Set("trainQueries", double(r.train_queries));
          o.Set("validationQueries", double(r.val_queries));
          o.Set("neighbors", double(r.neighbors));
          o.Set("steps", double(r.steps));
          o.Set("temperature", r.tau);
          o.Set("learningRate", r.lr);
          o.Set("codebookLrScale", r.codebook_lr_scale);
          o.Set("probeLrScale", r.probe_lr_scale);
          o.Set("validationLossBefore", r.val_loss_before);
          o.Set("validationLossAfter", r.val_loss_after);
          auto sw = Napi::Array::New(env, r.sweep.size());
          for (size_t i = 0; i < r.sweep.size(); i++) {
            auto p = Napi::Object::New(env);
            p.Set("learningRate", r.sweep[i].lr);
            p.Set("validationLoss", r.sweep[i].val_loss);
            p.Set("scaled", r.sweep[i].scaled);
            sw.Set(uint32_t(i), p);
          }
          o.Set("sweep", sw);
          o.Set("validationRecallBefore", r.val_recall_before);
          o.Set("validationRecallAfter", r.val_recall_after);
          o.Set("validationRecallWithoutRecenter", r.val_recall_no_recenter);
          o.Set("validationNprobe", double(r.val_nprobe));
          o.Set("validationKFactor", double(r.val_kfactor));
          o.Set("recentered", r.recentered);
          o.Set("probeLearned", r.probe_learned);
          o.Set("validationRecallProbe", r.val_recall_probe);
          o.Set("probeLossBefore", r.probe_loss_before);
          o.Set("probeLossAfter", r.probe_loss_after);
          o.Set("probeLearningRate", r.probe_lr);
          o.Set("probeTemperatureScale", r.probe_tau_scale);
          o.Set("probeCoverageNprobe", double(r.probe_nprobe));
          o.Set("probeCoverageBefore", r.probe_coverage_before);
          o.Set("probeCoverageAfter", r.probe_coverage_after);
          auto ps = Napi::Array::New(env, r.probe_sweep.size());
          for (size_t i = 0; i < r.probe_sweep.size(); i++) {
            auto p = Napi::Object::New(env);
            p.Set("temperatureScale", r.probe_sweep[i].tau_scale);
            p.Set("learningRate", r.probe_sweep[i].lr);
            p.Set("validationLoss", r.probe_sweep[i].val_loss);
            p.Set("validationCoverage", r.probe_sweep[i].val_coverage);
            ps.Set(uint32_t(i), p);
          }
          o.Set("probeSweep", ps);
          o.Set("installed", r.installed);
          o.Set("secondsSamples", r.seconds_samples);
          o.Set("secondsTrain", r.seconds_train);
          o.Set("secondsRecenter", r.seconds_recenter);
          o.Set("secondsTotal", r.seconds_total);
          o.Set("workingSetBytes", double(r.bytes));
          return o;
        });
    if (tsfn) w->cleanup = [tsfn] { tsfn->Release(); };
    w->Queue();
    return w->promise();
  }
};

const Kernels& pick(Napi::Env env, const Napi::Value& v) {
  std::string impl = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (impl == "scalar") return scalar_kernels();
  if (impl == "avx2") {
    if (!avx2_kernels() || !cpu_has_avx2()) throw Napi::Error::New(env, "AVX2 kernels are not available on this CPU");
    return *avx2_kernels();
  }
  throw Napi::TypeError::New(env, "impl must be 'scalar' or 'avx2'");
}

// Test-only: run one kernel with an explicit implementation.
Napi::Value TestKernel(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  std::string name = info[0].As<Napi::String>().Utf8Value();
  const Kernels& K = pick(env, info[1]);
  if (name == "dot" || name == "l2sq") {
    auto a = f32(info[2], "a"), b = f32(info[3], "b");
    if (a.ElementLength() != b.ElementLength()) throw Napi::RangeError::New(env, "length mismatch");
    float r = (name == "dot" ? K.dot : K.l2sq)(a.Data(), b.Data(), a.ElementLength());
    return Napi::Number::New(env, r);
  }
  if (name == "dot_f16" || name == "l2sq_f16") {
    auto a = f32(info[2], "a");
    auto b = typed<uint16_t, napi_uint16_array>(info[3], "b", "Uint16Array");
    if (a.ElementLength() != b.ElementLength()) throw Napi::RangeError::New(env, "length mismatch");
    float r = (name == "dot_f16" ? K.dot_f16 : K.l2sq_f16)(a.Data(), b.Data(), a.ElementLength());
    return Napi::Number::New(env, r);
  }
  if (name == "fastscan") {
    auto codes = typed<uint8_t, napi_uint8_array>(info[2], "codes", "Uint8Array");
    size_t nblocks = uint_arg(info[3], "nblocks"), m = uint_arg(info[4], "m");
    auto lut = typed<uint8_t, napi_uint8_array>(info[5], "lut", "Uint8Array");
    if (m % 2 || m > 256 || codes.ElementLength() != nblocks * block_bytes(m) || lut.ElementLength() != m * 16)
      throw Napi::RangeError::New(env, "fastscan: bad sizes");
    auto out = Napi::Uint16Array::New(env, nblocks * 32);
    K.fastscan(codes.Data(), nblocks, m, lut.Data(), out.Data());
    return out;
  }
  if (name == "fastscan_mask") {  // returns { sums, masks }
    auto codes = typed<uint8_t, napi_uint8_array>(info[2], "codes", "Uint8Array");
    size_t nblocks = uint_arg(info[3], "nblocks"), m = uint_arg(info[4], "m");
    auto lut = typed<uint8_t, napi_uint8_array>(info[5], "lut", "Uint8Array");
    size_t thr = uint_arg(info[6], "thr", true);
    if (m % 2 || m > 256 || codes.ElementLength() != nblocks * block_bytes(m) || lut.ElementLength() != m * 16 ||
        thr > 65535)
      throw Napi::RangeError::New(env, "fastscan_mask: bad sizes");
    auto out = Napi::Uint16Array::New(env, nblocks * 32);
    auto masks = Napi::Uint32Array::New(env, nblocks);
    K.fastscan_mask(codes.Data(), nblocks, m, lut.Data(), uint16_t(thr), out.Data(), masks.Data());
    auto o = Napi::Object::New(env);
    o.Set("sums", out);
    o.Set("masks", masks);
    return o;
  }
  throw Napi::TypeError::New(env, "unknown kernel " + name);
}

// Test-only: pack n x m unpacked 4-bit codes into the blocked fast-scan layout.
Napi::Value PackCodes(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  auto codes = typed<uint8_t, napi_uint8_array>(info[0], "codes", "Uint8Array");
  size_t m = uint_arg(info[1], "m");
  size_t n = codes.ElementLength() / m;
  size_t nb = (n + 31) / 32;
  auto out = Napi::Uint8Array::New(env, nb * block_bytes(m));
  std::memset(out.Data(), 0, out.ElementLength());
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < m; j++) set_code(out.Data() + (i / 32) * block_bytes(m), i % 32, j, codes[i * m + j] & 15);
  return out;
}

Napi::Value FloatToHalf(const Napi::CallbackInfo& info) {
  auto a = f32(info[0], "a");
  auto out = Napi::Uint16Array::New(info.Env(), a.ElementLength());
  for (size_t i = 0; i < a.ElementLength(); i++) out[i] = float_to_half(a[i]);
  return out;
}

Napi::Value KernelInfo(const Napi::CallbackInfo& info) {
  auto o = Napi::Object::New(info.Env());
  o.Set("active", active_kernels().name);
  o.Set("avx2", avx2_kernels() != nullptr && cpu_has_avx2());
  return o;
}

// The {d, dr, K, ip, tau} shape argument of the test-only loss functions (m = dr / 2 subspaces).
static learn::LossShape loss_shape_arg(const Napi::Object& o) {
  learn::LossShape sh;
  sh.d = uint_arg(o.Get("d"), "d");
  sh.dr = uint_arg(o.Get("dr"), "dr");
  sh.m = sh.dr / 2;
  sh.K = uint_arg(o.Get("K"), "K");
  sh.ip = o.Get("ip").ToBoolean();
  sh.tau = o.Get("tau").As<Napi::Number>().DoubleValue();
  return sh;
}

// Test-only: the learning loss (and gradients) on explicit data, for finite-difference checks.
// klLoss({d, dr, m, K, ip, tau}, A: Float64Array, C: Float64Array, Q, nbr: Uint32Array, orig, Y, codes: Uint8Array)
Napi::Value KlLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  learn::LossShape sh = loss_shape_arg(info[0].As<Napi::Object>());
  auto A = typed<double, napi_float64_array>(info[1], "A", "Float64Array");
  auto C = typed<double, napi_float64_array>(info[2], "C", "Float64Array");
  auto Q = f32(info[3], "Q");
  auto nbr = typed<uint32_t, napi_uint32_array>(info[4], "nbr", "Uint32Array");
  auto orig = f32(info[5], "orig");
  auto Y = f32(info[6], "Y");
  auto codes = typed<uint8_t, napi_uint8_array>(info[7], "codes", "Uint8Array");
  const size_t B = Q.ElementLength() / sh.d, rows = Y.ElementLength() / sh.dr;
  if (A.ElementLength() != sh.dr * sh.d || C.ElementLength() != sh.m * 32 || nbr.ElementLength() != B * sh.K ||
      orig.ElementLength() != B * sh.K || codes.ElementLength() != rows * sh.m)
    throw Napi::RangeError::New(env, "klLoss: bad sizes");
  for (size_t i = 0; i < nbr.ElementLength(); i++)
    if (nbr[i] >= rows) throw Napi::RangeError::New(env, "klLoss: neighbour out of range");
  for (size_t i = 0; i < codes.ElementLength(); i++)
    if (codes[i] > 15) throw Napi::RangeError::New(env, "klLoss: code out of range");
  learn::Batch b;
  b.B = B;
  b.Q = Q.Data();
  b.nbr = nbr.Data();
  b.orig = orig.Data();
  b.Y = Y.Data();
  b.codes = codes.Data();
  auto gA = Napi::Float64Array::New(env, A.ElementLength());
  auto gC = Napi::Float64Array::New(env, C.ElementLength());
  double terms[2];
  double loss = learn::kl_loss(sh, A.Data(), C.Data(), b, gA.Data(), gC.Data(), 2, terms);
  auto r = Napi::Object::New(env);
  r.Set("loss", loss);
  r.Set("term1", terms[0]);
  r.Set("term2", terms[1]);
  r.Set("gA", gA);
  r.Set("gC", gC);
  return r;
}

// Test-only: the learned-probe loss and its gradient w.r.t. the centroids.
// probeLoss({d, dr, K, ip, tau, cutoff?, targetK?}, A: Float64Array, C: Float64Array (nlist x dr), Q, orig, lists: Uint32Array)
Napi::Value ProbeLoss(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  learn::LossShape sh = loss_shape_arg(info[0].As<Napi::Object>());
  auto A = typed<double, napi_float64_array>(info[1], "A", "Float64Array");
  auto C = typed<double, napi_float64_array>(info[2], "C", "Float64Array");
  auto Q = f32(info[3], "Q");
  auto orig = f32(info[4], "orig");
  auto lists = typed<uint32_t, napi_uint32_array>(info[5], "lists", "Uint32Array");
  const size_t B = Q.ElementLength() / sh.d, nlist = C.ElementLength() / sh.dr;
  if (A.ElementLength() != sh.dr * sh.d || C.ElementLength() != nlist * sh.dr || orig.ElementLength() != B * sh.K ||
      lists.ElementLength() != B * sh.K)
    throw Napi::RangeError::New(env, "probeLoss: bad sizes");
  for (size_t i = 0; i < lists.ElementLength(); i++)
    if (lists[i] >= nlist) throw Napi::RangeError::New(env, "probeLoss: list out of range");
  auto g = Napi::Float64Array::New(env, C.ElementLength());
  auto opt = [&](const char* key) {
    auto v = info[0].As<Napi::Object>().Get(key);
    return v.IsUndefined() ? size_t(0) : uint_arg(v, key, true);
  };
  double loss = learn::probe_loss_raw(sh, A.Data(), C.Data(), nlist, Q.Data(), B, orig.Data(), lists.Data(), g.Data(), 2,
                                      opt("cutoff"), opt("targetK"));
  auto r = Napi::Object::New(env);
  r.Set("loss", loss);
  r.Set("gC", g);
  return r;
}

// parseVectorText(bytes): pgvector's text form → Float32Array, or null when it is not one.
Napi::Value ParseVectorText(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() != 1 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    Napi::TypeError::New(env, "parseVectorText expects a Uint8Array").ThrowAsJavaScriptException();
    return env.Null();
  }
  auto bytes = info[0].As<Napi::Uint8Array>();
  std::vector<float> v;
  if (!winnow::parse_vector_text(reinterpret_cast<const char*>(bytes.Data()), bytes.ElementLength(), v)) return env.Null();
  auto out = Napi::Float32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), out.Data());
  return out;
}

Napi::Object InitAll(Napi::Env env, Napi::Object exports) {
  auto* data = new AddonData();
  Napi::Function ctor = NativeIndex::Init(env);
  data->ctor = Napi::Persistent(ctor);
  Napi::Function filter_ctor = NativeFilter::Init(env);
  data->filter_ctor = Napi::Persistent(filter_ctor);
  env.SetInstanceData(data);
  exports.Set("NativeIndex", ctor);
  exports.Set("NativeFilter", filter_ctor);
  exports.Set("testKernel", Napi::Function::New(env, TestKernel));
  exports.Set("parseVectorText", Napi::Function::New(env, ParseVectorText));
  exports.Set("packCodes", Napi::Function::New(env, PackCodes));
  exports.Set("floatToHalf", Napi::Function::New(env, FloatToHalf));
  exports.Set("kernelInfo", Napi::Function::New(env, KernelInfo));
  exports.Set("compactListsBytes", Napi::Function::New(env, CompactListsBytes));
  exports.Set("klLoss", Napi::Function::New(env, KlLoss));
  exports.Set("probeLoss", Napi::Function::New(env, ProbeLoss));
  return exports;
}

}  // namespace

NODE_API_MODULE(winnow_native, InitAll)
