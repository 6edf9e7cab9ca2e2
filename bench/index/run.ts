// `npm run bench:index [-- --dataset NAME|DIR] [--limit N] [--metric l2|cos] [--quick] [--systems a,b] [--out DIR]`
// Issue 3's benchmark: Winnow's index against FAISS (IVFPQFastScan+RefineFlat, HNSWFlat M=32) and hnswlib-node
// (M=16/32), all on the same data in one run. Each system runs in its own child process (so its peak RSS is its
// own), one after another. Writes bench/results/index-<dataset>[-n<limit>].{md,svg,json}.
import { spawn, execSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { datasetsRoot, listDatasets, loadDataset } from '../lib/datasets.ts';
import { FAISS_MISSING, faissVersion, runFaiss } from './systems/faiss.ts';
import { winnowAvailable } from './systems/winnow.ts';
import { curveTable, label, renderMarkdown, renderSvg, summarize, summaryTable } from './report.ts';
import type { BenchMetric, RunSpec, SystemResult } from './types.ts';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');

interface Args {
  datasets: string[];
  limit: number | null;
  metric: BenchMetric | null;
  quick: boolean;
  systems: string[] | null;
  out: string;
  k: number;
  repeat: number;
}

const ALL_SYSTEMS = ['winnow', 'hnswlib-m16', 'hnswlib-m32', 'faiss-ivfpqfs', 'faiss-hnsw'];

function parseArgs(argv: string[]): Args {
  const a: Args = { datasets: [], limit: null, metric: null, quick: false, systems: null, out: path.join(repoRoot, 'bench', 'results'), k: 10, repeat: 3 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i];
    const next = () => {
      const x = argv[++i];
      if (x === undefined) throw new Error(`${v} needs a value`);
      return x;
    };
    if (v === '--dataset') a.datasets.push(next());
    else if (v === '--limit') a.limit = Number(next());
    else if (v === '--metric') a.metric = next() as BenchMetric;
    else if (v === '--quick') a.quick = true;
    else if (v === '--systems') a.systems = next().split(',');
    else if (v === '--out') a.out = path.resolve(next());
    else if (v === '--k') a.k = Number(next());
    else if (v === '--repeat') a.repeat = Math.max(1, Number(next()));
    else if (v === '--help' || v === '-h') {
      console.log(`usage: npm run bench:index -- [--dataset NAME|DIR]... [--limit N] [--metric l2|cos] [--quick] [--systems ${ALL_SYSTEMS.join(',')}] [--repeat N (default 3)] [--out DIR]`);
      process.exit(0);
    } else throw new Error(`unknown argument ${v}`);
  }
  if (a.metric && a.metric !== 'l2' && a.metric !== 'cos') throw new Error('--metric must be l2 or cos');
  if (a.systems) for (const s of a.systems) if (!ALL_SYSTEMS.includes(s)) throw new Error(`unknown system ${s} (have ${ALL_SYSTEMS.join(', ')})`);
  return a;
}

function resolveDataset(arg: string): { name: string; dir: string } {
  const asDir = path.resolve(arg);
  if (arg.includes('/') || (existsSync(asDir) && statSync(asDir).isDirectory() && existsSync(path.join(asDir, 'query.fvecs')))) {
    return { name: path.basename(asDir), dir: asDir };
  }
  return { name: arg, dir: path.join(datasetsRoot(), arg) };
}

function machine(): string {
  let cpu = 'unknown CPU';
  try {
    cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.trim() ?? cpu;
  } catch {}
  const nproc = execSync('nproc').toString().trim();
  return `nproc ${nproc}, ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, ${os.platform()} ${os.release()}`;
}

function gitRev(): string {
  try {
    const rev = execSync('git rev-parse --short HEAD', { cwd: repoRoot }).toString().trim();
    const dirty = execSync('git status --porcelain -- native', { cwd: repoRoot }).toString().trim();
    return dirty ? `${rev} (native/ with uncommitted changes)` : rev;
  } catch {
    return 'unknown';
  }
}

