// Winnow's native filter/refine vector index (HAKES-style: reduced-dimension IVF +
// 4-bit fast-scan PQ filter stage, exact refine on stored vectors). This module is
// the only entry point other packages should import; the .node addon is built by
// `npm ci` (root install script) into native/build/Release.
import { createRequire } from 'node:module';
import os from 'node:os';

const require = createRequire(import.meta.url);

/** Raw addon surface; not part of the public API. */
interface NativeResult {
  ids: BigInt64Array;
  distances: Float32Array;
}
interface NativeSearchOpts {
  k: number;
  nprobe: number;
  kFactor: number;
  threads: number;
  filter?: BigInt64Array | NativeFilterHandle;
  bruteForceBelow?: number;
}
interface NativeFilterHandle {
  size(): number;
  builds(): { full: number; extended: number };
  compactions(): number;
}
interface NativeIndexHandle {
  isTrained(): boolean;
  size(): number;
  config(): { dim: number; metric: Metric; reducedDim: number; nlist: number; vectorStorage: 'float32' | 'float16'; seed: number };
  train(sample: Float32Array, progress: ((phase: string, done: number, total: number) => void) | undefined, threads: number, nlist?: number): Promise<void>;
  add(ids: BigInt64Array, vectors: Float32Array, threads: number): Promise<void>;
  addSync(ids: BigInt64Array, vectors: Float32Array): void;
  remove(ids: BigInt64Array): number;
  search(query: Float32Array, opts: NativeSearchOpts): NativeResult;
  searchBatch(queries: Float32Array, opts: NativeSearchOpts): Promise<NativeResult>;
  bruteForce(queries: Float32Array, opts: NativeSearchOpts): Promise<NativeResult>;
  compact(): Promise<void>;
  save(dir: string): Promise<void>;
  stats(): IndexStats;
  getParams(which: 'insert' | 'search'): FilterParams | null;
  setSearchParams(p: FilterParams): void;
  resetSearchParams(): void;
  learn(opts: Required<LearnOptions>, progress: LearnProgress | undefined): Promise<LearnReport>;
}
interface Addon {
  NativeFilter: new (ids: BigInt64Array) => NativeFilterHandle;
  NativeIndex: {
    new (dim: number, metric: string, nlist: number, reducedDim: number, float16: boolean, seed: number): NativeIndexHandle;
    load(dir: string): Promise<NativeIndexHandle>;
  };
  testKernel(name: 'dot' | 'l2sq', impl: KernelImpl, a: Float32Array, b: Float32Array): number;
  testKernel(name: 'dot_f16' | 'l2sq_f16', impl: KernelImpl, a: Float32Array, b: Uint16Array): number;
  testKernel(name: 'fastscan', impl: KernelImpl, codes: Uint8Array, nblocks: number, m: number, lut: Uint8Array): Uint16Array;
  testKernel(name: 'fastscan_mask', impl: KernelImpl, codes: Uint8Array, nblocks: number, m: number, lut: Uint8Array, thr: number): { sums: Uint16Array; masks: Uint32Array };
  packCodes(codes: Uint8Array, m: number): Uint8Array;
  floatToHalf(a: Float32Array): Uint16Array;
  kernelInfo(): { active: string; avx2: boolean };
  compactListsBytes(): number;
  klLoss(
    shape: { d: number; dr: number; K: number; ip: boolean; tau: number },
    A: Float64Array,
    C: Float64Array,
    Q: Float32Array,
    nbr: Uint32Array,
    orig: Float32Array,
    Y: Float32Array,
    codes: Uint8Array,
  ): { loss: number; term1: number; term2: number; gA: Float64Array; gC: Float64Array };
  probeLoss(
    shape: { d: number; dr: number; K: number; ip: boolean; tau: number; cutoff?: number; targetK?: number },
    A: Float64Array,
    C: Float64Array,
    Q: Float32Array,
    orig: Float32Array,
    lists: Uint32Array,
  ): { loss: number; gC: Float64Array };
  parseVectorText(bytes: Uint8Array): Float32Array | null;
}

