// EXPLAIN of a planned vector query: Winnow's part of the plan, then Postgres's plan of the rewritten
// statement that fetches the rows.
import type { SessionContext } from '../../server/session.ts';

type Node = Record<string, any>;

export interface PlanInfo {
  index: string;
  strategy: 'none' | 'pre';
  exact: boolean;
  nprobe: number;
  kFactor: number;
  k: number;
  allowed: number | null;
  returned: number;
  ms: { wait: number; filter: number; search: number };
}

/** Byte offset where the SELECT inside an EXPLAIN starts (the SELECT keyword before its first located node). */
export function selectStart(text: string, stmt: Node): number {
  const latin = Buffer.from(text, 'utf8').toString('latin1');
  return latin.slice(0, minLoc(stmt) + 1).toLowerCase().lastIndexOf('select');
}

export async function explainLines(ctx: SessionContext, p: PlanInfo, planned: string, analyze: boolean): Promise<string[]> {
  const lines = [
    `Winnow KNN Scan using ${p.index} (k=${p.k})`,
    `  Strategy: ${p.strategy === 'pre' ? 'pre-filter (Postgres returns matching ids, index search restricted to them)' : 'unfiltered'}`,
    `  Search: ${p.exact ? 'exact (index not trained: table below the training threshold)' : `IVF nprobe=${p.nprobe} k'=${p.k * p.kFactor}`}`,
  ];
  if (p.allowed !== null) lines.push(`  Allowed ids: ${p.allowed}`);
  if (analyze) {
    lines.push(`  Returned ids: ${p.returned}`);
    lines.push(`  Time: read-your-writes wait ${p.ms.wait.toFixed(3)} ms, filter ${p.ms.filter.toFixed(3)} ms, search ${p.ms.search.toFixed(3)} ms`);
  }
  const pg = await ctx.query(`EXPLAIN ${analyze ? '(ANALYZE) ' : ''}${planned}`);
  if (!pg.error) {
    lines.push('  ->  Postgres (rows by id):');
    for (const row of pg.rows) lines.push('        ' + row[0]);
  }
  return lines;
}

function minLoc(n: unknown): number {
  let min = Infinity;
  const walk = (x: unknown) => {
    if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object') for (const [k, v] of Object.entries(x)) (k === 'location' && typeof v === 'number' && v >= 0 ? (min = Math.min(min, v)) : walk(v));
  };
  walk(n);
  return min;
}

