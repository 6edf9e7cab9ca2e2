// Shared shapes of the index benchmark (bench/index): what every system run reports.

export type BenchMetric = 'l2' | 'cos';

/** One sweep point (one search configuration) of one system. */
export interface SweepPoint {
  /** Search parameters, e.g. { ef: 64 } or { nprobe: 16, kFactor: 4 }. */
  params: Record<string, number>;
  /** recall@k on the tuning half of the queries (used only to pick operating points). */
  recallTune: number;
  /** recall@k on the evaluation half (what is reported and plotted). */
  recallEval: number;
  /** Single-query loop on one thread, queries/s, tuning half. */
  qps1Tune: number;
  /** Single-query loop on one thread, queries/s, evaluation half. */
  qps1Eval: number;
  /** Two threads (worker threads or the system's batch API), queries/s over all queries; null if not measured. */
  qps2: number | null;
  /** Single-query latency on the evaluation half, milliseconds. */
  p50Ms: number;
  p99Ms: number;
}

/** Everything one system/configuration run reports for one dataset. */
export interface SystemResult {
  system: string; // e.g. 'winnow', 'hnswlib', 'faiss-ivfpqfs', 'faiss-hnsw'
  config: string; // human label of the build configuration, e.g. 'M=16 efC=200'
  buildParams: Record<string, number | string>;
  trainSeconds: number; // 0 when the index has no training stage
  addSeconds: number;
  buildThreads: number;
  /** Bytes per vector of the filter (candidate-generation) stage; null when the system has none (graphs). */
  filterBytesPerVector: number | null;
  totalBytesPerVector: number;
  /** How bytes were measured, e.g. 'serialized index size / n'. */
  bytesNote: string;
  /** Peak resident set of the process that built and searched, MiB, and its RSS after loading the data, before building. */
  peakRssMiB: number;
  baseRssMiB: number;
  /** RSS right after building minus RSS before building, MiB (the index's resident memory, roughly; GC noise included). */
  indexRssMiB?: number;
  /** How the 2-thread figure was obtained. */
  twoThreadNote: string;
  notes: string[];
  points: SweepPoint[];
  error?: string;
}

/** What run.ts hands to every system. */
export interface RunSpec {
  datasetDir: string;
  datasetName: string;
  limit: number | null;
  metric: BenchMetric;
  k: number;
  quick: boolean;
  /** Timed repetitions per sweep point; the fastest is kept. */
  repeat: number;
  /** System-specific build parameters. */
  build: Record<string, number | string>;
}