// WINNOW_NATIVE_ADDON points at an alternative build (native/scripts/sanitize.sh uses it
// for the ASan/TSan builds); normally the Release build from `npm ci` is used.
const addon: Addon = require(process.env.WINNOW_NATIVE_ADDON ?? './build/Release/winnow_native.node');

/**
 * pgvector's text form of a vector ('[1,2,3]', bytes as they came off the wire) parsed the way
 * pgvector's vector_in does (strtof per component: the correctly rounded float); null when it is not
 * a valid vector literal. 18 µs at 512 dimensions, against 85 µs for splitting the string in JS
 * (bench/results/hot-path.md).
 */
export function parseVectorText(bytes: Uint8Array): Float32Array | null {
  return addon.parseVectorText(bytes);
}

export type Metric = 'l2' | 'ip' | 'cos';
export type KernelImpl = 'scalar' | 'avx2';

export interface IndexOptions {
  dim: number;
  metric: Metric;
  /** IVF partitions; default chosen at train time: min(0.75·sqrt(n), n/39) for an n-row sample (measured, see native/README.md). */
  nlist?: number;
  /** Dimension after the learnt PCA + rotation; multiple of 4, ≤ 512. Default: d rounded up to a multiple of 4 when d ≤ 128 (rotation only), else d/4 rounded down to a multiple of 4. */
  reducedDim?: number;
  /** Precision of the stored vectors used by the refine stage. Default float32. */
  vectorStorage?: 'float32' | 'float16';
  seed?: number;
}

export interface SearchOptions {
  k: number;
  /** IVF lists probed (more when filters/deletions leave too few candidates). Default 32. */
  nprobe?: number;
  /** Candidates refined = k × kFactor. Default 10. */
  kFactor?: number;
  /**
   * Allowed external ids (sorted ascending by convention; any order is accepted), or a
   * PreparedFilter for a set that is searched with again and again.
   */
  filter?: BigInt64Array | PreparedFilter;
  /**
   * With a filter of at most this many allowed ids the query is answered exactly by brute
   * force over them instead of the IVF scan. Default 300000 / dim (measured; ~600 at d = 512).
   */
  bruteForceBelow?: number;
}

/** nq·k rows; when fewer than k vectors qualify the tail is padded with id -1n and distance +Infinity. */
export interface SearchResult {
  ids: BigInt64Array;
  distances: Float32Array;
}

export interface IndexStats {
  count: number;
  deleted: number;
  dim: number;
  reducedDim: number;
  nlist: number;
  /** Bytes of 4-bit PQ code per vector scanned by the filter stage (reducedDim / 4). */
  filterBytesPerVector: number;
  /** All resident bytes (vectors, codes, list ids, id bookkeeping) per live vector. */
  totalBytesPerVector: number;
}

/** Learnt filter-stage parameters (row-major float32 copies). */
export interface FilterParams {
  /** reducedDim × dim. */
  transform: Float32Array;
  /** dim. */
  mean: Float32Array;
  /** nlist × reducedDim. */
  centroids: Float32Array;
  /** (reducedDim/2) × 16 × 2. */
  codebooks: Float32Array;
}

/**
 * Options of VectorIndex.learn (HAKES self-supervised training of the search params).
 * Every field has a default; see native/README.md for what each does and why.
 */
