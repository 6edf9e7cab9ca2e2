// COPY throughput of vectors through Winnow (pgvector text/binary translated to float4 arrays by the
// session) compared with the same rows sent straight to Postgres as float4 arrays (no translation).
//
//   npm run bench:copy                      # embedded Postgres in a temp dir
//   WINNOW_BENCH_DATABASE_URL=postgres://… npm run bench:copy
//   options: --rows 20000 --dims 128,768 --out bench/results/copy.md
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import postgres from 'postgres';
import { startWinnow } from '../server/index.ts';
import { vectorSessionFactory } from '../sql/vector-session.ts';

function arg(name: string, def: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : def;
}

const ROWS = Number(arg('rows', '20000'));
const DIMS = arg('dims', '128,768').split(',').map(Number);
const OUT = arg('out', 'bench/results/copy.md');
const REPEATS = Number(arg('repeats', '3'));

function randomRows(n: number, d: number): Float32Array[] {
  let seed = 42;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;
  return Array.from({ length: n }, () => Float32Array.from({ length: d }, rnd));
}

function textPayload(rows: Float32Array[], open: string, close: string): Buffer {
  const lines = rows.map((v, i) => `${i}\t${open}${Array.from(v).join(',')}${close}\n`);
  return Buffer.from(lines.join(''));
}

