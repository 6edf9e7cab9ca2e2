#!/usr/bin/python3
"""FAISS peer for `npm run bench:index` (run by bench/index/systems/faiss.ts with Debian's /usr/bin/python3).

Reads the dataset files directly with numpy (fvecs, or float16 hvecs), builds one FAISS index, sweeps its
search parameters timing single queries one at a time on one thread, then a 2-thread batch figure, and
prints JSON lines on stdout: {"type":"build",...}, {"type":"point",...,"ids":base64 int32 nq*k,"lat_ms":[...]},
{"type":"done",...}. Recall is computed by the caller against the same ground truth as every other system.

  /usr/bin/python3 faiss_peer.py --base FILE --queries FILE --limit N --metric l2|cos --k 10
                                 --index ivfpqfs|hnsw [--M 32] [--nlist N] [--pq-m M] [--quick]
"""
import argparse
import base64
import json
import resource
import sys
import time

try:
    import numpy as np
    import faiss
except ImportError as e:  # pragma: no cover
    print(json.dumps({"type": "error", "error": f"{e}: install with `apt-get install -y python3-faiss python3-numpy` "
                      "(Debian packages, for /usr/bin/python3), plus libopenblas0-openmp for a fast BLAS"}), flush=True)
    sys.exit(2)


def read_vectors(path, limit):
    if path.endswith(".hvecs"):
        raw = np.fromfile(path, dtype=np.uint16)
        d = int(raw[:2].view(np.int32)[0])
        x = raw.reshape(-1, d + 2)[:, 2:].view(np.float16)
    else:
        raw = np.fromfile(path, dtype=np.int32)
        d = int(raw[0])
        x = raw.reshape(-1, d + 1)[:, 1:].view(np.float32)
    if limit:
        x = x[:limit]
    return np.ascontiguousarray(x.astype(np.float32))


def blas_library():
    """The BLAS shared library this process loaded (Debian picks it via update-alternatives)."""
    import os
    libs = set()
    with open("/proc/self/maps") as f:
        for line in f:
            if "blas" in line.lower():
                libs.add("/".join(os.path.realpath(line.split()[-1]).split("/")[-2:]))
    return ", ".join(sorted(libs)) or "unknown"


def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def peak_rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def emit(obj):
    print(json.dumps(obj), flush=True)