export interface LearnOptions {
  /** Training queries sampled from the indexed vectors (without replacement). Default 65536. */
  sampleQueries?: number;
  /** Nearest neighbours per training query whose ranking the loss preserves. Default 50. */
  neighbors?: number;
  /** Neighbour search settings; 0 = generous defaults (nprobe max(32, nlist/4), kFactor 10). */
  neighborNprobe?: number;
  neighborKFactor?: number;
  /**
   * 0 (default, HAKES): the `neighbors` nearest. Larger: the neighbors/2 nearest plus neighbors/2 drawn
   * from ranks up to this pool, so the loss also sees farther points (tried; not better on wordnet-use-512).
   */
  neighborPool?: number;
  /** Share of the sampled queries held out to choose the learning rate (at most maxValidation). Default 0.1 / 4096. */
  validationFraction?: number;
  maxValidation?: number;
  /** AdamW mini-batch, epochs per learning rate, swept learning rates, weight decay, warm-up share of steps. */
  batchSize?: number;
  epochs?: number;
  learningRates?: number[];
  weightDecay?: number;
  warmupFraction?: number;
  /** Weight of the KL term through the learnt transform alone (the PQ term has weight 1). Default 1, as in HAKES. */
  reductionTermWeight?: number;
  /** Softmax temperature = this × the mean std of a query's original neighbour similarities. Default 1. */
  temperatureScale?: number;
  /** Learn the query-side transform (true, HAKES) or only the PQ codebooks (false). Default true. */
  learnTransform?: boolean;
  /**
   * AdamW moves a parameter by about the learning rate per step whatever its scale, and the codebooks
   * and centroids are in the data's units (fashion-mnist's raw pixels: rms 157, where the transform's
   * entries are ~0.04). true: the codebooks' and probing centroids' rates are multiplied by their rms
   * over the transform's rms (reported as codebookLrScale / probeLrScale), so all move by the same
   * relative amount; false: one absolute rate for all (0.15.x behaviour); 'both': every learning
   * rate is tried both ways, the validation loss chooses, the learned probe follows; 'auto' (default):
   * true when that factor is outside [0.1, 10] (fashion-mnist-784: 4406), else false (wordnet-use-512:
   * 1.75, where 'both' chose false, and 2.32 at reducedDim 64, where true was slightly worse).
   */
  scaleLearningRates?: boolean | 'both' | 'auto';
  /**
   * Extension beyond HAKES (default true; false = HAKES exactly): also learn the probing centroids
   * (cross-entropy of the softmax over lists against where each sample's neighbours are stored);
   * kept only when it raises validation recall.
   */
  learnProbe?: boolean;
  /**
   * learnProbe: the loss ('coverage': every target list must outscore the list that would push it out
   * of the first probeCoverageNprobe; 'crossEntropy': softmax over all lists), probe temperatures
   * (× the main temperature) and learning rates tried (empty rates: learningRates), epochs per trial
   * (0: epochs), targets (0: softmax weights of all neighbours; n: uniform over the lists of the first
   * n), and the nprobe (0: max(8, nlist/8)) at which validation probe coverage chooses among the
   * trials. Defaults 'coverage', [1, 2], [3e-4, 1e-3], 4, 10, 0.
   */
  probeLoss?: 'coverage' | 'crossEntropy';
  probeTemperatureScales?: number[];
  probeLearningRates?: number[];
  probeEpochs?: number;
  probeTargetNeighbors?: number;
  probeCoverageNprobe?: number;
  /** Re-centre IVF centroids in the learnt space (kept only if validation recall is not worse). Default true. */
  recenter?: boolean;
  /**
   * true (default): install the learnt params when their validation recall is not below the
   * insert params'; 'always': install regardless; false: learn only (report the numbers).
   */
  install?: boolean | 'always';
  threads?: number;
  seed?: number;
}

export type LearnProgress = (phase: string, done: number, total: number, value?: number) => void;

export interface LearnReport {
  trainQueries: number;
  validationQueries: number;
  neighbors: number;
  /** Optimiser steps per learning rate. */
  steps: number;
  /** Softmax temperature (mean std of a query's original neighbour similarities). */
  temperature: number;
  /** Chosen learning rate (0: none improved the validation loss). */
  learningRate: number;
  /** scaleLearningRates: the factors applied to the codebooks' and the probing centroids' rates (1 when off). */
  codebookLrScale: number;
  probeLrScale: number;
  validationLossBefore: number;
  validationLossAfter: number;
  sweep: { learningRate: number; validationLoss: number; scaled: boolean }[];
  /** Recall@10 of validation queries' own neighbours at (validationNprobe, validationKFactor). */
  validationRecallBefore: number;
  validationRecallAfter: number;
  validationRecallWithoutRecenter: number;
  validationNprobe: number;
  validationKFactor: number;
  recentered: boolean;
  /** learnProbe: whether the learnt probing centroids were kept, their validation recall and loss. */
  probeLearned: boolean;
  validationRecallProbe: number;
  probeLossBefore: number;
  probeLossAfter: number;
  probeLearningRate: number;
  probeTemperatureScale: number;
  /** Share of validation queries' top-10 neighbours stored in the first probeCoverageNprobe lists, before/after. */
  probeCoverageNprobe: number;
  probeCoverageBefore: number;
  probeCoverageAfter: number;
  probeSweep: { temperatureScale: number; learningRate: number; validationLoss: number; validationCoverage: number }[];
  installed: boolean;
  secondsSamples: number;
  secondsTrain: number;
  secondsRecenter: number;
  secondsTotal: number;
  /** Training working set (samples, optimiser state, batch buffers). */
  workingSetBytes: number;
}

