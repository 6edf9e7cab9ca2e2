// npm run bench:bulk — bulk loads through Winnow (issue 6): COPY into a table that already has a Winnow
// index vs COPY into a plain table followed by a fresh CREATE INDEX, in rows/s.
//
// Starts `winnow serve` as a child process (embedded PostgreSQL and index snapshots in a temp dir, as
// `npm start` runs), then, through Winnow's port with binary COPY (pgvector's binary format):
//   A. COPY N rows into a plain table, then CREATE INDEX … USING winnow (scan + train);
//   B. CREATE INDEX on the empty table, then COPY N rows: until COPY returns, until the index holds
//      every row (read-your-writes: SHOW winnow.index_status waits for it), until train on growth has
//      trained it (nlist from the table's size), and until a background rebuild is swapped in, if one
//      runs (the retrain rule: the table outgrew what the parameters were chosen for).
// Then recall@10 of both indexes through Winnow against the exact answer (computed here) on 50 queries.
// Data: synthetic 100-d embeddings (seeded, bench/lib/large-datasets.ts latentMixture()); WINNOW_BULK_DATA=glove-100 (or another
// dataset under ../shared/data) uses real vectors, but the shared glove-100 has only 50,000 rows.
// Writes bench/results/bulk-load.md (WINNOW_BULK_WRITE=0: print only).
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import postgres from 'postgres';
import { loadDataset } from './lib/datasets.ts';
import { latentMixture } from './lib/large-datasets.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const N = Number(process.env.WINNOW_BULK_N ?? 1_000_000);
const DATA = process.env.WINNOW_BULK_DATA ?? 'synthetic'; // glove-100 in ../shared/data has 50,000 rows: too few for 1M
const ORDER = (process.env.WINNOW_BULK_ORDER ?? 'AB').toUpperCase();
const dir = mkdtempSync(path.join(tmpdir(), 'winnow-bulk-'));
const out: string[] = [];
const say = (s: string) => { console.log(s); out.push(s); };
const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

const ds = DATA === 'synthetic' ? { dim: 100, ...latentMixture(N, 100, 50) } : (() => { const d = loadDataset(DATA, { limit: N }); return { dim: d.dim, base: d.base, queries: d.queries }; })();
const DIM = ds.dim;
if (ds.base.length / DIM < N) throw new Error(`${DATA} has only ${ds.base.length / DIM} rows`);

const pgPort = 20000 + Math.floor(Math.random() * 20000);
const child = spawn(process.execPath, [path.join(root, 'bin/winnow.js'), 'serve', '-p', '0', '-D', dir, '--pg-port', String(pgPort), '--pg-password', 'pw'], {
  cwd: root, env: { ...process.env, WINNOW_LOG_LEVEL: process.env.WINNOW_LOG_LEVEL ?? 'info' }, stdio: ['ignore', 'pipe', 'pipe'],
});
const logLines: string[] = [];
child.stderr!.on('data', (d) => { for (const l of String(d).split('\n')) if (l.includes('winnow:')) logLines.push(l); });
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

/** Binary COPY through Winnow: id bigint, v vector in pgvector's binary format (uint16 dim, uint16 0, float4 × dim). */
async function copy(sql: postgres.Sql, table: string): Promise<void> {
  const w = await sql.unsafe(`COPY ${table} (id, v) FROM STDIN (FORMAT binary)`).writable();
  const head = Buffer.alloc(19);
  head.write('PGCOPY\n\xff\r\n\0', 0, 'latin1');
  if (!w.write(head)) await new Promise((r) => w.once('drain', r));
  const rowBytes = 2 + 4 + 8 + 4 + 4 + 4 * DIM;
  for (let s = 0; s < N; s += 2000) {
    const m = Math.min(2000, N - s);
    const b = Buffer.alloc(m * rowBytes);
    let p = 0;
    for (let i = s; i < s + m; i++) {
      p = b.writeInt16BE(2, p);
      p = b.writeInt32BE(8, p);
      p = b.writeBigInt64BE(BigInt(i), p);
      p = b.writeInt32BE(4 + 4 * DIM, p);
      p = b.writeUInt16BE(DIM, p);
      p = b.writeUInt16BE(0, p);
      for (let j = 0; j < DIM; j++) p = b.writeFloatBE(ds.base[i * DIM + j], p);
    }
    if (!w.write(b)) await new Promise((r) => w.once('drain', r));
  }
  const trailer = Buffer.alloc(2);
  trailer.writeInt16BE(-1);
  w.write(trailer);
  await new Promise<void>((resolve, reject) => { w.on('finish', () => resolve()); w.on('error', reject); w.end(); });
}