def log(msg):
    print(f"  {msg}", file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--base", required=True)
    ap.add_argument("--queries", required=True)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--metric", choices=["l2", "cos"], required=True)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--index", choices=["ivfpqfs", "hnsw"], required=True)
    ap.add_argument("--M", type=int, default=32)
    ap.add_argument("--ef-construction", type=int, default=200)
    ap.add_argument("--nlist", type=int, default=0)
    ap.add_argument("--pq-m", type=int, default=0)
    ap.add_argument("--build-threads", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--repeat", type=int, default=1, help="timed repetitions per point; the fastest is kept")
    a = ap.parse_args()

    xb = read_vectors(a.base, a.limit)
    xq = read_vectors(a.queries, 0)
    n, d = xb.shape
    nq = xq.shape[0]
    if a.metric == "cos":
        faiss.normalize_L2(xb)
        faiss.normalize_L2(xq)
    mt = faiss.METRIC_INNER_PRODUCT if a.metric == "cos" else faiss.METRIC_L2
    base_rss = rss_mib()
    k = a.k

    faiss.omp_set_num_threads(a.build_threads)
    if a.index == "ivfpqfs":
        nlist = a.nlist or int(round(4 * np.sqrt(n)))
        m = a.pq_m or d // 4
        while d % m:
            m -= 1
        quantizer = faiss.IndexFlat(d, mt)
        ivf = faiss.IndexIVFPQFastScan(quantizer, d, nlist, m, 4, mt)
        index = faiss.IndexRefineFlat(ivf)
        config = f"M={m}x4bit nlist={nlist} +RefineFlat"
        build_params = {"pqM": m, "nbits": 4, "nlist": nlist, "pqCodeBytes": m * 4 / 8}
        t0 = time.perf_counter()
        index.train(xb)
        train_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.add(xb)
        add_s = time.perf_counter() - t0
        filter_bytes = faiss.serialize_index(ivf).nbytes / n
        total_bytes = faiss.serialize_index(index).nbytes / n
        nprobes = [4, 16, 64] if a.quick else [2, 4, 8, 16, 32, 64, 128, 256]  # same grid as Winnow
        kfs = [4, 16] if a.quick else [2, 4, 8, 16, 32, 64, 128]
        sweep = [{"nprobe": p, "kFactor": f} for p in nprobes if p <= nlist for f in kfs]

        def set_params(p):
            ivf.nprobe = p["nprobe"]
            index.k_factor = float(p["kFactor"])
    else:
        index = faiss.IndexHNSWFlat(d, a.M, mt)
        index.hnsw.efConstruction = a.ef_construction
        config = f"HNSWFlat M={a.M} efC={a.ef_construction}"
        build_params = {"M": a.M, "efConstruction": a.ef_construction}
        train_s = 0.0
        t0 = time.perf_counter()
        index.add(xb)
        add_s = time.perf_counter() - t0
        filter_bytes = None
        total_bytes = faiss.serialize_index(index).nbytes / n
        efs = [16, 32, 64, 128, 256] if a.quick else [10, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512]
        sweep = [{"ef": e} for e in efs]

        def set_params(p):
            index.hnsw.efSearch = p["ef"]

    index_rss = rss_mib() - base_rss
    log(f"faiss {config}: train {train_s:.1f} s, add {add_s:.1f} s ({a.build_threads} threads)")
    emit({"type": "build", "config": config, "buildParams": build_params, "trainSeconds": train_s, "addSeconds": add_s,
          "buildThreads": a.build_threads, "filterBytesPerVector": filter_bytes, "totalBytesPerVector": total_bytes,
          "n": n, "d": d, "nq": nq, "faissVersion": faiss.__version__, "numpyVersion": np.__version__, "blas": blas_library(),
          "baseRssMiB": base_rss, "indexRssMiB": index_rss})

    # Single queries, one at a time, one thread.
    faiss.omp_set_num_threads(1)
    set_params(sweep[len(sweep) // 2])
    for i in range(min(100, nq)):  # warm-up
        index.search(xq[i:i + 1], k)
    rows = [xq[i:i + 1] for i in range(nq)]
    results = []
    for p in sweep:
        set_params(p)
        ids = np.full((nq, k), -1, dtype=np.int32)
        lat = None
        for _ in range(max(1, a.repeat)):
            cur = np.zeros(nq)
            for i in range(nq):
                t0 = time.perf_counter()
                _, I = index.search(rows[i], k)
                cur[i] = (time.perf_counter() - t0) * 1000
                ids[i] = I[0]
            if lat is None or cur.sum() < lat.sum():
                lat = cur
        results.append((p, ids, lat))
    peak = peak_rss_mib()

    # Two threads: the batch API over all queries (OpenMP across queries).
    faiss.omp_set_num_threads(2)
    for p, ids, lat in results:
        set_params(p)
        index.search(xq[:min(50, nq)], k)  # warm-up
        qps2 = 0.0
        for _ in range(max(1, a.repeat)):
            t0 = time.perf_counter()
            index.search(xq, k)
            qps2 = max(qps2, nq / (time.perf_counter() - t0))
        emit({"type": "point", "params": p, "ids": base64.b64encode(ids.tobytes()).decode(), "lat_ms": lat.round(5).tolist(),
              "qps2": qps2})
        log(f"faiss {config} {p}: 1-thread {nq / lat.sum() * 1000:.0f} q/s, 2-thread batch {qps2:.0f} q/s")
    emit({"type": "done", "peakRssMiB": peak})


if __name__ == "__main__":
    main()