export const LEARN_DEFAULTS: Readonly<Required<LearnOptions>> = Object.freeze({
  sampleQueries: 65536,
  neighbors: 50,
  neighborNprobe: 0,
  neighborKFactor: 0,
  neighborPool: 0,
  validationFraction: 0.1,
  maxValidation: 4096,
  batchSize: 512,
  epochs: 1,
  learningRates: [1e-5, 1e-4, 1e-3],
  weightDecay: 0.01,
  warmupFraction: 0.1,
  temperatureScale: 1,
  reductionTermWeight: 1,
  learnTransform: true,
  scaleLearningRates: 'auto',
  learnProbe: true,
  probeLoss: 'coverage',
  probeTemperatureScales: [1, 2],
  probeLearningRates: [3e-4, 1e-3],
  probeEpochs: 4,
  probeTargetNeighbors: 10,
  probeCoverageNprobe: 0,
  recenter: true,
  install: true,
  threads: 2,
  seed: 1,
});

export const DEFAULT_NPROBE = 32;
export const DEFAULT_K_FACTOR = 10;
const DEFAULT_THREADS = Math.max(1, Math.min(2, os.availableParallelism?.() ?? os.cpus().length));

function nonNegInt(v: number, name: string): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new RangeError(`${name} must be a non-negative integer, got ${String(v)}`);
  return v;
}

function posInt(v: number | undefined, name: string, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new RangeError(`${name} must be a positive integer, got ${String(v)}`);
  return v;
}

/**
 * A frozen set of allowed external ids for searches that repeat it. A BigInt64Array filter costs one
 * hash lookup per allowed id on every search; a PreparedFilter turns the ids into a bitset over the
 * index's slots on its first search and reuses it while the index contents are the same store: rows
 * added since are checked and added, deletions need nothing (tombstones are checked in the scan), and
 * a compaction, a load or another index gets a bitset of its own. The ids are copied: changing the
 * array afterwards does not change the filter. Any index may use it, from any number of searches.
 */
export class PreparedFilter {
  /** @internal */
  readonly handle: NativeFilterHandle;
  /** Allowed ids given (duplicates counted). */
  readonly size: number;
  constructor(ids: BigInt64Array) {
    if (!(ids instanceof BigInt64Array)) throw new TypeError('ids must be a BigInt64Array');
    this.handle = new addon.NativeFilter(ids);
    this.size = ids.length;
  }
  /** Bitsets built from scratch and extended with appended rows so far (tests). */
  builds(): { full: number; extended: number } {
    return this.handle.builds();
  }
  /**
   * Compact copies of the allowed entries built so far: a filter allowing at most half the rows
   * gets its own copy of their codes per IVF list, so a filtered scan reads allowed codes only (tests).
   */
  compactions(): number {
    return this.handle.compactions();
  }
  /** Bytes all prepared filters' compact copies hold now (capped process-wide at 256 MiB). */
  static compactBytes(): number {
    return addon.compactListsBytes();
  }
}

/**
 * A HAKES-style filter/refine index. Distances follow pgvector's operators:
 * l2 → Euclidean (`<->`), ip → negative inner product (`<#>`), cos → 1 − cosine (`<=>`).
 *
 * Safe to search while another call adds/removes/compacts: searches see a consistent
 * snapshot and never wait for a whole write batch. Searching an untrained index is an
 * exact brute-force scan (fine for small collections); train() once enough data exists.
 * Failed calls throw an Error and leave the index unchanged.
 */
export class VectorIndex {
  // Async methods are `async` so argument errors surface as rejections, never sync throws.
  readonly #h: NativeIndexHandle;