async function status(c: pg.Client, index: string): Promise<Record<string, string>> {
  const r = await c.query('SHOW winnow.index_status');
  return r.rows.find((x) => x.index_name === index);
}

function exactTop(q: Float32Array, k: number): number[] {
  let qn = 0;
  for (let j = 0; j < DIM; j++) qn += q[j] * q[j];
  const best: { i: number; d: number }[] = [];
  for (let i = 0; i < N; i++) {
    let dot = 0, nn = 0;
    for (let j = 0; j < DIM; j++) { const x = ds.base[i * DIM + j]; dot += x * q[j]; nn += x * x; }
    const d = 1 - dot / Math.sqrt(nn * qn);
    if (best.length < k || d < best[best.length - 1].d) {
      best.push({ i, d });
      best.sort((a, b) => a.d - b.d);
      if (best.length > k) best.pop();
    }
  }
  return best.map((x) => x.i);
}

const rows: string[] = [];
const rate = (s: number) => Math.round(N / s).toLocaleString('en-US');
const fmt = (s: number) => s.toFixed(1);
try {
  const c = await viaWinnow();
  await c.query('CREATE EXTENSION vector');
  const sql = postgres({ host: '127.0.0.1', port, user: 'postgres', password: 'pw', database: 'postgres', max: 1, onnotice: () => {} });
  say(`# bench:bulk — ${N.toLocaleString('en-US')} rows × ${DIM}-d (${DATA === 'synthetic' ? 'synthetic: 16-d latent Gaussian mixture mapped to 100-d, seeded' : `${DATA}, first ${N.toLocaleString('en-US')} rows, real data`}), cosine, binary COPY through Winnow`);
  say('');
  say(`Command: \`npm run bench:bulk\` (WINNOW_BULK_N=${N}, WINNOW_BULK_DATA=${DATA}, WINNOW_BULK_ORDER=${ORDER}). ${new Date().toISOString()}, ${cpus().length} cores, load average at start ${load()} (1/5/15 min; the machine is shared).`);
  say('Winnow runs as `winnow serve` with an embedded PostgreSQL 17 and index snapshots in a temp data dir (as `npm start`).');
  say('');
  const results: Record<string, number> = {};
  const runA = async () => {
    await c.query(`CREATE TABLE plain (id bigint PRIMARY KEY, v vector(${DIM}))`);
    let t = performance.now();
    await copy(sql, 'plain');
    results.copyA = (performance.now() - t) / 1000;
    t = performance.now();
    await c.query('CREATE INDEX plain_v ON plain USING winnow (v vector_cosine_ops)');
    results.build = (performance.now() - t) / 1000;
    results.loadA = loadavg()[0];
  };
  const runB = async () => {
    await c.query(`CREATE TABLE indexed (id bigint PRIMARY KEY, v vector(${DIM}))`);
    await c.query('CREATE INDEX indexed_v ON indexed USING winnow (v vector_cosine_ops)');
    const t = performance.now();
    await copy(sql, 'indexed');
    results.copyB = (performance.now() - t) / 1000;
    const st = await status(c, 'indexed_v'); // waits until the index has applied everything committed
    results.appliedB = (performance.now() - t) / 1000;
    if (Number(st.rows) !== N) throw new Error(`index has ${st.rows} rows, expected ${N}`);
    for (;;) {
      const s = await status(c, 'indexed_v');
      if (s.trained === 'true' && Number(s.rows) === N) break;
      if (performance.now() - t > 3_600_000) throw new Error('not trained after an hour');
      await new Promise((r) => setTimeout(r, 250));
    }
    results.trainedB = (performance.now() - t) / 1000;
    // A table that outgrew what the parameters were chosen for is rebuilt in the background (retrain
    // rule): wait for that swap too.
    await new Promise((r) => setTimeout(r, 1000));
    if (logLines.some((l) => l.includes('outgrew its training'))) {
      while (!logLines.some((l) => l.includes('background rebuild swapped in'))) {
        if (performance.now() - t > 3_600_000) throw new Error('not retrained after an hour');
        await new Promise((r) => setTimeout(r, 250));
      }
      results.retrainedB = (performance.now() - t) / 1000;
    }
    results.loadB = loadavg()[0];
  };
  for (const x of ORDER) await (x === 'A' ? runA() : runB());
  const a = results.copyA + results.build;
  say('| load | seconds | rows/s |');
  say('|---|---|---|');
  if (ORDER.includes('A')) {
    say(`| A. COPY into plain table | ${fmt(results.copyA)} | ${rate(results.copyA)} |`);
    say(`| A. CREATE INDEX … USING winnow (scan + train) | ${fmt(results.build)} | ${rate(results.build)} |`);
    say(`| **A. COPY + fresh build** | ${fmt(a)} | **${rate(a)}** |`);
  }
  if (ORDER.includes('B')) {
    say(`| B. COPY into indexed table (COPY returns) | ${fmt(results.copyB)} | ${rate(results.copyB)} |`);
    say(`| **B. COPY into indexed table until the index has every row** | ${fmt(results.appliedB)} | **${rate(results.appliedB)}** |`);
    say(`| B. … until train on growth has trained it (in place, on a ≤ 100k-row sample, nlist from the table's size) | ${fmt(results.trainedB)} | ${rate(results.trainedB)} |`);
    if (results.retrainedB) say(`| B. … until the background rebuild with nlist from the table size is swapped in | ${fmt(results.retrainedB)} | ${rate(results.retrainedB)} |`);
  }
  say('');
  say(`1-min load average after A: ${results.loadA?.toFixed(1)}, after B: ${results.loadB?.toFixed(1)}; at the end ${load()}.`);
  say('');

  // Recall of both indexes through Winnow (default search settings) against the exact answer.
  const nq = 50;
  const recall: Record<string, number> = { plain: 0, indexed: 0 };
  for (let qi = 0; qi < nq; qi++) {
    const q = ds.queries.subarray(qi * DIM, (qi + 1) * DIM);
    const truth = new Set(exactTop(q, 10));
    const lit = '[' + Array.from(q, String).join(',') + ']';
    for (const t of ['plain', 'indexed'].filter((x) => ORDER.includes(x === 'plain' ? 'A' : 'B'))) {
      const r = await c.query(`SELECT id::int FROM ${t} ORDER BY v <=> '${lit}' LIMIT 10`);
      for (const x of r.rows) if (truth.has(x.id)) recall[t]++;
    }
  }
  const sa = ORDER.includes('A') ? await status(c, 'plain_v') : null;
  const sb = ORDER.includes('B') ? await status(c, 'indexed_v') : null;
  say(`recall@10 through Winnow (${nq} queries, default nprobe/k_factor, exact answer computed by the bench):${sa ? ` A (fresh build) ${(recall.plain / (nq * 10)).toFixed(3)} [${sa.build_phase}]` : ''}${sb ? ` B (trained on growth${results.retrainedB ? ', then rebuilt in the background' : ''}) ${(recall.indexed / (nq * 10)).toFixed(3)} [${sb.build_phase}]` : ''}.`);
  say('');
  const interesting = logLines.filter((l) => /background|training threshold|trained in place|outgrew|swapped|slow poll/.test(l)).map((l) => { try { const j = JSON.parse(l); return `${j.msg} ${JSON.stringify({ index: j.index, rows: j.rows, trained: j.trained, nlist: j.nlist, trainedRows: j.trainedRows, backlog: j.backlog, messages: j.messages, peekMs: j.peekMs, applyMs: j.applyMs, saveMs: j.saveMs })}`; } catch { return l; } });
  const idle = interesting.filter((l) => l.includes('"messages":0,'));
  if (idle.length) {
    const ms = idle.map((l) => Number(/"peekMs":(\d+)/.exec(l)?.[1] ?? 0));
    interesting.splice(0, interesting.length, ...interesting.filter((l) => !idle.includes(l)),
      `${idle.length} polls took over 1 s returning no changes (decoding a COPY still in progress), ${Math.min(...ms)}–${Math.max(...ms)} ms each`);
  }
  if (interesting.length) {
    say('Winnow log (train on growth):');
    say('');
    for (const l of interesting) say(`- ${l}`);
    say('');
  }
  await sql.end();
  await c.end();
  if (process.env.WINNOW_BULK_WRITE !== '0') writeFileSync(path.join(root, 'bench/results/bulk-load.md'), out.join('\n') + '\n');
} finally {
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  rmSync(dir, { recursive: true, force: true });
}
