// Child-process entry: runs one Node system on one dataset so that its peak RSS is its own.
// Usage (from run.ts): node --import tsx bench/index/worker.ts <system> '<RunSpec JSON>'
// Prints progress on stderr and one line `RESULT {...SystemResult}` on stdout.
import type { RunSpec, SystemResult } from './types.ts';

const [system, specJson] = process.argv.slice(2);
const spec = JSON.parse(specJson) as RunSpec;

let result: SystemResult;
try {
  if (system === 'hnswlib') {
    const { runHnswlib } = await import('./systems/hnswlib.ts');
    result = await runHnswlib(spec);
  } else if (system === 'winnow') {
    const { runWinnow } = await import('./systems/winnow.ts');
    result = await runWinnow(spec);
  } else {
    throw new Error(`unknown system ${system}`);
  }
} catch (e) {
  process.stdout.write(`ERROR ${JSON.stringify(e instanceof Error ? e.message : String(e))}\n`);
  process.exit(1);
}
process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
process.exit(0);