  constructor(opts: IndexOptions);
  /** @internal */
  constructor(opts: IndexOptions | { handle: NativeIndexHandle });
  constructor(opts: IndexOptions | { handle: NativeIndexHandle }) {
    if ('handle' in opts) {
      this.#h = opts.handle;
      return;
    }
    const storage = opts.vectorStorage ?? 'float32';
    if (storage !== 'float32' && storage !== 'float16') throw new TypeError("vectorStorage must be 'float32' or 'float16'");
    const nlist = opts.nlist === undefined ? 0 : posInt(opts.nlist, 'nlist', 0);
    const reducedDim = opts.reducedDim === undefined ? 0 : posInt(opts.reducedDim, 'reducedDim', 0);
    const seed = opts.seed ?? 1234;
    if (!Number.isInteger(seed) || seed < 0) throw new RangeError('seed must be a non-negative integer');
    this.#h = new addon.NativeIndex(posInt(opts.dim, 'dim', 0), opts.metric, nlist, reducedDim, storage === 'float16', seed);
  }

  /** Loads an index saved with save(); verifies magic, version and checksums. */
  static async load(dir: string): Promise<VectorIndex> {
    return new VectorIndex({ handle: await addon.NativeIndex.load(dir) });
  }

  get isTrained(): boolean {
    return this.#h.isTrained();
  }
  /** Live (inserted and not deleted) vectors. */
  get size(): number {
    return this.#h.size();
  }
  get dim(): number {
    return this.#h.config().dim;
  }
  get metric(): Metric {
    return this.#h.config().metric;
  }
  get options(): Required<IndexOptions> {
    const c = this.#h.config();
    return { dim: c.dim, metric: c.metric, nlist: c.nlist, reducedDim: c.reducedDim, vectorStorage: c.vectorStorage, seed: c.seed };
  }

  /**
   * Learns the transform, IVF centroids and PQ codebooks from `sample` (rows × dim) off the
   * JS thread, then encodes vectors already added. Can be called once.
   */
  /**
   * Learns the index's parameters from `sample` and encodes what was added so far. `nlist`: the lists
   * of an index created without one (otherwise chosen from the sample's size), e.g. from the size of
   * the table the sample was drawn from.
   */
  async train(sample: Float32Array, onProgress?: (phase: string, done: number, total: number) => void, threads = DEFAULT_THREADS, nlist?: number): Promise<void> {
    return this.#h.train(sample, onProgress, posInt(threads, 'threads', DEFAULT_THREADS), nlist === undefined ? undefined : posInt(nlist, 'nlist', 0));
  }

  /** Inserts (or replaces, for an existing id) vectors, off the JS thread. */
  async add(ids: BigInt64Array, vectors: Float32Array, threads = DEFAULT_THREADS): Promise<void> {
    return this.#h.add(ids, vectors, posInt(threads, 'threads', DEFAULT_THREADS));
  }
  addSync(ids: BigInt64Array, vectors: Float32Array): void {
    this.#h.addSync(ids, vectors);
  }
  /** Tombstones ids; returns how many existed. compact() reclaims the space. */
  remove(ids: BigInt64Array): number {
    return this.#h.remove(ids);
  }

  /** One or more queries on the calling thread (lowest latency for a single query). */
  search(query: Float32Array, opts: SearchOptions): SearchResult {
    return this.#h.search(query, this.#opts(opts, 1));
  }
  async searchBatch(queries: Float32Array, opts: SearchOptions & { threads?: number }): Promise<SearchResult> {
    return this.#h.searchBatch(queries, this.#opts(opts, opts.threads ?? DEFAULT_THREADS));
  }
  /** Exact search over every live vector (or the filter's ids), multi-threaded. */
  async bruteForce(queries: Float32Array, opts: { k: number; threads?: number; filter?: BigInt64Array | PreparedFilter }): Promise<SearchResult> {
    return this.#h.bruteForce(queries, this.#opts({ k: opts.k, filter: opts.filter }, opts.threads ?? DEFAULT_THREADS));
  }
  async compact(): Promise<void> {
    return this.#h.compact();
  }
  /** Atomically replaces <dir>/index.winnow (temp file, fsync, rename). */
  async save(dir: string): Promise<void> {
    return this.#h.save(dir);
  }
  stats(): IndexStats {
    return this.#h.stats();
  }