function binaryPayload(rows: Float32Array[], pgvector: boolean): Buffer {
  const parts: Buffer[] = [Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1'), Buffer.alloc(8)];
  for (const [i, v] of rows.entries()) {
    const d = v.length;
    const body = pgvector ? Buffer.alloc(4 + 4 * d) : Buffer.alloc(20 + 8 * d);
    if (pgvector) {
      body.writeInt16BE(d, 0);
      v.forEach((x, k) => body.writeFloatBE(x, 4 + 4 * k));
    } else {
      body.writeInt32BE(1, 0);
      body.writeUInt32BE(700, 8);
      body.writeInt32BE(d, 12);
      body.writeInt32BE(1, 16);
      v.forEach((x, k) => {
        body.writeInt32BE(4, 20 + 8 * k);
        body.writeFloatBE(x, 24 + 8 * k);
      });
    }
    const head = Buffer.alloc(14);
    head.writeInt16BE(2, 0);
    head.writeInt32BE(4, 2);
    head.writeInt32BE(i, 6);
    head.writeInt32BE(body.length, 10);
    parts.push(head, body);
  }
  parts.push(Buffer.from([0xff, 0xff]));
  return Buffer.concat(parts);
}

async function copyIn(sql: postgres.Sql, table: string, payload: Buffer, binary: boolean): Promise<number> {
  await sql.unsafe(`TRUNCATE ${table}`);
  const t0 = performance.now();
  const w = await sql.unsafe(`COPY ${table} (id, v) FROM STDIN${binary ? ' (FORMAT binary)' : ''}`).writable();
  await new Promise<void>((resolve, reject) => {
    w.on('error', reject);
    w.on('finish', resolve);
    const CHUNK = 64 * 1024;
    let off = 0;
    const pump = () => {
      while (off < payload.length) {
        const ok = w.write(payload.subarray(off, off + CHUNK));
        off += CHUNK;
        if (!ok) return void w.once('drain', pump);
      }
      w.end();
    };
    pump();
  });
  return performance.now() - t0;
}

async function main() {
  const dir = await mkdtemp(path.join(tmpdir(), 'winnow-bench-copy-'));
  const url = process.env.WINNOW_BENCH_DATABASE_URL;
  const pgPassword = 'bench-copy';
  const winnow = await startWinnow({ port: 0, host: '127.0.0.1', handlerFactory: vectorSessionFactory, logLevel: 'warn', ...(url ? { databaseUrl: url } : { dataDir: dir, pgPassword }) } as never);
  const pgUrl = url ? new URL(url) : null;
  const opts = { host: '127.0.0.1', username: pgUrl?.username || 'postgres', database: pgUrl?.pathname.slice(1) || 'postgres', max: 1, onnotice: () => {} };
  // Loopback clients of Winnow reach the embedded cluster over its trusted Unix socket; the direct
  // baseline connects over TCP with the cluster's password.
  const viaWinnow = postgres({ ...opts, port: winnow.port, ...(pgUrl?.password ? { password: decodeURIComponent(pgUrl.password) } : {}) } as never);
  const direct = postgres({ ...opts, port: winnow.postgres.port, ...(url ? { host: pgUrl!.hostname, password: decodeURIComponent(pgUrl!.password) } : { password: pgPassword }) } as never);
  const lines: string[] = [];
  try {
    await viaWinnow`CREATE EXTENSION IF NOT EXISTS vector`;
    for (const d of DIMS) {
      const rows = randomRows(ROWS, d);
      await viaWinnow.unsafe(`DROP TABLE IF EXISTS bench_copy_${d}; CREATE TABLE bench_copy_${d} (id int, v vector(${d}))`);
      await direct.unsafe(`DROP TABLE IF EXISTS bench_copy_arr_${d}; CREATE TABLE bench_copy_arr_${d} (id int, v real[])`);
      const cases: [string, postgres.Sql, string, Buffer, boolean][] = [
        ['Winnow, text (pgvector [..])', viaWinnow, `bench_copy_${d}`, textPayload(rows, '[', ']'), false],
        ['Winnow, binary (pgvector send format)', viaWinnow, `bench_copy_${d}`, binaryPayload(rows, true), true],
        ['Postgres direct, text real[] (no translation)', direct, `bench_copy_arr_${d}`, textPayload(rows, '{', '}'), false],
        ['Postgres direct, binary real[] (no translation)', direct, `bench_copy_arr_${d}`, binaryPayload(rows, false), true],
      ];
      for (const [label, sql, table, payload, binary] of cases) {
        const times: number[] = [];
        for (let r = 0; r < REPEATS; r++) times.push(await copyIn(sql, table, payload, binary));
        const best = Math.min(...times);
        const rate = Math.round((ROWS / best) * 1000);
        const mb = (payload.length / 1e6 / (best / 1000)).toFixed(1);
        lines.push(`| ${d} | ${label} | ${ROWS} | ${best.toFixed(0)} | ${rate.toLocaleString('en-US')} | ${mb} |`);
        console.log(lines[lines.length - 1]);
      }
      const [{ n }] = await viaWinnow.unsafe(`SELECT count(*)::int AS n FROM bench_copy_${d}`);
      if (n !== ROWS) throw new Error(`expected ${ROWS} rows, found ${n}`);
      await viaWinnow.unsafe(`DROP TABLE bench_copy_${d}`);
      await direct.unsafe(`DROP TABLE bench_copy_arr_${d}`);
    }
  } finally {
    await viaWinnow.end();
    await direct.end();
    await winnow.close();
    await rm(dir, { recursive: true, force: true });
  }
  const report = [
    '# COPY FROM STDIN throughput',
    '',
    `${new Date().toISOString()} · ${ROWS} random vectors per run, best of ${REPEATS} · ${url ? 'Postgres at WINNOW_BENCH_DATABASE_URL' : 'embedded PostgreSQL 17'} · machine: 2 cores, shared · \`npm run bench:copy\``,
    '',
    'Through Winnow the session translates every vector field (pgvector text `[..]` or pgvector binary) into the float4-array',
    'form the vector type stores, and Postgres checks the `vector(n)` typmod. "Postgres direct" sends the same numbers as',
    '`real[]` straight to Postgres: the cost of Postgres itself without Winnow.',
    '',
    '| dims | path | rows | best ms | vectors/s | MB/s of COPY data |',
    '|---:|---|---:|---:|---:|---:|',
    ...lines,
    '',
  ].join('\n');
  await writeFile(OUT, report);
  console.log(`\nwritten to ${OUT}`);
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
