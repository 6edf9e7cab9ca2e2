// Correctness of the index benchmark's report code (bench/index/report.ts, measure.ts): operating-point
// selection, Pareto curves, tune/eval split and the SVG. No speed assertions.
import { describe, expect, it } from 'vitest';
import { goalCheck, logTicks, paretoFrontier, pickOperatingPoint, renderMarkdown, renderSvg, summarize } from '../../bench/index/report.ts';
import { hitsPerQuery, summarizeTimings } from '../../bench/index/measure.ts';
import type { SweepPoint, SystemResult } from '../../bench/index/types.ts';

function pt(params: Record<string, number>, recallTune: number, qps1Tune: number, recallEval = recallTune, qps1Eval = qps1Tune, qps2: number | null = qps1Eval * 1.8): SweepPoint {
  return { params, recallTune, recallEval, qps1Tune, qps1Eval, qps2, p50Ms: 1000 / qps1Eval, p99Ms: 2000 / qps1Eval };
}

function sys(system: string, points: SweepPoint[], extra: Partial<SystemResult> = {}): SystemResult {
  return {
    system, config: 'cfg', buildParams: {}, trainSeconds: 1, addSeconds: 2, buildThreads: 2, filterBytesPerVector: 64, totalBytesPerVector: 2100,
    bytesNote: 'test', peakRssMiB: 100, baseRssMiB: 50, twoThreadNote: 'test', notes: [], points, ...extra,
  };
}

const hnsw = sys('hnswlib', [pt({ ef: 16 }, 0.85, 9000), pt({ ef: 32 }, 0.93, 6000), pt({ ef: 64 }, 0.97, 4000), pt({ ef: 128 }, 0.992, 2500), pt({ ef: 256 }, 0.998, 1500)], { filterBytesPerVector: null, trainSeconds: 0, addSeconds: 8 });
const winnow = sys('winnow', [
  pt({ nprobe: 8, kFactor: 4 }, 0.91, 12000),
  pt({ nprobe: 8, kFactor: 16 }, 0.951, 7000), // reaches 0.95 but slower than the next
  pt({ nprobe: 16, kFactor: 4 }, 0.96, 9000),
  pt({ nprobe: 32, kFactor: 8 }, 0.989, 6000), // just below 0.99 on the tuning half
  pt({ nprobe: 64, kFactor: 8 }, 0.995, 4500, 0.988, 4400), // tuned at 0.99, evaluates slightly lower
]);

describe('bench:index report', () => {
  it('picks, per target, the fastest configuration that reaches it on the tuning half', () => {
    expect(pickOperatingPoint(hnsw.points, 0.9)?.params).toEqual({ ef: 32 });
    expect(pickOperatingPoint(hnsw.points, 0.95)?.params).toEqual({ ef: 64 });
    expect(pickOperatingPoint(hnsw.points, 0.99)?.params).toEqual({ ef: 128 });
    expect(pickOperatingPoint(winnow.points, 0.95)?.params).toEqual({ nprobe: 16, kFactor: 4 });
    expect(pickOperatingPoint(winnow.points, 0.99)?.params).toEqual({ nprobe: 64, kFactor: 8 });
    expect(pickOperatingPoint(hnsw.points, 0.999)).toBeNull();
  });

  it('reports the evaluation-half numbers of the tuned point', () => {
    const rows = summarize([winnow, hnsw], [0.95, 0.99]);
    const w99 = rows[0].cells[1].point!;
    expect(w99.recallEval).toBe(0.988);
    expect(w99.qps1Eval).toBe(4400);
    expect(rows[1].cells.map((c) => c.point?.qps1Eval)).toEqual([4000, 2500]);
  });

  it('keeps only non-dominated points on the curve, ordered by recall', () => {
    const front = paretoFrontier(winnow.points, (p) => p.recallEval, (p) => p.qps1Eval);
    expect(front.map((p) => p.params)).toEqual([
      { nprobe: 8, kFactor: 4 },
      { nprobe: 16, kFactor: 4 },
      { nprobe: 32, kFactor: 8 }, // nprobe=64 evaluates lower and slower: dominated
    ]);
    // Missing 2-thread figures are left out rather than plotted as zero.
    const none = paretoFrontier([pt({ a: 1 }, 0.9, 10, 0.9, 10, null)], (p) => p.recallEval, (p) => p.qps2);
    expect(none).toEqual([]);
  });

  it('compares Winnow with the best peer per target and checks bytes and build time', () => {
    const text = goalCheck(summarize([winnow, hnsw], [0.95, 0.99]), 512, 30_000);
    expect(text).toContain('| 1-thread QPS @ recall 0.95 | 9,000 | 4,000 (hnswlib cfg) | 2.25 | ≥ 1× | yes |');
    expect(text).toContain('| 1-thread QPS @ recall 0.99 | 4,400 | 2,500 (hnswlib cfg) | 1.76 | ≥ 1× | yes |');
    expect(text).toContain('≤ d/8 = 64 | yes |');
    expect(text).toContain('< hnswlib | yes |');
    const big = goalCheck(summarize([winnow, hnsw], [0.95, 0.99]), 512, 116_659);
    expect(big).toContain('| 1.76 | ≥ 1.5× | yes |');
  });

  it('computes per-query hits and splits timings into tuning and evaluation halves', () => {
    const gt = new Int32Array([0, 1, 2, 9, 9, 9, 3, 4, 5, 9, 9, 9]); // gtK = 6, k = 3
    const ids = new Int32Array([0, 2, 7, 3, 4, 5]);
    expect(Array.from(hitsPerQuery(ids, gt, 2, 3, 6))).toEqual([2, 3]);
    const s = summarizeTimings(ids, [1, 4], gt, 2, 3, 6, 1);
    expect(s.recallTune).toBeCloseTo(2 / 3);
    expect(s.recallEval).toBe(1);
    expect(s.qps1Tune).toBeCloseTo(1000);
    expect(s.qps1Eval).toBeCloseTo(250);
  });

  it('draws a log-scale SVG with one curve per system and a markdown report', () => {
    expect(logTicks(100, 10_000)).toEqual([100, 200, 500, 1000, 2000, 5000, 10000]);
    const svg = renderSvg([winnow, hnsw, sys('broken', [], { error: 'boom' })], 'test <plot>');
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg).toContain('test &lt;plot&gt;');
    expect(svg.match(/<polyline/g)?.length).toBe(4); // 2 systems × 2 panels
    expect(svg).not.toContain('NaN');
    const md = renderMarkdown(
      { command: 'npm run bench:index', date: 'd', machine: 'm', versions: 'v', dataset: 'x', n: 10, dim: 512, metric: 'cos', nq: 10, k: 10, notes: [] },
      [winnow, hnsw, sys('broken', [], { error: 'boom' })],
      'x.svg',
      1,
    );
    expect(md).toContain('![recall vs QPS](x.svg)');
    expect(md).toContain('- broken cfg: boom');
  });
});
