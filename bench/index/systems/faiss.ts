// Peer: FAISS through Debian's python3-faiss (/usr/bin/python3 bench/index/systems/faiss_peer.py).
// The Python side reads the same dataset files and reports ids + per-query latencies; recall is computed here
// with the same code and ground truth as every other system.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarizeTimings } from '../measure.ts';
import type { RunSpec, SweepPoint, SystemResult } from '../types.ts';

export const PYTHON = process.env.WINNOW_BENCH_PYTHON ?? '/usr/bin/python3';
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'faiss_peer.py');
export const FAISS_MISSING =
  'FAISS peer unavailable: install Debian packages with `apt-get install -y python3-faiss python3-numpy libopenblas0-openmp` (used by /usr/bin/python3)';

export interface GroundTruthView {
  gt: Int32Array;
  gtK: number;
  nq: number;
}

export async function faissVersion(): Promise<string | null> {
  return new Promise((resolve) => {
    const code = 'import faiss, numpy, os\nb = sorted({"/".join(os.path.realpath(l.split()[-1]).split("/")[-2:]) for l in open("/proc/self/maps") if "blas" in l.lower()})\nprint(faiss.__version__, numpy.__version__, "BLAS " + ",".join(b))';
    const p = spawn(PYTHON, ['-c', code]);
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', () => resolve(null));
    p.on('close', (code) => resolve(code === 0 ? out.trim() : null));
  });
}

export async function runFaiss(spec: RunSpec, kind: 'ivfpqfs' | 'hnsw', truth: GroundTruthView): Promise<SystemResult> {
  const dir = spec.datasetDir;
  const base = existsSync(path.join(dir, 'base.fvecs')) ? path.join(dir, 'base.fvecs') : path.join(dir, 'base.hvecs');
  const args = [SCRIPT, '--base', base, '--queries', path.join(dir, 'query.fvecs'), '--metric', spec.metric, '--k', String(spec.k), '--index', kind];
  if (spec.limit) args.push('--limit', String(spec.limit));
  if (spec.quick) args.push('--quick');
  args.push('--repeat', String(spec.repeat));
  const flags: Record<string, string> = { M: '--M', efConstruction: '--ef-construction', nlist: '--nlist', pqM: '--pq-m', buildThreads: '--build-threads' };
  for (const [key, v] of Object.entries(spec.build)) {
    if (!flags[key]) throw new Error(`faiss: unknown build parameter ${key}`);
    args.push(flags[key], String(v));
  }
  const lines = await runLines(PYTHON, args);
  const msgs = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l));
  const err = msgs.find((m) => m.type === 'error');
  if (err) throw new Error(err.error);
  const build = msgs.find((m) => m.type === 'build');
  const done = msgs.find((m) => m.type === 'done');
  if (!build || !done) throw new Error(`faiss_peer.py (${kind}) did not finish`);
  const tuneEnd = Math.floor(truth.nq / 2);
  const points: SweepPoint[] = msgs
    .filter((m) => m.type === 'point')
    .map((m) => {
      const buf = Buffer.from(m.ids, 'base64');
      const ids = new Int32Array(buf.buffer, buf.byteOffset, buf.length / 4);
      const s = summarizeTimings(ids, m.lat_ms as number[], truth.gt, truth.nq, spec.k, truth.gtK, tuneEnd);
      return { params: m.params, ...s, qps2: m.qps2 };
    });
  return {
    system: kind === 'ivfpqfs' ? 'faiss-ivfpqfs' : 'faiss-hnsw',
    config: build.config,
    buildParams: build.buildParams,
    trainSeconds: build.trainSeconds,
    addSeconds: build.addSeconds,
    buildThreads: build.buildThreads,
    filterBytesPerVector: build.filterBytesPerVector,
    totalBytesPerVector: build.totalBytesPerVector,
    bytesNote: kind === 'ivfpqfs' ? `faiss.serialize_index size / n (filter: the IVFPQFastScan alone incl. ids, centroids and block padding — its PQ code alone is ${build.buildParams.pqCodeBytes} B; total: with RefineFlat)` : 'faiss.serialize_index size / n',
    peakRssMiB: done.peakRssMiB,
    baseRssMiB: build.baseRssMiB,
    indexRssMiB: build.indexRssMiB,
    twoThreadNote: 'batch search of all queries with faiss.omp_set_num_threads(2)',
    notes: [`faiss ${build.faissVersion} (Debian python3-faiss) with BLAS ${build.blas}; single queries timed in Python, including the call overhead`],
    points,
  };
}

function runLines(cmd: string, args: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code, signal) => {
      const lines = out.split('\n').filter(Boolean);
      if (code !== 0) {
        const e = lines.map((l) => (l.startsWith('{') ? JSON.parse(l) : null)).find((m) => m?.type === 'error');
        reject(new Error(e ? e.error : `${cmd} exited with ${code ?? signal}`));
      } else resolve(lines);
    });
  });
}
