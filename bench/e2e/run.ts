// npm run bench:e2e — Winnow end to end through the wire (pg clients), issue 5/6.
//
// Starts `winnow serve` as a child process (embedded PostgreSQL in a temp dir), loads wordnet-use-512
// (first WINNOW_E2E_N rows, default 30,464) with COPY, then measures:
//   - COPY into an indexed table (until the index has caught up) vs COPY + a fresh CREATE INDEX;
//   - unfiltered top-10 (extended protocol, named prepared statement) at several nprobe settings:
//     recall@10, QPS and p50/p99 with 1, 2 and 8 connections;
//   - filtered top-10 (category/pos predicates ≈ 1 %, 10 %, 50 %), simple protocol;
//   - read-your-writes cost (INSERT then query vs query alone);
//   - exact search in plain Postgres (same SQL, straight to Postgres) for scale.
// Writes bench/results/e2e.md. Keep runs short: the machine is shared.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from 'postgres';
import { loadDataset, loadMeta, recallAtK } from '../lib/datasets.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const N = Number(process.env.WINNOW_E2E_N ?? 30464);
const SECONDS = Number(process.env.WINNOW_E2E_SECONDS ?? 2.5);
const dir = mkdtempSync(path.join(tmpdir(), 'winnow-e2e-'));
const out: string[] = [];
const say = (s: string) => { console.log(s); out.push(s); };

const pgPort = 20000 + Math.floor(Math.random() * 20000);
const child = spawn(process.execPath, [path.join(root, 'bin/winnow.js'), 'serve', '-p', '0', '-D', dir, '--pg-port', String(pgPort), '--pg-password', 'pw'], {
  cwd: root, env: { ...process.env, WINNOW_LOG_LEVEL: 'warn' }, stdio: ['ignore', 'pipe', 'inherit'],
});
const port = await new Promise<number>((resolve, reject) => {
  let s = '';
  child.stdout!.on('data', (d) => {
    s += d;
    const m = /127\.0\.0\.1:(\d+)\/postgres/.exec(s);
    if (m) resolve(Number(m[1]));
  });
  child.on('exit', () => reject(new Error('winnow exited')));
});
const viaWinnow = async () => { const c = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: 'pw', database: 'postgres' }); await c.connect(); return c; };
const direct = async () => { const c = new pg.Client({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: 'pw', database: 'postgres' }); await c.connect(); return c; };

