// Report for `npm run bench:index`: operating-point selection (tuned on the tuning half of the queries,
// reported on the evaluation half), markdown tables and a hand-written SVG recall-vs-QPS plot.
import type { SweepPoint, SystemResult } from './types.ts';

export const TARGETS = [0.9, 0.95, 0.99];

export type QpsKey = 'qps1Eval' | 'qps2';

/** Points not dominated by another (higher-or-equal recall and higher-or-equal QPS), ordered by recall. */
export function paretoFrontier(points: SweepPoint[], recall: (p: SweepPoint) => number, qps: (p: SweepPoint) => number | null): SweepPoint[] {
  const usable = points.filter((p) => Number.isFinite(recall(p)) && Number.isFinite(qps(p) ?? NaN));
  const sorted = [...usable].sort((a, b) => recall(b) - recall(a) || (qps(b) as number) - (qps(a) as number));
  const out: SweepPoint[] = [];
  let best = -Infinity;
  for (const p of sorted) {
    const q = qps(p) as number;
    if (q > best) {
      out.push(p);
      best = q;
    }
  }
  return out.reverse();
}

/**
 * The operating point for a recall target: among configurations whose recall on the tuning half reaches the
 * target, the one with the highest single-thread QPS on the tuning half. Its evaluation-half numbers are reported.
 */
export function pickOperatingPoint(points: SweepPoint[], target: number): SweepPoint | null {
  let best: SweepPoint | null = null;
  for (const p of points) {
    if (p.recallTune + 1e-12 < target) continue;
    if (!best || p.qps1Tune > best.qps1Tune) best = p;
  }
  return best;
}

export interface SummaryCell {
  target: number;
  point: SweepPoint | null;
}

export interface SummaryRow {
  result: SystemResult;
  cells: SummaryCell[];
}

export function summarize(results: SystemResult[], targets = TARGETS): SummaryRow[] {
  return results.filter((r) => !r.error).map((result) => ({ result, cells: targets.map((target) => ({ target, point: pickOperatingPoint(result.points, target) })) }));
}

export function label(r: SystemResult): string {
  return `${r.system} ${r.config}`.trim();
}

export function formatParams(p: Record<string, number>): string {
  return Object.entries(p).map(([k, v]) => `${k}=${v}`).join(' ');
}

const f0 = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '—' : Math.round(x).toLocaleString('en-US'));
const f1 = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '—' : x.toFixed(1));
const f2 = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '—' : x.toFixed(2));
const f3 = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '—' : x.toFixed(3));
const f4 = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '—' : x.toFixed(4));

