// npm run bench:hotpath — the per-query costs behind two planner constants and the vector parser:
//   1. parsing a query vector's text: the native parser (std::from_chars/strtof) vs splitting in JS;
//   2. filtered native searches: exact brute force vs IVF around FILTER_EXACT_BELOW_FLOATS, and the
//      lists probed (filteredNprobe's multiplier) against recall, on GloVe 341k and wordnet-use-512.
//   3. the planner's filtered search on wordnet-use-512 with bench:e2e's tag predicates (clustered, not
//      every n-th row) at ~1 / 10 / 50 %: lists probed and candidates refined against recall and time,
//      with the allowed set as a PreparedFilter (built once, as the planner's matching cache does).
// Queries: the first 200 of each set (bench:e2e's calibration half), never its evaluation half.
// Writes bench/results/hot-path.md. WINNOW_HOTPATH_ONLY=tags runs section 3 alone and only prints it.
import { writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PreparedFilter, VectorIndex, parseVectorText } from '../native/index.ts';
import { loadDataset, loadMeta } from './lib/datasets.ts';
import { PLANNER_DEFAULT_K_FACTOR, PLANNER_DEFAULT_NPROBE } from '../sql/planner/settings.ts';
import { loadGlove341k } from './lib/large-datasets.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const out: string[] = [];
const say = (s: string) => { console.log(s); out.push(s); };
const NQ = 200;

const TAGS_ONLY = process.env.WINNOW_HOTPATH_ONLY === 'tags';
say('# bench:hotpath — vector text parsing and filtered native searches');
say('');
say(`Command: \`npm run bench:hotpath\`. ${new Date().toISOString()}, ${cpus().length} cores, load average before ${loadavg().map((x) => x.toFixed(1)).join(' ')}. One thread; times are per query.`);
say('');

if (!TAGS_ONLY) {
// ---- 1. parsing
const text = '[' + Array.from({ length: 512 }, (_, i) => Math.sin(i * 7.1).toString()).join(',') + ']';
const bytes = Buffer.from(text);
const splitParse = (s: string) => {
  const parts = s.slice(1, -1).split(',');
  const v = new Float32Array(parts.length);
  for (let i = 0; i < parts.length; i++) v[i] = Number(parts[i].trim());
  return v;
};
const time = (f: () => unknown, n: number) => {
  for (let i = 0; i < 1000; i++) f();
  const t = performance.now();
  for (let i = 0; i < n; i++) f();
  return ((performance.now() - t) * 1000) / n;
};
say('## Parsing a 512-d query vector');
say('');
say('| parser | µs |');
say('|---|---|');
say(`| native parseVectorText (from_chars, strtof for '+'/hex/out of range) | ${time(() => parseVectorText(bytes), 20000).toFixed(1)} |`);
say(`| JS: split + Number | ${time(() => splitParse(text), 20000).toFixed(1)} |`);
say('');

// ---- 2. filtered searches
say('## Filtered native search (k = 10, nprobe = 40 × multiplier, k_factor = 48)');
say('');
say('`allowed` = every (1/fraction)-th row. "brute force" = exact over the allowed vectors; "IVF" = probing lists with the filter.');
say('');
say('| set | allowed | search | lists (× 40) | recall@10 | ms |');
say('|---|---|---|---|---|---|');
const sets: [string, Float32Array, Float32Array, number][] = [];
{
  const g = loadGlove341k(() => {});
  sets.push(['glove-341k', g.base, g.queries, 100]);
  const w = loadDataset('wordnet-use-512');
  sets.push(['wordnet-use-512', w.base, w.queries, 512]);
}
for (const [name, base, queries, dim] of sets) {
  const n = base.length / dim;
  const idx = new VectorIndex({ dim, metric: 'cos' });
  await idx.add(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), base);
  await idx.train(base.subarray(0, Math.min(n, 100_000) * dim));
  for (const frac of [0.01, 0.03, 0.1]) {
    const allowed = BigInt64Array.from({ length: Math.floor(n * frac) }, (_, i) => BigInt(Math.floor(i / frac)));
    const gt = await idx.bruteForce(queries.subarray(0, NQ * dim), { k: 10, filter: allowed });
    const run = (mult: number, bruteForceBelow: number) => {
      let hit = 0;
      const t = performance.now();
      for (let q = 0; q < NQ; q++) {
        const r = idx.search(queries.subarray(q * dim, (q + 1) * dim), { k: 10, nprobe: 40 * mult, kFactor: 48, filter: allowed, bruteForceBelow });
        const truth = new Set(Array.from(gt.ids.subarray(q * 10, q * 10 + 10)));
        for (const x of r.ids) if (truth.has(x)) hit++;
      }
      return { recall: hit / (NQ * 10), ms: (performance.now() - t) / NQ };
    };
    const label = `${(frac * 100).toFixed(0)} % (${allowed.length.toLocaleString('en')})`;
    const bf = run(2, allowed.length + 1);
    say(`| ${name} | ${label} | brute force | — | ${bf.recall.toFixed(3)} | ${bf.ms.toFixed(3)} |`);
    for (const mult of [2, 3, 4, 6]) {
      const r = run(mult, 0);
      say(`| ${name} | ${label} | IVF | ${mult} | ${r.recall.toFixed(3)} | ${r.ms.toFixed(3)} |`);
    }
  }
}
say('');
}