  /** Copies of the insert-time (frozen) or current search-time filter parameters; null before training. */
  getParams(which: 'insert' | 'search'): FilterParams | null {
    return this.#h.getParams(which);
  }
  /** HAKES decoupling: swap the query-side params without re-encoding; shapes must match. */
  setSearchParams(p: FilterParams): void {
    this.#h.setSearchParams(p);
  }
  resetSearchParams(): void {
    this.#h.resetSearchParams();
  }

  /**
   * HAKES learned search parameters: trains the query-side transform and the PQ codebooks
   * used for lookup tables so compressed similarities keep each sampled query's neighbour
   * ranking (KL loss, AdamW, learning rate chosen on a validation split of the samples),
   * re-centres IVF centroids in the learnt space, and installs the result atomically while
   * searches and inserts continue. Insert params and stored codes never change;
   * resetSearchParams() goes back. Runs off the JS thread; progress reports phases
   * ("neighbors", "reduce", "train lr=…", "validate …", "recenter", "installed"/"not installed")
   * with a loss or recall value where one exists. Persisted by save().
   */
  async learn(opts: LearnOptions = {}, onProgress?: LearnProgress): Promise<LearnReport> {
    const o: Required<LearnOptions> = { ...LEARN_DEFAULTS, ...opts };
    for (const k of ['sampleQueries', 'neighbors', 'batchSize', 'epochs', 'maxValidation', 'threads'] as const) posInt(o[k], k, 1);
    for (const k of ['neighborNprobe', 'neighborKFactor', 'neighborPool', 'seed', 'probeEpochs', 'probeTargetNeighbors', 'probeCoverageNprobe'] as const) nonNegInt(o[k], k);
    if (typeof o.scaleLearningRates !== 'boolean' && o.scaleLearningRates !== 'both' && o.scaleLearningRates !== 'auto')
      throw new RangeError("scaleLearningRates must be true, false, 'both' or 'auto'");
    const positives = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number' && x > 0 && Number.isFinite(x));
    if (!positives(o.probeTemperatureScales) || o.probeTemperatureScales.length === 0) throw new RangeError('probeTemperatureScales must be a non-empty array of positive numbers');
    if (!positives(o.probeLearningRates)) throw new RangeError('probeLearningRates must be an array of positive numbers');
    if (!Array.isArray(o.learningRates) || o.learningRates.length === 0 || o.learningRates.some((v) => !(typeof v === 'number' && v > 0 && Number.isFinite(v))))
      throw new RangeError('learningRates must be a non-empty array of positive numbers');
    let seen = 0;
    const rep = await this.#h.learn(o, onProgress && ((phase, done, total, value) => {
      seen++;
      onProgress(phase, done, total, value);
    }));
    // Deliver every progress event before resolving (they travel on a separate queue).
    const { progressEvents, ...report } = rep as LearnReport & { progressEvents: number };
    for (let spins = 0; seen < progressEvents && spins < 10_000; spins++) await new Promise((r) => setImmediate(r));
    return report;
  }

  #opts(o: SearchOptions, threads: number): NativeSearchOpts {
    if (typeof o !== 'object' || o === null) throw new TypeError('search options must be an object');
    const k = o.k;
    if (typeof k !== 'number' || !Number.isInteger(k) || k <= 0) throw new RangeError(`k must be a positive integer, got ${String(k)}`);
    return {
      k,
      nprobe: posInt(o.nprobe, 'nprobe', DEFAULT_NPROBE),
      kFactor: posInt(o.kFactor, 'kFactor', DEFAULT_K_FACTOR),
      threads: posInt(threads, 'threads', DEFAULT_THREADS),
      filter: o.filter instanceof PreparedFilter ? o.filter.handle : o.filter,
      ...(o.bruteForceBelow === undefined ? {} : { bruteForceBelow: nonNegInt(o.bruteForceBelow, 'bruteForceBelow') }),
    };
  }
}

/** Test-only access to individual SIMD kernels and layout helpers. */
export const testing = {
  kernel: addon.testKernel,
  packCodes: addon.packCodes,
  floatToHalf: addon.floatToHalf,
  kernelInfo: addon.kernelInfo,
  klLoss: addon.klLoss,
  probeLoss: addon.probeLoss,
};
