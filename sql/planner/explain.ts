// EXPLAIN of a planned vector query: Winnow's part of the plan, then Postgres's plan of the rewritten
// statement that fetches the rows.
import { minLocation } from '../parse.ts';
import type { SessionContext } from '../../server/session.ts';
import { POST_NPROBE_MULT } from './filter.ts';
import { FILTER_EXACT_BELOW_FLOATS } from './search.ts';
import { RANGE_FIRST_K, RANGE_GROWTH } from './threshold.ts';

type Node = Record<string, any>;

export interface PlanInfo {
  index: string;
  /** knn: ORDER BY distance LIMIT k; range: every row with WHERE distance < r. */
  kind?: 'knn' | 'range';
  /** Where the planned SELECT is: null/undefined for the statement itself, else e.g. `CTE nn`, `subquery s`. */
  part?: string | null;
  strategy: 'none' | 'pre' | 'post' | 'in';
  /** winnow.filter_strategy as set, and why another strategy answered (auto's choice, fallbacks). */
  requested?: string;
  reason?: string | null;
  /** auto: Postgres's estimate of the matching rows, and as a fraction of the index's rows. */
  estimatedRows?: number | null;
  selectivity?: number | null;
  selectivitySource?: 'planner' | 'observed';
  /** Candidates the strategy expected to look at and did look at (allowed ids, or ids checked after the search). */
  estimatedCandidates?: number | null;
  candidates?: number | null;
  /** post: searches run while deepening. */
  rounds?: number;
  radius?: { r: number; inclusive: boolean } | null;
  exact: boolean;
  nprobe: number;
  kFactor: number;
  k: number;
  allowed: number | null;
  returned: number;
  ms: { wait: number; estimate?: number; filter: number; search: number; check?: number };
}

/**
 * Byte offset where the SELECT inside an EXPLAIN starts (the SELECT keyword before its first located
 * node; for WITH … SELECT, the WITH keyword before the first CTE's name).
 */
export function selectStart(text: string, stmt: Node): number {
  const latin = Buffer.from(text, 'utf8').toString('latin1');
  const w = stmt.SelectStmt?.withClause;
  if (w) return typeof w.location === 'number' && /^with\b/i.test(latin.slice(w.location, w.location + 5)) ? w.location : -1;
  return latin.slice(0, minLocation(stmt) + 1).toLowerCase().lastIndexOf('select');
}

const STRATEGY_TEXT: Record<PlanInfo['strategy'], string> = {
  none: 'unfiltered',
  pre: 'pre-filter (Postgres returns matching ids, index search restricted to them)',
  post: 'post-filter (unfiltered candidates, Postgres keeps those that pass; iterative deepening)',
  in: 'in-index filter (predicate on INCLUDE columns evaluated in Winnow, no Postgres round trip)',
};

/** The native search as it ran (filtered and deep searches use more lists and candidates than the settings say). */
function searchText(p: PlanInfo): string {
  if (p.exact) return 'exact (index not trained: table below the training threshold)';
  if (p.kind === 'range') return `IVF nprobe=${p.nprobe * POST_NPROBE_MULT}, k grown ×${RANGE_GROWTH} from ${RANGE_FIRST_K} until beyond the bound (last k=${p.k})`;
  switch (p.strategy) {
    case 'pre':
    case 'in':
      return `IVF nprobe=${p.nprobe}×1–6 (more lists the fewer ids are allowed) k'=${p.k * p.kFactor}×1–3 (more below 10 % allowed) over the allowed ids (exact when allowed ids × dim ≤ ${FILTER_EXACT_BELOW_FLOATS / 1e6} M floats)`;
    case 'post':
      return p.allowed !== null
        ? `IVF nprobe=${p.nprobe}×1–6 over the ids the INCLUDE conditions allow, ${p.estimatedCandidates ?? 2 * p.k} candidates first, doubled until ${p.k} pass`
        : `IVF nprobe=${p.nprobe * POST_NPROBE_MULT} unfiltered, ${p.estimatedCandidates ?? 2 * p.k} candidates first, doubled until ${p.k} pass`;
    default:
      return `IVF nprobe=${p.nprobe} k'=${p.k * p.kFactor}`;
  }
}

const ms = (x: number | undefined) => `${(x ?? 0).toFixed(3)} ms`;

/** Winnow's lines for one planned SELECT. */
export function winnowLines(p: PlanInfo, analyze: boolean): string[] {
  const bound = p.radius ? `distance ${p.radius.inclusive ? '<=' : '<'} ${p.radius.r}` : null;
  const lines = [
    p.kind === 'range' ? `Winnow Range Scan using ${p.index} (${bound})` : `Winnow KNN Scan using ${p.index} (k=${p.k}${bound ? `, ${bound}` : ''})`,
  ];
  if (p.part) lines.push(`  Part: ${p.part} (rewritten in place; the rest of the statement runs in Postgres)`);
  lines.push(`  Strategy: ${STRATEGY_TEXT[p.strategy]}`);
  if (p.requested && (p.requested !== 'auto' || p.strategy !== 'none')) lines.push(`  Requested: winnow.filter_strategy = ${p.requested}${p.reason ? ` (${p.reason})` : ''}`);
  if (p.selectivity !== undefined && p.selectivity !== null) {
    const src = p.selectivitySource === 'observed' ? 'counted by an earlier query' : 'Postgres planner estimate';
    lines.push(`  Estimated selectivity: ${(p.selectivity * 100).toPrecision(3)}% (${Math.round(p.estimatedRows ?? 0)} rows, ${src})`);
  }
  lines.push(`  Search: ${searchText(p)}`);
  if (p.allowed !== null) lines.push(`  Allowed ids: ${p.allowed}`);
  if (p.estimatedCandidates !== undefined && p.estimatedCandidates !== null) lines.push(`  Estimated candidates: ${p.estimatedCandidates}`);
  if (analyze) {
    if (p.candidates !== undefined && p.candidates !== null) lines.push(`  Actual candidates: ${p.candidates}`);
    if (p.rounds !== undefined) lines.push(`  Rounds: ${p.rounds}`);
    lines.push(`  Returned ids: ${p.returned}`);
    const parts = [`read-your-writes wait ${ms(p.ms.wait)}`];
    if (p.ms.estimate) parts.push(`selectivity estimate ${ms(p.ms.estimate)}`);
    parts.push(`filter ${ms(p.ms.filter)}`, `search ${ms(p.ms.search)}`);
    if (p.ms.check) parts.push(`post-filter checks ${ms(p.ms.check)}`);
    lines.push(`  Time: ${parts.join(', ')}`);
  }
  return lines;
}

export async function explainLines(ctx: SessionContext, plans: PlanInfo | PlanInfo[], planned: string, analyze: boolean): Promise<string[]> {
  const lines = (Array.isArray(plans) ? plans : [plans]).flatMap((p) => winnowLines(p, analyze));
  const pg = await ctx.query(`EXPLAIN ${analyze ? '(ANALYZE) ' : ''}${planned}`);
  if (!pg.error) {
    lines.push(`  ->  Postgres (${Array.isArray(plans) && plans.some((p) => p.part) ? 'the statement with the planned parts by id' : 'rows by id'}):`);
    for (const row of pg.rows) lines.push('        ' + row[0]);
  }
  return lines;
}


