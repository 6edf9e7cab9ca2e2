// Save/load round trip and every flavour of broken file.
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { VectorIndex } from '../../native/index.ts';
import { lowRank, seqIds, tempDir } from './helpers.ts';

const dim = 24, n = 2000, nq = 30;
const all = lowRank(n + nq, dim, 6, 12, 11);
const data = all.subarray(0, n * dim);
const queries = all.slice(n * dim);

async function build(storage: 'float32' | 'float16') {
  const idx = new VectorIndex({ dim, metric: 'l2', nlist: 20, reducedDim: 12, vectorStorage: storage, seed: 9 });
  await idx.train(data);
  await idx.add(seqIds(n, 1000), data);
  idx.remove(seqIds(100, 1000)); // tombstones are persisted too
  await idx.add(new BigInt64Array([1500n]), queries.slice(0, dim)); // an update
  return idx;
}

describe('persistence', () => {
  for (const storage of ['float32', 'float16'] as const) {
    it(`save → load gives identical results (${storage})`, async () => {
      const idx = await build(storage);
      const dir = tempDir();
      await idx.save(dir);
      expect(readdirSync(dir)).toEqual(['index.winnow']); // no temp file left behind
      const back = await VectorIndex.load(dir);
      expect(back.options).toEqual(idx.options);
      expect(back.stats()).toEqual(idx.stats());
      expect(back.size).toBe(n - 100);
      for (const opts of [{ k: 10 }, { k: 10, nprobe: 2, kFactor: 3 }, { k: 7, filter: seqIds(500, 1200) }]) {
        const a = await idx.searchBatch(queries, opts);
        const b = await back.searchBatch(queries, opts);
        expect(b).toEqual(a);
      }
      expect(await back.bruteForce(queries, { k: 5 })).toEqual(await idx.bruteForce(queries, { k: 5 }));
      expect(back.getParams('search')).toEqual(idx.getParams('search'));
      // The loaded index stays fully mutable.
      await back.add(new BigInt64Array([1n]), queries.slice(dim, 2 * dim));
      expect(back.search(queries.subarray(dim, 2 * dim), { k: 1 }).ids[0]).toBe(1n);
    });
  }

  it('persists replaced search params and untrained indexes', async () => {
    const idx = await build('float32');
    const sp = idx.getParams('search')!;
    idx.setSearchParams({ ...sp, centroids: sp.centroids.map((v) => v * 1.5) });
    const dir = tempDir();
    await idx.save(dir);
    const back = await VectorIndex.load(dir);
    expect(back.getParams('search')).toEqual(idx.getParams('search'));
    expect(back.getParams('insert')).toEqual(idx.getParams('insert'));
    back.resetSearchParams();
    expect(back.getParams('search')).toEqual(idx.getParams('insert'));

    const raw = new VectorIndex({ dim, metric: 'cos' });
    raw.addSync(seqIds(10), data.subarray(0, 10 * dim));
    const dir2 = tempDir();
    await raw.save(dir2);
    const raw2 = await VectorIndex.load(dir2);
    expect(raw2.isTrained).toBe(false);
    expect(await raw2.bruteForce(queries, { k: 3 })).toEqual(await raw.bruteForce(queries, { k: 3 }));
  });

  it('saving again replaces the file atomically', async () => {
    const idx = await build('float32');
    const dir = tempDir();
    await idx.save(dir);
    idx.remove(seqIds(500, 1100));
    await idx.save(dir);
    expect(readdirSync(dir)).toEqual(['index.winnow']);
    expect((await VectorIndex.load(dir)).size).toBe(n - 600);
  });

  it('rejects missing, truncated, corrupted and other-version files', async () => {
    const idx = await build('float32');
    const dir = tempDir();
    await idx.save(dir);
    const file = path.join(dir, 'index.winnow');
    const good = readFileSync(file);
    await expect(VectorIndex.load(path.join(dir, 'nope'))).rejects.toThrow(/cannot open .*index.winnow/);
    const variants: Array<[string, Buffer, RegExp]> = [
      ['empty', Buffer.alloc(0), /not a Winnow index file/],
      ['bad magic', Buffer.concat([Buffer.from('NOTANIDX'), good.subarray(8)]), /not a Winnow index file/],
      ['truncated header', good.subarray(0, 20), /corrupted or truncated/],
      ['truncated middle', good.subarray(0, Math.floor(good.length / 2)), /corrupted or truncated/],
      ['truncated end', good.subarray(0, good.length - 3), /corrupted or truncated/],
      ['trailing garbage', Buffer.concat([good, Buffer.from([1, 2, 3])]), /corrupted or truncated/],
    ];
    const flipped = Buffer.from(good);
    flipped[Math.floor(good.length * 0.6)] ^= 0x40;
    variants.push(['bit flip', flipped, /checksum mismatch/]);
    const v2 = Buffer.from(good);
    v2.writeUInt32LE(2, 8);
    variants.push(['future version', v2, /format version 2, this build reads version 1/]);
    for (const [name, bytes, msg] of variants) {
      writeFileSync(file, bytes);
      await expect(VectorIndex.load(dir), name).rejects.toThrow(msg);
    }
    writeFileSync(file, good);
    expect((await VectorIndex.load(dir)).size).toBe(idx.size);
  });

  it('a failed save leaves the previous file intact', async () => {
    const idx = await build('float32');
    const dir = tempDir();
    await idx.save(dir);
    const before = readFileSync(path.join(dir, 'index.winnow'));
    // A path under a regular file cannot be created.
    await expect(idx.save(path.join(dir, 'index.winnow', 'sub'))).rejects.toThrow(/save: cannot create/);
    expect(readFileSync(path.join(dir, 'index.winnow'))).toEqual(before);
    expect(existsSync(path.join(dir, 'index.winnow', 'sub'))).toBe(false);
  });
});