export function summaryTable(rows: SummaryRow[]): string {
  const t = rows[0]?.cells.map((c) => c.target) ?? TARGETS;
  const head = ['system', 'build s (train+add, threads)', 'filter B/vec', 'total B/vec', 'index RSS MiB', 'peak RSS MiB (data)',
    ...t.map((x) => `1-thr QPS @${x} [recall, params]`), ...t.map((x) => `2-thr QPS @${x}`), `p50/p99 ms @${t[Math.min(1, t.length - 1)]}`];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`];
  for (const { result: r, cells } of rows) {
    const mid = cells[Math.min(1, cells.length - 1)]?.point;
    lines.push(`| ${[
      label(r),
      `${f1(r.trainSeconds + r.addSeconds)} (${f1(r.trainSeconds)}+${f1(r.addSeconds)}, ${r.buildThreads})`,
      f1(r.filterBytesPerVector),
      f1(r.totalBytesPerVector),
      f0(r.indexRssMiB),
      `${f0(r.peakRssMiB)} (${f0(r.baseRssMiB)})`,
      ...cells.map((c) => (c.point ? `${f0(c.point.qps1Eval)} [${f3(c.point.recallEval)}, ${formatParams(c.point.params)}]` : 'not reached')),
      ...cells.map((c) => (c.point ? f0(c.point.qps2) : '—')),
      mid ? `${f3(mid.p50Ms)} / ${f3(mid.p99Ms)}` : '—',
    ].join(' | ')} |`);
  }
  return lines.join('\n');
}

/** Winnow against the best peer of the same run, per target (evaluation-half QPS of the tuned operating points). */
export function goalCheck(rows: SummaryRow[], dim: number, n: number, targets = [0.95, 0.99]): string {
  const w = rows.find((r) => r.result.system === 'winnow');
  if (!w) return '_Winnow was not part of this run._';
  const peers = rows.filter((r) => r.result.system !== 'winnow');
  const need = n >= 100_000 ? 1.5 : 1;
  const out: string[] = ['| check | Winnow | best peer | ratio | goal | met |', '|---|---|---|---|---|---|'];
  for (const target of targets) {
    const wc = w.cells.find((c) => c.target === target)?.point ?? pickOperatingPoint(w.result.points, target);
    let best: { row: SummaryRow; p: SweepPoint } | null = null;
    for (const row of peers) {
      const p = row.cells.find((c) => c.target === target)?.point ?? pickOperatingPoint(row.result.points, target);
      if (p && (!best || p.qps1Eval > best.p.qps1Eval)) best = { row, p };
    }
    const ratio = wc && best ? wc.qps1Eval / best.p.qps1Eval : NaN;
    out.push(`| 1-thread QPS @ recall ${target} | ${wc ? f0(wc.qps1Eval) : 'not reached'} | ${best ? `${f0(best.p.qps1Eval)} (${label(best.row.result)})` : '—'} | ${f2(ratio)} | ≥ ${need}× | ${Number.isFinite(ratio) ? (ratio >= need ? 'yes' : 'no') : 'no'} |`);
  }
  const fb = w.result.filterBytesPerVector;
  if (dim >= 384) out.push(`| filter bytes/vector | ${f1(fb)} | — | — | ≤ d/8 = ${dim / 8} | ${fb != null && fb <= dim / 8 ? 'yes' : 'no'} |`);
  const h = peers.filter((r) => r.result.system === 'hnswlib').map((r) => r.result.trainSeconds + r.result.addSeconds);
  const wb = w.result.trainSeconds + w.result.addSeconds;
  if (h.length) {
    const hmin = Math.min(...h);
    out.push(`| build time (s) | ${f1(wb)} (${w.result.buildThreads} thr) | ${f1(hmin)} (fastest hnswlib, 1 thr) | ${f2(wb / hmin)} | < hnswlib | ${wb < hmin ? 'yes' : 'no'} |`);
  }
  return out.join('\n');
}

export function curveTable(r: SystemResult): string {
  const front = new Set(paretoFrontier(r.points, (p) => p.recallEval, (p) => p.qps1Eval));
  const lines = ['| params | recall (tune) | recall (eval) | 1-thr QPS (eval) | 2-thr QPS | p50 ms | p99 ms | frontier |', '|---|---|---|---|---|---|---|---|'];
  for (const p of [...r.points].sort((a, b) => a.recallEval - b.recallEval)) {
    lines.push(`| ${formatParams(p.params)} | ${f4(p.recallTune)} | ${f4(p.recallEval)} | ${f0(p.qps1Eval)} | ${f0(p.qps2)} | ${f3(p.p50Ms)} | ${f3(p.p99Ms)} | ${front.has(p) ? '*' : ''} |`);
  }
  return lines.join('\n');
}

// ---------------------------------------------------------------- SVG

const COLORS = ['#d62728', '#1f77b4', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf', '#7f7f7f', '#bcbd22'];

export interface Series {
  name: string;
  points: Array<{ x: number; y: number }>;
}

export function seriesFor(results: SystemResult[], key: QpsKey): Series[] {
  return results
    .filter((r) => !r.error)
    .map((r) => ({
      name: label(r),
      points: paretoFrontier(r.points, (p) => p.recallEval, (p) => p[key]).map((p) => ({ x: p.recallEval, y: p[key] as number })),
    }))
    .filter((s) => s.points.length > 0);
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

/** Log-scale ticks 1-2-5 between lo and hi. */
export function logTicks(lo: number, hi: number): number[] {
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v);
    }
  }
  return out;
}

/** Two panels (1 thread, 2 threads): recall@k (x, linear) against QPS (y, log), one Pareto curve per system config. */
export function renderSvg(results: SystemResult[], title: string, k = 10): string {
  const panels: Array<{ key: QpsKey; name: string }> = [
    { key: 'qps1Eval', name: '1 thread, single queries' },
    { key: 'qps2', name: '2 threads' },
  ];
  const all = panels.map((p) => seriesFor(results, p.key));
  const names = [...new Set(all.flat().map((s) => s.name))];
  const color = (n: string) => COLORS[names.indexOf(n) % COLORS.length];
  const pts = all.flat().flatMap((s) => s.points);
  const minR = pts.length ? Math.min(...pts.map((p) => p.x)) : 0.5;
  const xLo = Math.min(0.9, Math.max(0.7, Math.floor(minR * 10) / 10));
  const vis = pts.filter((p) => p.x >= xLo);
  const yLo = vis.length ? 10 ** Math.floor(Math.log10(Math.min(...vis.map((p) => p.y)))) : 1;
  const yHi = vis.length ? 10 ** Math.ceil(Math.log10(Math.max(...vis.map((p) => p.y)))) : 10;
  const PW = 470, PH = 380, top = 50, left = 70, gap = 90;
  const W = left + 2 * PW + gap + 30;
  const legendH = 18 * names.length + 20;
  const H = top + PH + 60 + legendH;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="22" text-anchor="middle" font-size="16">${esc(title)}</text>`,
  ];
  panels.forEach((panel, pi) => {
    const x0 = left + pi * (PW + gap);
    const sx = (r: number) => x0 + ((r - xLo) / (1 - xLo)) * PW;
    const sy = (q: number) => top + PH - ((Math.log10(q) - Math.log10(yLo)) / (Math.log10(yHi) - Math.log10(yLo))) * PH;
    out.push(`<text x="${x0 + PW / 2}" y="${top - 8}" text-anchor="middle" font-size="13">${esc(panel.name)}</text>`);
    out.push(`<rect x="${x0}" y="${top}" width="${PW}" height="${PH}" fill="none" stroke="#333"/>`);
    for (let r = xLo; r <= 1.0001; r += 0.05) {
      const x = sx(r);
      out.push(`<line x1="${x}" y1="${top}" x2="${x}" y2="${top + PH}" stroke="#eee"/>`);
      out.push(`<text x="${x}" y="${top + PH + 16}" text-anchor="middle">${r.toFixed(2)}</text>`);
    }
    for (const tr of [0.95, 0.99]) {
      if (tr > xLo) out.push(`<line x1="${sx(tr)}" y1="${top}" x2="${sx(tr)}" y2="${top + PH}" stroke="#999" stroke-dasharray="4 3"/>`);
    }
    for (const q of logTicks(yLo, yHi)) {
      const y = sy(q);
      out.push(`<line x1="${x0}" y1="${y}" x2="${x0 + PW}" y2="${y}" stroke="#eee"/>`);
      out.push(`<text x="${x0 - 6}" y="${y + 4}" text-anchor="end">${q >= 1000 ? `${q / 1000}k` : q}</text>`);
    }
    out.push(`<text x="${x0 + PW / 2}" y="${top + PH + 36}" text-anchor="middle">recall@${k}</text>`);
    out.push(`<text transform="translate(${x0 - 52} ${top + PH / 2}) rotate(-90)" text-anchor="middle">queries/s (log)</text>`);
    for (const s of all[pi]) {
      const ps = s.points.filter((p) => p.x >= xLo);
      if (!ps.length) continue;
      const c = color(s.name);
      out.push(`<polyline fill="none" stroke="${c}" stroke-width="2" points="${ps.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ')}"/>`);
      for (const p of ps) out.push(`<circle cx="${sx(p.x).toFixed(1)}" cy="${sy(p.y).toFixed(1)}" r="3" fill="${c}"/>`);
    }
  });
  names.forEach((n, i) => {
    const y = top + PH + 60 + i * 18;
    out.push(`<line x1="${left}" y1="${y}" x2="${left + 24}" y2="${y}" stroke="${color(n)}" stroke-width="3"/>`);
    out.push(`<text x="${left + 32}" y="${y + 4}">${esc(n)}</text>`);
  });
  out.push('</svg>');
  return out.join('\n');
}