/** Runs a Node system in a child process (own peak RSS); resolves with its SystemResult. */
function runNodeSystem(system: string, spec: RunSpec): Promise<SystemResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['--import', 'tsx', path.join(here, 'worker.ts'), system, JSON.stringify(spec)], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    p.stdout.on('data', (d) => (out += d));
    p.on('error', reject);
    p.on('close', (code) => {
      const line = out.split('\n').find((l) => l.startsWith('RESULT '));
      const err = out.split('\n').find((l) => l.startsWith('ERROR '));
      if (line) resolve(JSON.parse(line.slice(7)));
      else if (err) reject(new Error(JSON.parse(err.slice(6))));
      else reject(new Error(`${system} worker exited with code ${code}${out.trim() ? ': ' + out.trim().slice(-500) : ''}`));
    });
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const args = parseArgs(argv);
  const command = process.env.npm_lifecycle_event === 'bench:index'
    ? `npm run bench:index${argv.length ? ' -- ' + argv.join(' ') : ''}`
    : `node --import tsx bench/index/run.ts ${argv.join(' ')}`.trim();
  const datasets = args.datasets.length ? args.datasets.map(resolveDataset) : listDatasets().map((name) => ({ name, dir: path.join(datasetsRoot(), name) }));
  if (!datasets.length) throw new Error(`no datasets found under ${datasetsRoot()}`);
  const systems = args.systems ?? ALL_SYSTEMS;
  const fv = await faissVersion();
  const hv = JSON.parse(readFileSync(path.join(repoRoot, 'node_modules', 'hnswlib-node', 'package.json'), 'utf8')).version;
  const versions = `node ${process.version}; hnswlib-node ${hv}; faiss/numpy ${fv ?? 'not installed'} (${'/usr/bin/python3'}); winnow at git ${gitRev()}${winnowAvailable() ? '' : ' (native/index.ts not present)'}`;
  const mach = machine();
  mkdirSync(args.out, { recursive: true });
  console.log(`# npm run bench:index\n\n${mach}\n${versions}\n`);

  for (const { name, dir } of datasets) {
    const started = Date.now();
    const load0 = os.loadavg();
    const ds = loadDataset(name, { limit: args.limit ?? undefined, root: path.dirname(dir) });
    const metric: BenchMetric = args.metric ?? (ds.groundTruth.cos ? 'cos' : 'l2');
    const gt = ds.groundTruth[metric];
    if (!gt) {
      console.log(`## ${name}: skipped — no ${metric} ground truth for n = ${ds.n} (use --limit with a prefix that has gt, e.g. 30464 for wordnet-use-512)\n`);
      continue;
    }
    const limit = args.limit && args.limit < countRowsOf(dir, ds.dim) ? ds.n : null;
    const tag = `${name}${limit ? `-n${limit}` : ''}`;
    console.log(`## ${tag}: n=${ds.n} d=${ds.dim} metric=${metric} queries=${ds.nq}\n`);
    const truth = { gt, gtK: ds.gtK, nq: ds.nq };
    const base: Omit<RunSpec, 'build'> = { datasetDir: dir, datasetName: name, limit, metric, k: args.k, quick: args.quick, repeat: args.repeat };
    const results: SystemResult[] = [];
    const fail = (system: string, config: string, e: unknown): SystemResult => ({
      system, config, buildParams: {}, trainSeconds: NaN, addSeconds: NaN, buildThreads: 0, filterBytesPerVector: null, totalBytesPerVector: NaN,
      bytesNote: '', peakRssMiB: NaN, baseRssMiB: NaN, twoThreadNote: '', notes: [], points: [], error: e instanceof Error ? e.message : String(e),
    });
    for (const sys of systems) {
      let r: SystemResult;
      console.error(`[${new Date().toISOString()}] ${tag}: ${sys}`);
      try {
        if (sys === 'winnow') {
          if (!winnowAvailable()) throw new Error('native/index.ts (VectorIndex) is not in this checkout yet');
          r = await runNodeSystem('winnow', { ...base, build: {} });
        } else if (sys === 'hnswlib-m16' || sys === 'hnswlib-m32') {
          r = await runNodeSystem('hnswlib', { ...base, build: { M: sys === 'hnswlib-m16' ? 16 : 32, efConstruction: 200 } });
        } else if (sys === 'faiss-ivfpqfs' || sys === 'faiss-hnsw') {
          if (!fv) throw new Error(FAISS_MISSING);
          r = sys === 'faiss-ivfpqfs'
            ? await runFaiss({ ...base, build: {} }, 'ivfpqfs', truth)
            : await runFaiss({ ...base, build: { M: 32, efConstruction: 200 } }, 'hnsw', truth);
        } else throw new Error(`unknown system ${sys}`);
      } catch (e) {
        r = fail(sys, '', e);
        console.error(`  ${sys} failed: ${r.error}`);
      }
      results.push(r);
      if (!r.error) console.log(`### ${label(r)}\n\n${curveTable(r)}\n`);
    }
    const rows = summarize(results);
    console.log(`### Summary ${tag}\n\n${summaryTable(rows)}\n`);
    const load1 = os.loadavg();
    const durationS = (Date.now() - started) / 1000;
    const svgName = `index-${tag}.svg`;
    const header = {
      command, date: new Date(started).toISOString(), machine: mach, versions, dataset: tag, n: ds.n, dim: ds.dim, metric, nq: ds.nq, k: args.k,
      notes: [
        `Load average at start ${load0.map((x) => x.toFixed(2)).join(' ')}, at end ${load1.map((x) => x.toFixed(2)).join(' ')} (the machine may be shared: compare systems within one run, not across runs).`,
        `Sweep: ${args.quick ? 'quick (few points)' : 'full'}; each point timed ${args.repeat}× over all queries, fastest repetition kept; fixed grids, nothing is tuned on the evaluation queries. Peers get L2-normalised vectors with inner product for cosine; Winnow gets the raw vectors with metric '${metric}'.`,
        'Memory: "index RSS" = RSS right after building minus RSS before building (the index\'s resident memory, roughly); peak RSS is of the whole process that loaded the data, built and searched (single-thread phase; the 2-thread phase is excluded), "data" its RSS after loading the dataset — for small sets the peak is dominated by loading the files.',
      ],
    };
    writeFileSync(path.join(args.out, svgName), renderSvg(results, `${tag} (n=${ds.n}, d=${ds.dim}, ${metric}) — recall@${args.k} vs QPS, eval half of queries`, args.k));
    writeFileSync(path.join(args.out, `index-${tag}.md`), renderMarkdown(header, results, svgName, durationS));
    writeFileSync(path.join(args.out, `index-${tag}.json`), JSON.stringify({ header, results }, null, 1));
    console.log(`wrote ${path.relative(process.cwd(), path.join(args.out, `index-${tag}.md`))} (+ .svg, .json) in ${durationS.toFixed(0)} s\n`);
  }
}

function countRowsOf(dir: string, dim: number): number {
  const f = existsSync(path.join(dir, 'base.fvecs')) ? path.join(dir, 'base.fvecs') : path.join(dir, 'base.hvecs');
  return statSync(f).size / (4 + dim * (f.endsWith('.hvecs') ? 2 : 4));
}

await main();
