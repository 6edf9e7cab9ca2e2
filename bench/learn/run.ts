// `npm run bench:learn [-- --dataset NAME]... [--repeat N] [--mixed-seconds S] [--mixed-dataset NAME] [--quick] [--out DIR]
//   [--reduced-dim N] [--nlist N] [--baseline] [--no-hakes] [--nprobes a,b,..] [--kfactors a,b,..] [--h2h-rounds N]`
// --reduced-dim/--nlist build the index with those options (files get a -dr<N>/-nl<N> suffix); --baseline also builds an
// index with the default options and times its untrained params in the same rounds (and head to head against the
// learned picks), so a non-default index can be compared with what users get today.
// Issue 7's benchmark: on one index per dataset, recall@10 vs QPS with the untrained (insert-time) search
// parameters and with HAKES-learned ones, in the same run, measured interleaved (each grid point timed
// with both parameter sets back to back, swapped atomically with setSearchParams/resetSearchParams);
// training time and memory; then a mixed 90% search / 10% insert workload from concurrent clients vs
// searches only; "learned" is VectorIndex.learn()'s default (HAKES + the learned probe extension),
// "HAKES-only" is learnProbe: false. Training samples come only from the indexed vectors; the dataset's query set is held
// out. Its first half picks each operating point, its second half is what is reported.
// Writes bench/results/learn-<dataset>.{md,json} and bench/results/learn-mixed-<dataset>.md.
import { execSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { loadDataset, type Dataset } from '../lib/datasets.ts';
import { VectorIndex, type FilterParams, type LearnReport, type Metric } from '../../native/index.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

interface Args {
  datasets: string[];
  repeat: number;
  mixedSeconds: number;
  mixedDataset: string | null;
  quick: boolean;
  out: string;
  reducedDim: number | undefined;
  nlist: number | undefined;
  baseline: boolean;
  hakes: boolean;
  nprobes: number[] | undefined;
  kfactors: number[] | undefined;
  h2hRounds: number;
}

const USAGE =
  'usage: npm run bench:learn -- [--dataset NAME]... [--repeat N] [--mixed-seconds S] [--mixed-dataset NAME] [--quick] [--out DIR] ' +
  '[--reduced-dim N] [--nlist N] [--baseline] [--no-hakes] [--nprobes a,b,..] [--kfactors a,b,..] [--h2h-rounds N]';

function parseArgsOrExit(argv: string[]): Args {
  const { values: v } = parseArgs({
    args: argv,
    options: {
      dataset: { type: 'string', multiple: true, default: [] },
      repeat: { type: 'string', default: '7' },
      'mixed-seconds': { type: 'string', default: '6' },
      'mixed-dataset': { type: 'string' },
      quick: { type: 'boolean', default: false },
      'reduced-dim': { type: 'string' },
      nlist: { type: 'string' },
      baseline: { type: 'boolean', default: false },
      'no-hakes': { type: 'boolean', default: false },
      nprobes: { type: 'string' },
      kfactors: { type: 'string' },
      'h2h-rounds': { type: 'string', default: '21' },
      out: { type: 'string', default: path.join(repoRoot, 'bench', 'results') },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (v.help) {
    console.log(USAGE);
    process.exit(0);
  }
  const num = (x: string, name: string) => {
    const n = Number(x);
    if (!Number.isFinite(n) || n < 0) throw new Error(`--${name} must be a non-negative number, got ${x}`);
    return n;
  };
  // The high-dimensional sets in ../shared/data (glove-100 is 100-d: its default reducedDim keeps every dimension).
  const list = (x: string | undefined, name: string) => (x === undefined ? undefined : x.split(',').map((e) => Math.round(num(e, name))));
  const opt = (x: string | undefined, name: string) => (x === undefined ? undefined : Math.round(num(x, name)));
  const datasets = v.dataset!.length ? v.dataset! : ['wordnet-use-512', 'fashion-mnist-784'];
  return {
    datasets,
    repeat: Math.max(1, Math.round(num(v.repeat!, 'repeat'))),
    mixedSeconds: num(v['mixed-seconds']!, 'mixed-seconds'),
    mixedDataset: v['mixed-dataset'] ?? datasets[0],
    quick: v.quick!,
    out: path.resolve(v.out!),
    reducedDim: opt(v['reduced-dim'], 'reduced-dim'),
    nlist: opt(v.nlist, 'nlist'),
    baseline: v.baseline!,
    hakes: !v['no-hakes'],
    nprobes: list(v.nprobes, 'nprobes'),
    kfactors: list(v.kfactors, 'kfactors'),
    h2hRounds: Math.max(1, Math.round(num(v['h2h-rounds']!, 'h2h-rounds'))),
  };
}

const K = 10;
const TARGETS = [0.95, 0.98, 0.99];

interface Point {
  nprobe: number;
  kFactor: number;
  /** qps: median over the repeats; runs: every repeat's QPS, in repeat order (paired across variants). */
  tune: { recall: number; qps: number; runs: number[] };
  eval: { recall: number; qps: number; runs: number[] };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function metricOf(ds: Dataset): 'l2' | 'cos' {
  return ds.groundTruth.cos ? 'cos' : 'l2';
}

function recall(res: Int32Array, gt: Int32Array, gtK: number, from: number, to: number): number {
  let hit = 0;
  for (let q = from; q < to; q++) {
    const truth = new Set<number>();
    for (let j = 0; j < K; j++) truth.add(gt[q * gtK + j]);
    for (let j = 0; j < K; j++) if (truth.has(res[q * K + j])) hit++;
  }
  return hit / ((to - from) * K);
}

/** One pass over queries [from, to) on the JS thread; returns ids and CPU-time QPS (this process, 1 thread busy). */
function pass(idx: VectorIndex, ds: Dataset, from: number, to: number, nprobe: number, kFactor: number, out: Int32Array): number {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  for (let q = from; q < to; q++) {
    const r = idx.search(ds.queries.subarray(q * ds.dim, (q + 1) * ds.dim), { k: K, nprobe, kFactor });
    for (let j = 0; j < K; j++) out[q * K + j] = Number(r.ids[j]);
  }
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const cpuMs = (c.user + c.system) / 1000;
  // CPU time of this process (one busy thread) is robust to other work on the shared cores.
  return ((to - from) / Math.max(cpuMs > 0 ? cpuMs : wall, 1e-3)) * 1000;
}

function grid(nlist: number, quick: boolean, nprobes?: number[], kfactors?: number[]): { nprobe: number; kFactor: number }[] {
  if (nprobes || kfactors) {
    const nps = (nprobes ?? [2, 3, 4, 6, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128]).filter((n) => n <= nlist);
    const kfs = kfactors ?? [3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 20];
    return nps.flatMap((nprobe) => kfs.map((kFactor) => ({ nprobe, kFactor })));
  }
  // Denser around the recall-0.99 region (nprobe 24-64, kFactor 6-14 on wordnet-use-512); kFactor 2
  // never reached 0.95 in earlier runs; nprobe from nlist/64 (small indexes saturate at a few lists).
  const nps = (quick ? [8, 16, 32, 64] : [2, 3, 4, 6, 8, 12, 16, 24, 32, 40, 48, 64, 96, 128]).filter((n) => n <= nlist && (quick || n >= nlist / 64));
  if (!nps.includes(nlist) && nlist < (quick ? 64 : 128)) nps.push(nlist);
  const kfs = quick ? [3, 5, 10] : [3, 4, 5, 6, 7, 8, 9, 10, 12, 14, 16, 20];
  return nps.flatMap((nprobe) => kfs.map((kFactor) => ({ nprobe, kFactor })));
}

/**
 * Sweeps the grid with every parameter set. At each grid point the variants are timed in turn, `repeat`
 * rounds, the order of the variants rotating every round (so none always runs first after a switch);
 * a point's QPS is the median of its rounds and every round is kept, so ratios can be taken round by
 * round (the variants of one round ran back to back, under the same load).
 */
interface Variant {
  name: string;
  /** The index this variant searches (the default-options baseline is a second index). */
  idx: VectorIndex;
  params: FilterParams | null;
}

function sweep(ds: Dataset, variants: Variant[], repeat: number, g0: { nprobe: number; kFactor: number }[]): Point[][] {
  const gt = ds.groundTruth[metricOf(ds)]!;
  const half = Math.floor(ds.nq / 2);
  const res = new Int32Array(ds.nq * K);
  const out: Point[][] = variants.map(() => []);
  const use = (v: Variant) => (v.params ? v.idx.setSearchParams(v.params) : v.idx.resetSearchParams());
  for (const g of g0) {
    const runs = variants.map(() => ({ tune: [] as number[], eval: [] as number[] }));
    const recalls = variants.map(() => ({ tune: 0, eval: 0 }));
    for (let r = 0; r < repeat; r++) {
      for (let j = 0; j < variants.length; j++) {
        const vi = (j + r) % variants.length;
        use(variants[vi]);
        const idx = variants[vi].idx;
        for (let i = 0; i < 30; i++) idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k: K, ...g }); // warm
        runs[vi].tune.push(pass(idx, ds, 0, half, g.nprobe, g.kFactor, res));
        runs[vi].eval.push(pass(idx, ds, half, ds.nq, g.nprobe, g.kFactor, res));
        recalls[vi] = { tune: recall(res, gt, ds.gtK, 0, half), eval: recall(res, gt, ds.gtK, half, ds.nq) };
      }
    }
    variants.forEach((_, vi) =>
      out[vi].push({
        ...g,
        tune: { recall: recalls[vi].tune, qps: median(runs[vi].tune), runs: runs[vi].tune },
        eval: { recall: recalls[vi].eval, qps: median(runs[vi].eval), runs: runs[vi].eval },
      }),
    );
    process.stderr.write('.');
  }
  process.stderr.write('\n');
  return out;
}

let H2H_ROUNDS = 21;

/**
 * The two picked operating points re-timed head to head: H2H_ROUNDS rounds, each timing both (order
 * alternating) on the evaluation half right after each other, so load drift between grid points
 * (minutes apart in the sweep) cannot favour either. Returns the per-round ratios b/a.
 */
function headToHead(ds: Dataset, a: { p: Point; idx: VectorIndex; params: FilterParams | null }, b: { p: Point; idx: VectorIndex; params: FilterParams | null }) {
  const half = Math.floor(ds.nq / 2);
  const res = new Int32Array(ds.nq * K);
  const time = (x: typeof a) => {
    const idx = x.idx;
    if (x.params) idx.setSearchParams(x.params);
    else idx.resetSearchParams();
    for (let i = 0; i < 30; i++) idx.search(ds.queries.subarray(i * ds.dim, (i + 1) * ds.dim), { k: K, nprobe: x.p.nprobe, kFactor: x.p.kFactor });
    return pass(idx, ds, half, ds.nq, x.p.nprobe, x.p.kFactor, res);
  };
  const ratios: number[] = [];
  // Seconds per query of every round, so the pooled ratio (total CPU time of a over total CPU time of
  // b, every round counted) can be given beside the median of the per-round ratios.
  const ta: number[] = [], tb: number[] = [];
  for (let r = 0; r < H2H_ROUNDS; r++) {
    let qa: number, qb: number;
    if (r % 2) {
      qb = time(b);
      qa = time(a);
    } else {
      qa = time(a);
      qb = time(b);
    }
    ratios.push(qb / qa);
    ta.push(1 / qa);
    tb.push(1 / qb);
  }
  const sum = (xs: number[]) => xs.reduce((x, y) => x + y, 0);
  // Bootstrap over rounds (fixed seed): 5th-95th percentile of the pooled ratio.
  let seed = 12345;
  const rnd = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const boot: number[] = [];
  for (let i = 0; i < 2000; i++) {
    let sa = 0, sb = 0;
    for (let j = 0; j < ta.length; j++) {
      const r = Math.floor(rnd() * ta.length);
      sa += ta[r];
      sb += tb[r];
    }
    boot.push(sa / sb);
  }
  boot.sort((x, y) => x - y);
  return {
    median: median(ratios),
    min: Math.min(...ratios),
    max: Math.max(...ratios),
    pooled: sum(ta) / sum(tb),
    pooledLo: boot[Math.floor(0.05 * boot.length)],
    pooledHi: boot[Math.floor(0.95 * boot.length)],
    qpsA: ta.length / sum(ta),
    qpsB: tb.length / sum(tb),
  };
}

/** Round-by-round evaluation-half QPS ratios b/a of two points measured in the same sweep: median, min, max. */
function pairedRatio(a: Point, b: Point): { median: number; min: number; max: number } {
  const r = a.eval.runs.map((x, i) => b.eval.runs[i] / x);
  return { median: median(r), min: Math.min(...r), max: Math.max(...r) };
}

/** Operating point for a target: the highest tuning-half QPS among points reaching it on the tuning half. */
function pick(points: Point[], target: number): Point | null {
  let best: Point | null = null;
  for (const p of points) if (p.tune.recall >= target && (!best || p.tune.qps > best.tune.qps)) best = p;
  return best;
}

/**
 * Both parameter sets have the same shapes and run the same code, so a grid point costs the same
 * with either; on a loaded machine the two measured QPS of one point differ by noise only. The
 * cost-matched view gives both variants the geometric mean of the two measurements (tuning and
 * evaluation halves separately) and keeps each variant's own recall.
 */
function costMatched(untrained: Point[], learned: Point[]): { untrained: Point[]; learned: Point[] } {
  const g = (a: number, b: number) => Math.sqrt(a * b);
  const shared = untrained.map((u, i) => ({ tune: g(u.tune.qps, learned[i].tune.qps), eval: g(u.eval.qps, learned[i].eval.qps) }));
  const withQps = (ps: Point[]) => ps.map((p, i) => ({ ...p, tune: { ...p.tune, qps: shared[i].tune }, eval: { ...p.eval, qps: shared[i].eval } }));
  return { untrained: withQps(untrained), learned: withQps(learned) };
}

/**
 * Cost model fitted on every timing of the sweep (all rounds, both halves, every variant given: they
 * run the same code on an index of one shape): CPU µs per query = a + b·nprobe + c·kFactor, least
 * squares. It smooths out the load noise of single grid points; the pick for a target is the point
 * with the lowest modelled cost whose *tuning-half* recall reaches it.
 */
function fitCost(sets: Point[][]): { a: number; b: number; c: number } {
  // Normal equations for 3 unknowns.
  const M = [[0, 0, 0], [0, 0, 0], [0, 0, 0]], v = [0, 0, 0];
  for (const ps of sets)
    for (const p of ps)
      for (const q of [...p.tune.runs, ...p.eval.runs]) {
        const x = [1, p.nprobe, p.kFactor], y = 1e6 / q;
        for (let i = 0; i < 3; i++) {
          v[i] += x[i] * y;
          for (let j = 0; j < 3; j++) M[i][j] += x[i] * x[j];
        }
      }
  // Gaussian elimination.
  for (let i = 0; i < 3; i++)
    for (let r = i + 1; r < 3; r++) {
      const f = M[r][i] / M[i][i];
      for (let j = i; j < 3; j++) M[r][j] -= f * M[i][j];
      v[r] -= f * v[i];
    }
  const c = v[2] / M[2][2], b = (v[1] - M[1][2] * c) / M[1][1], a = (v[0] - M[0][1] * b - M[0][2] * c) / M[0][0];
  return { a, b, c };
}

function pickModelled(points: Point[], target: number, m: { a: number; b: number; c: number }): Point | null {
  const cost = (p: Point) => m.a + m.b * p.nprobe + m.c * p.kFactor;
  let best: Point | null = null;
  for (const p of points) if (p.tune.recall >= target && (!best || cost(p) < cost(best))) best = p;
  return best;
}

/** QPS interpolated at exactly `target` on the evaluation half's Pareto frontier (null when not reached). */
function frontierQps(points: Point[], target: number): number | null {
  const pts = points.map((p) => p.eval).sort((a, b) => b.qps - a.qps);
  const front: { recall: number; qps: number }[] = [];
  let bestRecall = -1;
  for (const p of pts) if (p.recall > bestRecall) { front.push(p); bestRecall = p.recall; }
  // front: QPS descending, recall ascending.
  for (let i = 0; i < front.length; i++) {
    if (front[i].recall >= target) {
      if (i === 0) return front[0].qps;
      const a = front[i - 1], b = front[i];
      return a.qps + ((target - a.recall) / (b.recall - a.recall)) * (b.qps - a.qps);
    }
  }
  return null;
}

async function mixed(idx: VectorIndex, ds: Dataset, seconds: number, clients: number) {
  const gt = ds.groundTruth[metricOf(ds)]!;
  // The operating point: the one reaching 0.95 on the tuning half (learned params installed).
  const nprobe = 16, kFactor = 8;
  const run = async (insertShare: number) => {
    let searches = 0, inserts = 0, hit = 0, judged = 0;
    const deadline = performance.now() + seconds * 1000;
    let q = 0, row = 0;
    const t0 = performance.now();
    const client = async (c: number) => {
      let i = c;
      while (performance.now() < deadline) {
        i++;
        if (insertShare > 0 && i % Math.round(1 / insertShare) === 0) {
          // An insert: the row's own vector again under its own id (upsert: encode with the insert
          // params, append, tombstone the old version), so the ground truth stays valid.
          const id = row++ % ds.n;
          await idx.add(new BigInt64Array([BigInt(id)]), ds.base.slice(id * ds.dim, (id + 1) * ds.dim), 1);
          inserts++;
        } else {
          const qi = q++ % ds.nq;
          const r = await idx.searchBatch(ds.queries.subarray(qi * ds.dim, (qi + 1) * ds.dim), { k: K, nprobe, kFactor, threads: 1 });
          const truth = new Set<number>();
          for (let j = 0; j < K; j++) truth.add(gt[qi * ds.gtK + j]);
          for (let j = 0; j < K; j++) if (truth.has(Number(r.ids[j]))) hit++;
          judged += K;
          searches++;
        }
      }
    };
    await Promise.all(Array.from({ length: clients }, (_, c) => client(c)));
    const s = (performance.now() - t0) / 1000;
    return { searchQps: searches / s, insertsPerS: inserts / s, recall: hit / Math.max(1, judged), searches, inserts, seconds: s };
  };
  const rounds: { only: Awaited<ReturnType<typeof run>>; mix: Awaited<ReturnType<typeof run>> }[] = [];
  for (let r = 0; r < 3; r++) rounds.push({ only: await run(0), mix: await run(0.1) });
  return { nprobe, kFactor, clients, rounds };
}

function fmt(n: number, d = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: d, maximumFractionDigits: d });
}

async function main() {
  const args = parseArgsOrExit(process.argv.slice(2));
  H2H_ROUNDS = args.h2hRounds;
  const suffix = (args.reducedDim ? `-dr${args.reducedDim}` : '') + (args.nlist ? `-nl${args.nlist}` : '');
  mkdirSync(args.out, { recursive: true });
  const git = execSync('git rev-parse --short HEAD', { cwd: repoRoot }).toString().trim();
  const cmd = `npm run bench:learn -- ${process.argv.slice(2).join(' ')}`.trim();
  for (const name of args.datasets) {
    const started = new Date();
    const load0 = os.loadavg();
    const ds = loadDataset(name);
    const metric = metricOf(ds);
    console.log(`${name}: n=${ds.n} d=${ds.dim} ${metric}, ${ds.nq} queries`);
    const idx = new VectorIndex({ dim: ds.dim, metric, ...(args.reducedDim ? { reducedDim: args.reducedDim } : {}), ...(args.nlist ? { nlist: args.nlist } : {}) });
    let t = performance.now();
    await idx.train(ds.base);
    await idx.add(new BigInt64Array(ds.n).map((_, i) => BigInt(i)), ds.base);
    const buildS = (performance.now() - t) / 1000;
    const st = idx.stats();
    console.log(`built in ${buildS.toFixed(1)} s: nlist ${st.nlist}, reducedDim ${st.reducedDim}`);
    // The default-options index (what users get today), untrained, as the absolute reference.
    let base: VectorIndex | null = null;
    if (args.baseline) {
      base = new VectorIndex({ dim: ds.dim, metric });
      await base.train(ds.base);
      await base.add(new BigInt64Array(ds.n).map((_, i) => BigInt(i)), ds.base);
      console.log(`baseline (default options) built: nlist ${base.stats().nlist}, reducedDim ${base.stats().reducedDim}`);
    }

    // Training: time and memory (RSS sampled every 50 ms while it runs; the report's working set).
    global.gc?.();
    const rss0 = process.memoryUsage().rss;
    let peak = rss0;
    const timer = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
    const log: string[] = [];
    t = performance.now();
    const rep: LearnReport = await idx.learn({ threads: 2, install: 'always' }, (phase, done, total, value) => {
      if (!phase.startsWith('train') || done === total) log.push(`${((performance.now() - t) / 1000).toFixed(1)} s ${phase} ${done}/${total}${value === undefined ? '' : ' ' + value.toFixed(4)}`);
    });
    const learnS = (performance.now() - t) / 1000;
    clearInterval(timer);
    peak = Math.max(peak, process.memoryUsage().rss);
    console.log(`learned in ${learnS.toFixed(1)} s (installed ${rep.installed}, lr ${rep.learningRate}, val recall ${rep.validationRecallBefore.toFixed(4)} -> ${rep.validationRecallAfter.toFixed(4)})`);
    // install: 'always' so the comparison is made even when the validation split would have kept
    // the untrained params (the default install rule); the report shows that verdict.
    const learntParams = idx.getParams('search')!;
    // HAKES exactly (no learned probe, learnProbe: false) for comparison, on the same index.
    t = performance.now();
    const hakesRep = args.hakes ? await idx.learn({ threads: 2, install: 'always', learnProbe: false }) : null;
    const hakesS = (performance.now() - t) / 1000;
    const hakesParams = args.hakes ? idx.getParams('search')! : null;

    const variants: Variant[] = [{ name: 'untrained', idx, params: null }, { name: 'learned', idx, params: learntParams }];
    if (hakesParams) variants.push({ name: 'hakes', idx, params: hakesParams });
    if (base) variants.push({ name: 'baseline', idx: base, params: null });
    const swept = sweep(ds, variants, args.repeat, grid(st.nlist, args.quick, args.nprobes, args.kfactors));
    const [untrained, learned] = swept;
    const hakes = hakesParams ? swept[2] : null;
    const baseline = base ? swept[variants.length - 1] : null;
    const h2h = (u: Point | null, l: Point | null, params: FilterParams, uIdx: VectorIndex = idx) => (u && l ? headToHead(ds, { p: u, idx: uIdx, params: null }, { p: l, idx, params }) : null);
    const h2hLearned = TARGETS.map((target) => h2h(pick(untrained, target), pick(learned, target), learntParams));
    const h2hHakes = TARGETS.map((target) => (hakes && hakesParams ? h2h(pick(untrained, target), pick(hakes, target), hakesParams) : null));
    const h2hBaseline = TARGETS.map((target) => (baseline && base ? h2h(pick(baseline, target), pick(learned, target), learntParams, base) : null));
    idx.setSearchParams(learntParams);
    const hakesRows = hakes ? TARGETS.map((target, i) => ({ target, u: pick(untrained, target), l: pick(hakes, target), fu: frontierQps(untrained, target), fl: frontierQps(hakes, target), h: h2hHakes[i] })) : [];
    const baseRows = baseline ? TARGETS.map((target, i) => ({ target, u: pick(baseline, target), l: pick(learned, target), fu: frontierQps(baseline, target), fl: frontierQps(learned, target), h: h2hBaseline[i] })) : [];
    const rows = TARGETS.map((target) => {
      const u = pick(untrained, target), l = pick(learned, target);
      const fu = frontierQps(untrained, target), fl = frontierQps(learned, target);
      return { target, u, l, fu, fl, h: h2hLearned[TARGETS.indexOf(target)] };
    });
    const cm = costMatched(untrained, learned);
    const model = fitCost([untrained, learned]);
    // The baseline index has another shape (its own reducedDim), so its own fit, from the same rounds.
    const baseModel = baseline ? fitCost([baseline]) : null;
    const modelRows = TARGETS.map((target) => {
      const u = pickModelled(untrained, target, model), l = pickModelled(learned, target, model);
      const cost = (p: Point) => model.a + model.b * p.nprobe + model.c * p.kFactor;
      const b = baseline && baseModel ? pickModelled(baseline, target, baseModel) : null;
      const cb = b && baseModel ? baseModel.a + baseModel.b * b.nprobe + baseModel.c * b.kFactor : null;
      // The model's picks re-timed head to head like the QPS picks (same rounds, same pooling).
      const h = h2h(u, l, learntParams);
      const hb = base && b ? h2h(b, l, learntParams, base) : null;
      return { target, u, l, b, ratio: u && l ? cost(u) / cost(l) : null, cu: u ? cost(u) : null, cl: l ? cost(l) : null, cb, h, hb };
    });
    const cmRows = TARGETS.map((target) => ({ target, u: pick(cm.untrained, target), l: pick(cm.learned, target) }));
    const load1 = os.loadavg();
    const json = { costModel: { ...model, baseline: baseModel, rows: modelRows.map((r) => ({ target: r.target, untrained: r.u && { nprobe: r.u.nprobe, kFactor: r.u.kFactor }, learned: r.l && { nprobe: r.l.nprobe, kFactor: r.l.kFactor }, baseline: r.b && { nprobe: r.b.nprobe, kFactor: r.b.kFactor }, ratio: r.ratio, headToHead: r.h, headToHeadBaseline: r.hb })) }, costMatched: cmRows, dataset: name, n: ds.n, dim: ds.dim, metric, git, command: cmd, started: started.toISOString(), loadavg: { start: load0, end: load1 }, build: { seconds: buildS, stats: st }, learn: { seconds: learnS, report: rep, rssBeforeMiB: rss0 / 2 ** 20, rssPeakMiB: peak / 2 ** 20, log }, hakesOnly: { seconds: hakesS, report: hakesRep }, headToHead: { rounds: H2H_ROUNDS, learned: h2hLearned, hakes: h2hHakes, baseline: h2hBaseline }, untrained, learned, hakes, baseline, baselineStats: base?.stats() ?? null };

    let mixedMd = '';
    if (name === args.mixedDataset && args.mixedSeconds > 0) {
      console.log(`mixed workload on ${name}: 3 rounds of ${args.mixedSeconds} s searches only, then ${args.mixedSeconds} s 90/10`);
      const m = await mixed(idx, ds, args.mixedSeconds, 4);
      (json as Record<string, unknown>).mixed = m;
      const avg = (f: (r: (typeof m.rounds)[number]) => number) => m.rounds.reduce((s, r) => s + f(r), 0) / m.rounds.length;
      const ratio = avg((r) => r.mix.searchQps) / avg((r) => r.only.searchQps);
      mixedMd = [
        `# Mixed workload with learned search parameters: ${name}`,
        '',
        `- Command: \`${cmd}\` (git ${git}); ${new Date().toISOString()}; load average at end ${os.loadavg().map((x) => x.toFixed(2)).join(' ')}`,
        `- One index (n = ${fmt(ds.n)}, learned search params installed), ${m.clients} concurrent clients in one process, each a loop of awaited single operations on libuv's pool (searchBatch of 1 query, threads 1; add of 1 row): searches only vs 90% searches / 10% inserts, alternating, ${m.rounds.length} rounds of ${args.mixedSeconds} s each.`,
        `- Searches: held-out dataset queries, k = 10, nprobe ${m.nprobe}, kFactor ${m.kFactor}; recall against the dataset's ground truth. Inserts: a base row's own vector under its own id (an upsert: transform + encode with the *insert* params, append to its list, tombstone the old version), so the ground truth stays valid; the search path takes no global lock (per-list reader/writer locks, atomic params swap).`,
        '',
        '| round | searches-only QPS | recall | 90/10 search QPS | recall | inserts/s | search QPS ratio |',
        '|---|---|---|---|---|---|---|',
        ...m.rounds.map((r, i) => `| ${i + 1} | ${fmt(r.only.searchQps)} | ${r.only.recall.toFixed(4)} | ${fmt(r.mix.searchQps)} | ${r.mix.recall.toFixed(4)} | ${fmt(r.mix.insertsPerS)} | ${(r.mix.searchQps / r.only.searchQps).toFixed(2)} |`),
        `| mean | ${fmt(avg((r) => r.only.searchQps))} | ${avg((r) => r.only.recall).toFixed(4)} | ${fmt(avg((r) => r.mix.searchQps))} | ${avg((r) => r.mix.recall).toFixed(4)} | ${fmt(avg((r) => r.mix.insertsPerS))} | ${ratio.toFixed(2)} |`,
        '',
        `Goal: search QPS ≥ 0.8× searches-only with recall unchanged — ${ratio >= 0.8 ? 'met' : 'not met'} (ratio ${ratio.toFixed(2)}). ` +
          `With 10% of operations being inserts, at most 0.9× of the operations are searches, so a ratio near 0.9 means inserts cost about as much as searches.`,
        '',
      ].join('\n');
      writeFileSync(path.join(args.out, `learn-mixed-${name}${suffix}.md`), mixedMd);
    }

    const pt = (p: Point | null) => (p ? `${fmt(p.eval.qps)} [${p.eval.recall.toFixed(3)}, nprobe=${p.nprobe} kFactor=${p.kFactor}]` : '— (not reached)');
    const spread = (u: Point | null, l: Point | null) => {
      if (!u || !l) return '—';
      const p = pairedRatio(u, l);
      return `${p.median.toFixed(2)}× [${p.min.toFixed(2)}–${p.max.toFixed(2)}]`;
    };
    const hh = (h: ReturnType<typeof headToHead> | null) =>
      h ? `${h.median.toFixed(2)}× [${h.min.toFixed(2)}–${h.max.toFixed(2)}]; pooled ${h.pooled.toFixed(2)}× (90% bootstrap ${h.pooledLo.toFixed(2)}–${h.pooledHi.toFixed(2)}; ${fmt(h.qpsA)} → ${fmt(h.qpsB)} QPS)` : '—';
    const ratioAt = (r: (typeof rows)[number]) => (r.u && r.l ? r.l.eval.qps / r.u.eval.qps : null);
    const r99 = rows.find((r) => r.target === 0.99)!;
    const fr = r99.fu && r99.fl ? r99.fl / r99.fu : null;
    const md = [
      `# Learned search parameters (HAKES): ${name}`,
      '',
      `- Command: \`${cmd}\` (git ${git})`,
      `- Date: ${started.toISOString()}; machine: nproc ${os.cpus().length}, ${os.cpus()[0]?.model ?? ''}, ${fmt(os.totalmem() / 2 ** 30)} GiB RAM; node ${process.version}`,
      `- Load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')} (2 cores shared with other work: compare the two columns, which were measured interleaved, not absolute numbers across runs).`,
      `- Data: n = ${fmt(ds.n)}, d = ${ds.dim}, metric ${metric}, k = 10. Index: ${args.reducedDim || args.nlist ? 'options' : 'defaults'} (nlist ${st.nlist}, reducedDim ${st.reducedDim}, ${st.reducedDim / 4} filter bytes/vector, float32 storage), built in ${buildS.toFixed(1)} s.${base ? ` Baseline: a second index with the default options (nlist ${base.stats().nlist}, reducedDim ${base.stats().reducedDim}), untrained, timed in the same rounds.` : ''}`,
      `- Training (\`VectorIndex.learn()\` defaults, 2 threads): ${fmt(rep.trainQueries)} training + ${fmt(rep.validationQueries)} validation queries sampled from the **indexed vectors**, ${rep.neighbors} neighbours each, batch 512, 1 epoch per learning rate, rates {1e-5, 1e-4, 1e-3} → chose ${rep.learningRate} on the validation split (loss ${rep.validationLossBefore.toFixed(4)} → ${rep.validationLossAfter.toFixed(4)}; validation recall@10 at nprobe ${rep.validationNprobe}/kFactor ${rep.validationKFactor}: ${rep.validationRecallBefore.toFixed(4)} → ${rep.validationRecallAfter.toFixed(4)}, centroids re-centred: ${rep.recentered ? 'kept' : 'rejected by validation'}; learned probe (extension beyond HAKES, \`learnProbe\`): ${rep.probeLearned ? `kept, validation recall ${rep.validationRecallProbe.toFixed(4)}` : 'rejected by validation'}, validation probe coverage at nprobe ${rep.probeCoverageNprobe} ${rep.probeCoverageBefore.toFixed(4)} → ${rep.probeCoverageAfter.toFixed(4)} (${rep.probeLearningRate ? `temperature ×${rep.probeTemperatureScale}, rate ${rep.probeLearningRate}` : 'no trial improved it'}; trials ${rep.probeSweep.map((p) => `×${p.temperatureScale}/${p.learningRate}: ${p.validationCoverage.toFixed(4)}`).join(', ')}); default install rule would have ${rep.validationRecallAfter >= rep.validationRecallBefore ? 'installed' : 'kept the untrained params'}).`,
      `- Training time **${learnS.toFixed(1)} s** (${(learnS / (ds.n / 1e5)).toFixed(1)} s per 100k vectors; neighbour search ${rep.secondsSamples.toFixed(1)} s, optimisation ${rep.secondsTrain.toFixed(1)} s, re-centring, learned probe and validation ${rep.secondsRecenter.toFixed(1)} s). Memory: working set ${fmt(rep.workingSetBytes / 2 ** 20, 1)} MiB (samples + optimiser state); process RSS ${fmt(rss0 / 2 ** 20)} MiB before, peak ${fmt(peak / 2 ** 20)} MiB during (+${fmt((peak - rss0) / 2 ** 20)} MiB).`,
      `- Evaluation: the dataset's ${ds.nq} queries, never seen by training. Grid of nprobe × kFactor, each point timed in ${args.repeat} rounds, each round running every parameter set back to back on the same index (order rotating), the median round reported; QPS = queries per CPU-second of one thread (\`search()\` on the JS thread). First ${Math.floor(ds.nq / 2)} queries pick the operating point, the last ${ds.nq - Math.floor(ds.nq / 2)} are reported. The picked points are then re-timed head to head (${H2H_ROUNDS} rounds, both points back to back each round, order alternating): grid points are timed minutes apart, so load drift on the shared machine can make one look cheaper than it is. Head to head gives the median and range of the per-round ratios and the pooled ratio (total CPU time over all rounds, every round counted) with a 90% bootstrap interval over rounds.`,
      '',
      '## Recall@10 targets',
      '',
      '| target | untrained: QPS [recall, params] | learned: QPS [recall, params] | learned / untrained (medians) | per sweep round: median [min–max] | head to head, ' + H2H_ROUNDS + ' rounds: median [min–max] | frontier QPS at target (untrained → learned) |',
      '|---|---|---|---|---|---|---|',
      ...rows.map((r) => {
        const q = ratioAt(r);
        return `| ${r.target} | ${pt(r.u)} | ${pt(r.l)} | ${q === null ? '—' : q.toFixed(2) + '×'} | ${spread(r.u, r.l)} | ${hh(r.h)} | ${r.fu === null ? '—' : fmt(r.fu)} → ${r.fl === null ? '—' : fmt(r.fl)}${r.fu && r.fl ? ` (${(r.fl / r.fu).toFixed(2)}×)` : ''} |`;
      }),
      '',
      ...(hakesRep
        ? [
            `### HAKES exactly (\`learnProbe: false\`: transform + codebooks, centroids re-centred or kept by validation; learned in ${hakesS.toFixed(1)} s, validation recall ${hakesRep.validationRecallBefore.toFixed(4)} → ${hakesRep.validationRecallAfter.toFixed(4)})`,
            '',
            '| target | untrained: QPS [recall, params] | HAKES-only: QPS [recall, params] | HAKES-only / untrained | per sweep round: median [min–max] | head to head: median [min–max] | frontier QPS at target |',
            '|---|---|---|---|---|---|---|',
            ...hakesRows.map((r) => `| ${r.target} | ${pt(r.u)} | ${pt(r.l)} | ${r.u && r.l ? (r.l.eval.qps / r.u.eval.qps).toFixed(2) + '×' : '—'} | ${spread(r.u, r.l)} | ${hh(r.h)} | ${r.fu === null ? '—' : fmt(r.fu)} → ${r.fl === null ? '—' : fmt(r.fl)}${r.fu && r.fl ? ` (${(r.fl / r.fu).toFixed(2)}×)` : ''} |`),
            '',
          ]
        : []),
      ...(base
        ? [
            `### Learned on this index against the default-options index untrained (nlist ${base.stats().nlist}, reducedDim ${base.stats().reducedDim}; what users get today)`,
            '',
            '| target | default index untrained: QPS [recall, params] | this index learned: QPS [recall, params] | learned / default | per sweep round: median [min–max] | head to head: median [min–max] | frontier QPS at target |',
            '|---|---|---|---|---|---|---|',
            ...baseRows.map((r) => `| ${r.target} | ${pt(r.u)} | ${pt(r.l)} | ${r.u && r.l ? (r.l.eval.qps / r.u.eval.qps).toFixed(2) + '×' : '—'} | ${spread(r.u, r.l)} | ${hh(r.h)} | ${r.fu === null ? '—' : fmt(r.fu)} → ${r.fl === null ? '—' : fmt(r.fl)}${r.fu && r.fl ? ` (${(r.fl / r.fu).toFixed(2)}×)` : ''} |`),
            '',
          ]
        : []),
      `### Cost model (CPU µs per query fitted on every timing of the untrained and learned sweeps: ${model.a.toFixed(1)} + ${model.b.toFixed(2)}·nprobe + ${model.c.toFixed(2)}·kFactor; picks on the tuning half by modelled cost, recall shown for the evaluation half)`,
      '',
      `| target | untrained: modelled µs [recall, params] | learned: modelled µs [recall, params] | modelled learned / untrained QPS | these picks head to head, ${H2H_ROUNDS} rounds |${baseModel ? ' default index untrained (own fit ' + baseModel.a.toFixed(1) + ' + ' + baseModel.b.toFixed(2) + '·nprobe + ' + baseModel.c.toFixed(2) + '·kFactor): modelled µs [recall, params] | learned here / default index, head to head |' : ''}`,
      `|---|---|---|---|---|${baseModel ? '---|---|' : ''}`,
      ...modelRows.map((r) => {
        const c = (p: Point | null, x: number | null) => (p && x !== null ? `${x.toFixed(1)} [${p.eval.recall.toFixed(3)}, nprobe=${p.nprobe} kFactor=${p.kFactor}]` : '— (not reached)');
        return `| ${r.target} | ${c(r.u, r.cu)} | ${c(r.l, r.cl)} | ${r.ratio === null ? '—' : r.ratio.toFixed(2) + '×'} | ${hh(r.h)} |${baseModel ? ` ${c(r.b, r.cb)} | ${hh(r.hb)} |` : ''}`;
      }),
      '',
      '### Cost-matched (same QPS for a grid point with either parameter set: the geometric mean of its two measurements)',
      '',
      '| target | untrained: QPS [recall, params] | learned: QPS [recall, params] | learned / untrained |',
      '|---|---|---|---|',
      ...cmRows.map((r) => `| ${r.target} | ${pt(r.u)} | ${pt(r.l)} | ${r.u && r.l ? (r.l.eval.qps / r.u.eval.qps).toFixed(2) + '×' : '—'} |`),
      '',
      `Goal: ≥ 1.15× QPS at recall@10 = 0.99 — ${ratioAt(r99) === null ? 'not measurable (0.99 not reached)' : ratioAt(r99)! >= 1.15 ? `met (${ratioAt(r99)!.toFixed(2)}×)` : `not met (${ratioAt(r99)!.toFixed(2)}× at the picked operating points${fr ? `, ${fr.toFixed(2)}× on the interpolated frontier` : ''})`}${r99.h ? `; the picked points head to head: ${hh(r99.h)}` : ''}. ${modelRows[2].h ? `Picked by the cost model, head to head: ${hh(modelRows[2].h)}. ` : ''}Training goal: < 120 s per 100k vectors on 2 cores — ${learnS / (ds.n / 1e5) < 120 ? 'met' : 'not met'}.`,
      '',
      '## Sweep (evaluation half)',
      '',
      `| nprobe | kFactor | untrained recall | untrained QPS | learned recall | learned QPS |${hakes ? ' HAKES-only recall | HAKES-only QPS |' : ''}${baseline ? ' default index recall | default index QPS |' : ''}`,
      `|---|---|---|---|---|---|${hakes ? '---|---|' : ''}${baseline ? '---|---|' : ''}`,
      ...untrained.map((u, i) => `| ${u.nprobe} | ${u.kFactor} | ${u.eval.recall.toFixed(4)} | ${fmt(u.eval.qps)} | ${learned[i].eval.recall.toFixed(4)} | ${fmt(learned[i].eval.qps)} |${hakes ? ` ${hakes[i].eval.recall.toFixed(4)} | ${fmt(hakes[i].eval.qps)} |` : ''}${baseline ? ` ${baseline[i].eval.recall.toFixed(4)} | ${fmt(baseline[i].eval.qps)} |` : ''}`),
      '',
      '## Training log',
      '',
      '```',
      ...log,
      '```',
      '',
    ].join('\n');
    writeFileSync(path.join(args.out, `learn-${name}${suffix}.md`), md);
    writeFileSync(path.join(args.out, `learn-${name}${suffix}.json`), JSON.stringify(json, null, 1));
    console.log(md.split('\n').slice(0, 20).join('\n'));
    if (mixedMd) console.log(mixedMd);
  }
}

await main();