export interface ReportHeader {
  command: string;
  date: string;
  machine: string;
  versions: string;
  dataset: string;
  n: number;
  dim: number;
  metric: string;
  nq: number;
  k: number;
  notes: string[];
}

export function renderMarkdown(h: ReportHeader, results: SystemResult[], svgFile: string, durationS: number): string {
  const rows = summarize(results);
  const tuneN = Math.floor(h.nq / 2);
  const parts = [
    `# Index benchmark: ${h.dataset}`,
    '',
    `- Command: \`${h.command}\``,
    `- Date: ${h.date}; run took ${durationS.toFixed(0)} s`,
    `- Machine: ${h.machine}`,
    `- Versions: ${h.versions}`,
    `- Data: n = ${h.n.toLocaleString('en-US')}, d = ${h.dim}, metric ${h.metric}, k = ${h.k}; ${h.nq} queries: the first ${tuneN} pick each system's operating point (tuning half), the last ${h.nq - tuneN} are what every number below reports (evaluation half).`,
    ...h.notes.map((n) => `- ${n}`),
    '',
    `![recall vs QPS](${svgFile})`,
    '',
    '## Summary',
    '',
    'For each recall target, the operating point is the configuration with the highest 1-thread QPS on the tuning half among those reaching the target on the tuning half; the table shows its recall and QPS on the evaluation half (so the recall shown can fall slightly below the target).',
    '',
    summaryTable(rows),
    '',
    '## Winnow goals',
    '',
    goalCheck(rows, h.dim, h.n),
    '',
  ];
  const failed = results.filter((r) => r.error);
  if (failed.length) {
    parts.push('## Systems that did not run', '');
    for (const r of failed) parts.push(`- ${label(r)}: ${r.error}`);
    parts.push('');
  }
  parts.push('## Curves', '');
  for (const r of results.filter((x) => !x.error)) {
    parts.push(`### ${label(r)}`, '');
    parts.push(`Bytes: ${r.bytesNote}. Two threads: ${r.twoThreadNote}.${r.notes.length ? ' ' + r.notes.join('; ') + '.' : ''}`, '');
    parts.push(curveTable(r), '');
  }
  return parts.join('\n');
}