// ---- 3. tag predicates (as bench:e2e), planner defaults × multipliers
{
  const w = loadDataset('wordnet-use-512');
  const dim = 512, n = w.n;
  const tags = loadMeta('wordnet-use-512').slice(0, n).map((m) => String(m.category));
  // As CREATE INDEX builds it: float32 rows, default nlist, trained on every row.
  const idx = new VectorIndex({ dim, metric: 'cos' });
  await idx.add(BigInt64Array.from({ length: n }, (_, i) => BigInt(i)), w.base);
  await idx.train(w.base);
  const counts = new Map<string, number>();
  for (const t of tags) counts.set(t, (counts.get(t) ?? 0) + 1);
  const byCount = [...counts.entries()].sort((a, b) => b[1] - a[1]);
  const pick = (target: number): Set<string> => {
    const single = [...byCount].sort((a, b) => Math.abs(a[1] / n - target) - Math.abs(b[1] / n - target))[0];
    if (Math.abs(single[1] / n - target) <= target * 0.25) return new Set([single[0]]);
    const chosen = new Set<string>();
    let total = 0;
    for (const [t, c] of byCount) if (total + c <= target * n * 1.05) { chosen.add(t); total += c; }
    return chosen;
  };
  say(`## Tag predicates (wordnet-use-512, ${n.toLocaleString('en')} rows, bench:e2e's predicates, calibration queries)`);
  say('');
  say(`nprobe = ${PLANNER_DEFAULT_NPROBE} × lists multiplier, kFactor = ${PLANNER_DEFAULT_K_FACTOR} × candidates multiplier; the allowed set is a PreparedFilter (bitset built by the first query). Brute force off except where noted.`);
  say('');
  say('"uniform" = every (1/fraction)-th row instead of tags. CPU ms = this thread\'s user+system time per query (steadier than wall time on a loaded machine).');
  say('');
  say('| filter | allowed | lists × | candidates × | recall@10 | ms | CPU ms |');
  say('|---|---|---|---|---|---|---|');
  const filters: { label: string; plain: BigInt64Array }[] = [];
  for (const target of [0.01, 0.03, 0.1, 0.2, 0.5]) {
    const chosen = pick(target);
    filters.push({ label: `${chosen.size === 1 ? [...chosen][0] : `${chosen.size} tags`}`, plain: BigInt64Array.from(tags.flatMap((t, i) => (chosen.has(t) ? [BigInt(i)] : []))) });
  }
  for (const frac of [0.03, 0.1, 0.5]) filters.push({ label: 'uniform', plain: BigInt64Array.from({ length: Math.floor(n * frac) }, (_, i) => BigInt(Math.floor(i / frac))) });
  for (const { label, plain } of filters) {
    const allowed = new PreparedFilter(plain);
    const gt = await idx.bruteForce(w.queries.subarray(0, NQ * dim), { k: 10, filter: allowed });
    for (const lm of [1, 1.5, 2, 3, 4]) {
      for (const km of [1, 2, 3]) {
        let hit = 0;
        let total = 0;
        const nprobe = Math.ceil(PLANNER_DEFAULT_NPROBE * lm), kFactor = PLANNER_DEFAULT_K_FACTOR * km;
        for (let q = 0; q < 20; q++) idx.search(w.queries.subarray(q * dim, (q + 1) * dim), { k: 10, nprobe, kFactor, filter: allowed, bruteForceBelow: 0 });
        const t = performance.now();
        const c0 = process.cpuUsage();
        for (let q = 0; q < NQ; q++) {
          const r = idx.search(w.queries.subarray(q * dim, (q + 1) * dim), { k: 10, nprobe, kFactor, filter: allowed, bruteForceBelow: 0 });
          const truth = new Set(Array.from(gt.ids.subarray(q * 10, q * 10 + 10)).filter((x) => x >= 0n));
          total += truth.size;
          for (const x of r.ids) if (truth.has(x)) hit++;
        }
        const ms = (performance.now() - t) / NQ;
        const c = process.cpuUsage(c0);
        const cpu = (c.user + c.system) / 1000 / NQ;
        say(`| ${label} | ${(100 * plain.length / n).toFixed(1)} % (${plain.length.toLocaleString('en')}) | ${lm} | ${km} | ${(hit / total).toFixed(3)} | ${ms.toFixed(3)} | ${cpu.toFixed(3)} |`);
      }
    }
  }
  say('');
}
say(`Load average after: ${loadavg().map((x) => x.toFixed(1)).join(' ')}.`);
if (!TAGS_ONLY) writeFileSync(path.join(root, 'bench/results/hot-path.md'), out.join('\n') + '\n');