try {
  const ds = loadDataset('wordnet-use-512', { limit: N });
  const meta = loadMeta('wordnet-use-512').slice(0, N);
  const vec = (i: number, src = ds.base) => src.subarray(i * 512, (i + 1) * 512);
  const pgv = (v: Float32Array) => '[' + Array.from(v, String).join(',') + ']';
  const c = await viaWinnow();
  await c.query('CREATE EXTENSION vector');
  const ddl = (t: string) => `CREATE TABLE ${t} (id bigint PRIMARY KEY, pos text NOT NULL, category text NOT NULL, v vector(512))`;
  await c.query(ddl('words'));
  await c.query(ddl('words_idx'));
  say(`# bench:e2e — wordnet-use-512, first ${N} rows, cosine`);
  say('');
  say(`Command: \`npm run bench:e2e\` (WINNOW_E2E_N=${N}, WINNOW_E2E_SECONDS=${SECONDS}). ${new Date().toISOString()}, ${cpus().length} cores, load average before ${loadavg().map((x) => x.toFixed(1)).join(' ')} (shared machine).`);
  say('');

  // ---- COPY: plain table + CREATE INDEX, vs COPY into an already indexed table
  const sql = postgres({ host: '127.0.0.1', port: pgPort, user: 'postgres', password: 'pw', database: 'postgres', max: 1, onnotice: () => {} });
  const copy = async (table: string) => {
    const w = await sql.unsafe(`COPY ${table} (id, pos, category, v) FROM STDIN`).writable();
    for (let s = 0; s < N; s += 1000) {
      let chunk = '';
      for (let i = s; i < Math.min(N, s + 1000); i++) chunk += `${i}\t${meta[i].pos}\t${meta[i].category}\t{${Array.from(vec(i), String).join(',')}}\n`;
      if (!w.write(chunk)) await new Promise((r) => w.once('drain', r));
    }
    await new Promise<void>((resolve, reject) => { w.on('finish', () => resolve()); w.on('error', reject); w.end(); });
  };
  let t = performance.now();
  await copy('words');
  const copyS = (performance.now() - t) / 1000;
  t = performance.now();
  await c.query('CREATE INDEX words_v ON words USING winnow (v vector_cosine_ops)');
  const buildS = (performance.now() - t) / 1000;
  await c.query('CREATE INDEX words_idx_v ON words_idx USING winnow (v vector_cosine_ops)');
  t = performance.now();
  await copy('words_idx');
  const copy2S = (performance.now() - t) / 1000;
  await c.query('SHOW winnow.index_status'); // waits until the index has applied everything committed
  const caughtS = (performance.now() - t) / 1000;
  const st = (await c.query('SHOW winnow.index_status')).rows.find((r) => r.index_name === 'words_idx_v');
  say('## Bulk load');
  say('');
  say('| load | seconds | rows/s |');
  say('|---|---|---|');
  say(`| COPY into plain table | ${copyS.toFixed(1)} | ${Math.round(N / copyS)} |`);
  say(`| CREATE INDEX … USING winnow (scan + train) | ${buildS.toFixed(1)} | ${Math.round(N / buildS)} |`);
  say(`| **COPY + fresh build** | ${(copyS + buildS).toFixed(1)} | ${Math.round(N / (copyS + buildS))} |`);
  say(`| COPY into indexed table (COPY returns) | ${copy2S.toFixed(1)} | ${Math.round(N / copy2S)} |`);
  say(`| **COPY into indexed table until the index has it** | ${caughtS.toFixed(1)} | ${Math.round(N / caughtS)} |`);
  say('');
  say(`Note: rows applied through the slot go in untrained (the index built on an empty table stays untrained: exact brute force; rows ${st?.rows}, trained ${st?.trained}). Retraining after growth is not implemented.`);
  say('');
  await c.query('DROP INDEX words_idx_v');
  await c.query('DROP TABLE words_idx');
  await sql.end();

  // ---- unfiltered, extended protocol, named statement
  const nq = Math.min(ds.nq, 200);
  const queryText = pgvQueries(nq);
  function pgvQueries(n: number) { return Array.from({ length: n }, (_, q) => pgv(vec(q, ds.queries))); }
  async function run(clients: number, setup: string[], text: (q: number) => { text: string; values?: unknown[]; name?: string }) {
    const cs = await Promise.all(Array.from({ length: clients }, viaWinnow));
    for (const x of cs) for (const s of setup) await x.query(s);
    const lat: number[] = [];
    const ids = new Int32Array(nq * 10).fill(-1);
    const end = performance.now() + SECONDS * 1000;
    let next = 0;
    let done = 0;
    const t0 = performance.now();
    await Promise.all(cs.map(async (x) => {
      while (performance.now() < end || done < nq) {
        const q = next++ % nq;
        const s = performance.now();
        const r = await x.query(text(q));
        lat.push(performance.now() - s);
        if (done < nq || true) r.rows.forEach((row, i) => (ids[q * 10 + i] = Number(row.id)));
        done++;
      }
    }));
    const secs = (performance.now() - t0) / 1000;
    await Promise.all(cs.map((x) => x.end()));
    lat.sort((a, b) => a - b);
    return { qps: lat.length / secs, p50: lat[Math.floor(lat.length * 0.5)], p99: lat[Math.floor(lat.length * 0.99)], ids, n: lat.length };
  }
  say('## Unfiltered top-10 (extended protocol, named prepared statement)');
  say('');
  say('| nprobe | k_factor | recall@10 | clients | QPS | p50 ms | p99 ms |');
  say('|---|---|---|---|---|---|---|');
  for (const [nprobe, kf] of [[4, 4], [8, 6], [16, 10], [32, 10]]) {
    for (const clients of [1, 2, 8]) {
      const r = await run(clients, [`SET winnow.nprobe = ${nprobe}`, `SET winnow.k_factor = ${kf}`], (q) => ({ name: 'knn', text: 'SELECT id FROM words ORDER BY v <=> $1 LIMIT 10', values: [queryText[q]] }));
      const recall = recallAtK(r.ids, ds.groundTruth.cos!, nq, 10, ds.gtK);
      say(`| ${nprobe} | ${kf} | ${recall.toFixed(3)} | ${clients} | ${r.qps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
    }
  }
  say('');

  // ---- filtered, simple protocol (pre-filter)
  const counts = new Map<string, number>();
  for (const m of meta) {
    counts.set(`category = '${m.category}'`, (counts.get(`category = '${m.category}'`) ?? 0) + 1);
    counts.set(`pos = '${m.pos}'`, (counts.get(`pos = '${m.pos}'`) ?? 0) + 1);
  }
  const pick = (target: number) => [...counts.entries()].sort((a, b) => Math.abs(a[1] / N - target) - Math.abs(b[1] / N - target))[0];
  say('## Filtered top-10 (simple protocol, pre-filter; defaults)');
  say('');
  say('| predicate | selectivity | clients | QPS | p50 ms | p99 ms |');
  say('|---|---|---|---|---|---|');
  for (const target of [0.01, 0.1, 0.5]) {
    const [where, cnt] = pick(target);
    for (const clients of [1, 2, 8]) {
      const r = await run(clients, [], (q) => ({ text: `SELECT id FROM words WHERE ${where} ORDER BY v <=> '${queryText[q]}' LIMIT 10` }));
      say(`| \`${where}\` | ${((100 * cnt) / N).toFixed(1)} % | ${clients} | ${r.qps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`);
    }
  }
  say('');
  say('Filtered recall@10 (exact filtered ground truth, 20 queries per predicate) is 1.00 at every selectivity: test/planner/recall.test.ts.');
  say('');

  // ---- read-your-writes cost
  const rc = await viaWinnow();
  let a = 0, b = 0;
  for (let i = 0; i < 50; i++) {
    let s = performance.now();
    await rc.query(`SELECT id FROM words ORDER BY v <=> '${queryText[i]}' LIMIT 10`);
    a += performance.now() - s;
    await rc.query(`INSERT INTO words VALUES (${1_000_000 + i}, 'noun', 'x', '${queryText[i]}')`);
    s = performance.now();
    const r = await rc.query(`SELECT id FROM words ORDER BY v <=> '${queryText[i]}' LIMIT 1`);
    b += performance.now() - s;
    if (Number(r.rows[0].id) !== 1_000_000 + i) throw new Error('read-your-writes violated');
  }
  await rc.end();
  say('## Read-your-writes');
  say('');
  say(`Query alone (simple protocol): ${(a / 50).toFixed(2)} ms; query right after the same session's INSERT (waits for the slot to deliver it): ${(b / 50).toFixed(2)} ms; the inserted row was always the top hit (50/50).`);
  say('');

  // ---- exact in plain Postgres
  const d = await direct();
  let e = 0;
  const ne = 3;
  for (let q = 0; q < ne; q++) {
    const s = performance.now();
    await d.query(`SELECT id FROM words ORDER BY v <=> '{${queryText[q].slice(1, -1)}}' LIMIT 10`);
    e += performance.now() - s;
  }
  await d.end();
  say('## Exact search in plain Postgres (same run, same table, straight to Postgres, 1 client)');
  say('');
  say(`${(e / ne).toFixed(0)} ms per query (${(1000 / (e / ne)).toFixed(2)} QPS): Winnow's distance functions are SQL/PL/pgSQL over float4 arrays (sql/README.md), no index.`);
  say('');
  say(`Load average after: ${loadavg().map((x) => x.toFixed(1)).join(' ')}.`);
  await c.end();
  writeFileSync(path.join(root, 'bench/results/e2e.md'), out.join('\n') + '\n');
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.on('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
