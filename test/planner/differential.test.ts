// Differential: seeded random data, query vectors, filters, k and OFFSET, both protocols (also as a
// CTE), three metrics. With every list probed and a generous k_factor the index's answer must be Postgres's exact
// answer (same rows in the same order, same distances); Postgres computes it straight, with no Winnow
// planning in between.
import { afterAll, beforeAll, expect, test } from 'vitest';
import pg from 'pg';
import { plannerStats } from '../../sql/planner/session.ts';
import { plannerClients, closePlannerClients, fillTable, randomVector, prng, type PlannerHarness } from './helpers.ts';

const DIM = 8;
const N = 12_000; // above the training threshold: IVF + PQ filter stage, exact refine
let h: PlannerHarness;
let c: pg.Client;
let d: pg.Client;

beforeAll(async () => {
  ({ h, c, d } = await plannerClients());
  for (const [table, opclass] of [['t_l2', 'vector_l2_ops'], ['t_cos', 'vector_cosine_ops'], ['t_ip', 'vector_ip_ops']]) {
    await c.query(`CREATE TABLE ${table} (id bigint PRIMARY KEY, cat int NOT NULL, label text, v vector(${DIM}))`);
    await fillTable(d, table, N, DIM, table.length * 7);
    await d.query(`UPDATE ${table} SET label = 'l' || (id % 13) WHERE id % 5 <> 0`);
    await c.query(`CREATE INDEX ON ${table} USING winnow (v ${opclass}) INCLUDE (label)`);
  }
  // Every list, and enough refined candidates that the filter stage cannot lose a true neighbour.
  await c.query('SET winnow.nprobe = 100000');
  await c.query('SET winnow.k_factor = 400');
});

afterAll(async () => {
  await closePlannerClients({ h, c, d });
});

const OPS = { t_l2: '<->', t_cos: '<=>', t_ip: '<#>' } as const;

function randomFilter(rnd: () => number): string | null {
  const cat = Math.floor(rnd() * 10);
  const forms = [
    null,
    `cat = ${cat}`,
    `cat < ${cat}`,
    `cat IN (${cat}, ${(cat + 3) % 10})`,
    `label = 'l${cat}'`,
    `label IS NULL`,
    `(label = 'l${cat}' OR cat = ${(cat + 1) % 10}) AND id % 2 = 0`,
    `id < ${Math.floor(rnd() * N)}`,
    // Partly on the INCLUDE column: label restricts the search, Postgres checks the rest.
    `label = 'l${cat}' AND cat <> ${(cat + 2) % 10}`,
    `label IS NOT NULL AND id % 3 = 0`,
  ];
  return forms[Math.floor(rnd() * forms.length)];
}

test('random queries, filters, k and OFFSET: the index answers exactly what Postgres answers (simple and extended protocol)', async () => {
  const rnd = prng(2026);
  let compared = 0;
  const searches = plannerStats.nativeSearches;
  const names = new Map<string, string>();
  const nameOf = (text: string) => names.get(text) ?? (names.set(text, `s${names.size}`), names.get(text)!);
  for (let i = 0; i < 60; i++) {
    const table = (['t_l2', 't_cos', 't_ip'] as const)[i % 3];
    const op = OPS[table];
    const q = randomVector(DIM, rnd);
    const where = randomFilter(rnd);
    const k = 1 + Math.floor(rnd() * 25);
    const offset = rnd() < 0.3 ? Math.floor(rnd() * 5) : 0;
    const tail = `${where ? `WHERE ${where} ` : ''}ORDER BY v ${op} `;
    const limit = ` LIMIT ${k}${offset ? ` OFFSET ${offset}` : ''}`;
    // Ties broken by id on the Postgres side; the index's ties are rare with random float data.
    const exact = await d.query({ text: `SELECT id::text, v ${op} '${q.arr}' AS d FROM ${table} ${tail}'${q.arr}', id${limit}`, rowMode: 'array' });
    const simple = await c.query({ text: `SELECT id::text, v ${op} '${q.pgv}' AS d FROM ${table} ${tail}'${q.pgv}'${limit}`, rowMode: 'array' });
    const text = `SELECT id::text, v ${op} $1 AS d FROM ${table} ${tail}$1${limit}`;
    // Named (answered at Bind, from the index alone when it can be) and unnamed (Parse in the same batch).
    const named = await c.query({ name: nameOf(text), text, values: [q.pgv], rowMode: 'array' });
    const unnamed = await c.query({ text, values: [q.pgv], rowMode: 'array' });
    // The same as a CTE (planned at each Bind with the parameters written in), named and unnamed.
    const cte = `WITH nn AS (${text}) SELECT * FROM nn`;
    const cteNamed = await c.query({ name: nameOf(cte), text: cte, values: [q.pgv], rowMode: 'array' });
    const cteUnnamed = await c.query({ text: cte, values: [q.pgv], rowMode: 'array' });
    for (const got of [simple, named, unnamed, cteNamed, cteUnnamed]) {
      expect(got.rows.map((r) => r[0]), `${table} ${where} k=${k} offset=${offset}`).toEqual(exact.rows.map((r) => r[0]));
      got.rows.forEach((r, j) => expect(Number(r[1])).toBeCloseTo(Number(exact.rows[j][1]), 5));
    }
    compared += exact.rows.length;
  }
  expect(compared).toBeGreaterThan(300);
  // Every form was answered by the index (unnamed ones with a WHERE Postgres must evaluate ran their
  // filter queries on Winnow's own connection: the batch's Parse is already in Postgres at their Bind).
  expect(plannerStats.nativeSearches - searches).toBeGreaterThanOrEqual(5 * 60);
});
