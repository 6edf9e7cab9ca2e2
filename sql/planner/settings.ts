// Search settings a session chooses with SET: Winnow's own GUCs and pgvector's, mapped onto them.
//
// They are tracked from the session's SET statements (not read back with current_setting), because
// at Bind time no internal query can run on the session's connection.

/**
 * Out-of-the-box search settings of planned queries. Chosen so that recall@10 ≥ 0.95 on every set in
 * ../shared/data with an index built the way CREATE INDEX builds it (measured, all 1,000 queries):
 * glove-100 0.970 (at the native defaults 32/10 it was 0.942), wordnet-use-512 (116k) 0.993,
 * fashion-mnist-784 0.9999. Faster operating points are a SET away (bench/results/e2e-*.md).
 */
export const PLANNER_DEFAULT_NPROBE = 40;
export const PLANNER_DEFAULT_K_FACTOR = 16;

type Node = Record<string, any>;

export interface KnnSettings { nprobe: number; kFactor: number }

export interface SessionGucs { nprobe: string | null; kFactor: string | null; efSearch: string | null; probes: string | null; filterStrategy: string | null }

export const noGucs = (): SessionGucs => ({ nprobe: null, kFactor: null, efSearch: null, probes: null, filterStrategy: null });

const GUC_KEYS: Record<string, keyof SessionGucs> = {
  'winnow.nprobe': 'nprobe', 'winnow.k_factor': 'kFactor', 'hnsw.ef_search': 'efSearch', 'ivfflat.probes': 'probes',
  'winnow.filter_strategy': 'filterStrategy',
};

/** winnow.filter_strategy: how a WHERE clause restricts a vector search (sql/planner/README.md, Filters). */
export type FilterStrategy = 'auto' | 'pre' | 'post' | 'in';
export const FILTER_STRATEGIES: readonly FilterStrategy[] = ['auto', 'pre', 'post', 'in'];

/** The strategy a tracked value names (unset = auto), or null for a value that is not one. */
export function filterStrategyOf(value: string | null): FilterStrategy | null {
  if (value === null) return 'auto';
  const v = value.trim().toLowerCase();
  return (FILTER_STRATEGIES as readonly string[]).includes(v) ? (v as FilterStrategy) : null;
}

/**
 * The settings a connection starts with: `-c name=value` / `--name=value` in the StartupMessage's
 * `options` (libpq's `options` / PGOPTIONS; words split on spaces, `\ ` a literal space), as
 * Postgres reads them. They are also what RESET returns to.
 */
export function gucsFromStartup(options: string | undefined): SessionGucs {
  const gucs = noGucs();
  if (!options) return gucs;
  const words: string[] = [];
  let w = '';
  for (let i = 0; i < options.length; i++) {
    const ch = options[i];
    if (ch === '\\' && i + 1 < options.length) w += options[++i];
    else if (/\s/.test(ch)) { if (w) words.push(w); w = ''; }
    else w += ch;
  }
  if (w) words.push(w);
  for (let i = 0; i < words.length; i++) {
    let setting: string | undefined;
    if (words[i] === '-c') setting = words[++i];
    else if (words[i].startsWith('-c')) setting = words[i].slice(2);
    else if (words[i].startsWith('--')) setting = words[i].slice(2);
    const eq = setting?.indexOf('=') ?? -1;
    if (!setting || eq < 0) continue;
    // Postgres folds '-' to '_' in option names given this way.
    const key = GUC_KEYS[setting.slice(0, eq).replace(/-/g, '_').toLowerCase()];
    if (key) gucs[key] = setting.slice(eq + 1);
  }
  return gucs;
}

/** Applies a VariableSetStmt (SET / RESET / RESET ALL) to the tracked settings; RESET goes back to `initial`. */
export function trackSet(gucs: SessionGucs, stmt: Node, initial: SessionGucs = noGucs()): void {
  const v = stmt.VariableSetStmt;
  if (!v) return;
  const key = GUC_KEYS[String(v.name).toLowerCase()];
  if (!key) {
    if (v.kind === 'VAR_RESET_ALL') Object.assign(gucs, initial);
    return;
  }
  const a = v.args?.[0]?.A_Const;
  gucs[key] = v.kind === 'VAR_SET_VALUE' && a ? String(a.ival?.ival ?? a.sval?.sval ?? a.fval?.fval ?? 0) : v.kind === 'VAR_SET_VALUE' ? null : initial[key];
}

/** Settings from the session's GUCs (winnow.* win over pgvector's, which are mapped; see README). */
export function settingsFrom(v: SessionGucs, k: number): KnnSettings {
  let nprobe = PLANNER_DEFAULT_NPROBE;
  let kFactor = PLANNER_DEFAULT_K_FACTOR;
  const num = (s: string | null) => (s && /^\d+$/.test(s.trim()) ? Number(s) : null);
  const ef = num(v.efSearch);
  if (ef) {
    // hnsw.ef_search (candidate list size, default 40): more candidates → more lists and refines.
    nprobe = Math.max(8, Math.round((PLANNER_DEFAULT_NPROBE * ef) / 40));
    kFactor = Math.max(2, Math.ceil(ef / Math.max(1, k)));
  }
  const probes = num(v.probes);
  if (probes) nprobe = probes;
  nprobe = num(v.nprobe) ?? nprobe;
  kFactor = num(v.kFactor) ?? kFactor;
  return { nprobe: Math.max(1, nprobe), kFactor: Math.max(1, kFactor) };
}

