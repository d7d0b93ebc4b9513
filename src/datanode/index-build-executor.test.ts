import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IndexRecord } from '../coord/records.js';
import { ScalarIndex } from '../index/scalar/scalar-index.js';
import { buildTypedIndex, openTypedIndex } from '../index/typed-index-file.js';
import type { BinaryIvfIndex } from '../index/binary-ivf-index.js';
import type { SparseInvertedIndex } from '../index/sparse-index.js';
import type { Column, SparseRow } from '../schema/types.js';
import { MemoryObjectStore } from '../storage/memory-object-store.js';
import { IndexBuildExecutor } from './index-build-executor.js';
import { IndexBuildPool } from './index-builder.js';

/**
 * Scalar, BIN_IVF_FLAT and sparse index builds run on the build worker thread (not the data node's main
 * thread): the pool counts what its worker completed, and the stored files are byte for byte the ones
 * an in-thread build writes, answering lookups exactly as a scan of the column does.
 */

const ROWS = 3_000;

function record(id: number, indexType: string, metric: string, buildParams: Record<string, unknown> = {}): IndexRecord {
  return {
    id,
    collectionId: 1,
    fieldId: 100 + id,
    name: `i${id}`,
    indexType,
    metric,
    userParams: {},
    buildParams,
    createdTs: '1',
  } as unknown as IndexRecord;
}

/** A small deterministic generator (the columns are the same in every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const rand = rng(11);
const ints: Column = { kind: 'int64', data: BigInt64Array.from({ length: ROWS }, () => BigInt(Math.floor(rand() * 50))) };
const names: Column = { kind: 'string', data: Array.from({ length: ROWS }, (_, i) => `n${(i * 7) % 300}`) };
// Mostly numbers at a.b; some rows hold an object, an array, a string, null or nothing there (none of which a
// DOUBLE cast indexes).
const docs: Column = {
  kind: 'json',
  data: Array.from({ length: ROWS }, (_, i) => {
    const odd = [{ x: 1 }, [i % 13], '4', null, undefined][i % 50];
    return i % 50 < 5 ? { a: odd === undefined ? {} : { b: odd }, s: `x${i % 5}` } : { a: { b: i % 13 }, s: `x${i % 5}` };
  }),
};
const WIDTH = 8; // bytes per binary vector (dim 64)
const bins: Column = {
  kind: 'bytevec',
  vtype: 'BinaryVector',
  dim: WIDTH * 8,
  data: Uint8Array.from({ length: ROWS * WIDTH }, () => Math.floor(rand() * 256)),
};
const sparseRows: SparseRow[] = Array.from({ length: ROWS }, () => {
  const dims = [...new Set(Array.from({ length: 6 }, () => Math.floor(rand() * 200)))].sort((a, b) => a - b);
  return { indices: Uint32Array.from(dims), values: Float32Array.from(dims.map(() => rand())) };
});
const sparse: Column = { kind: 'sparse', data: sparseRows };
// Arrays of Int64 (some empty, some null), packed flat for the worker.
const arrayValid = Uint8Array.from({ length: ROWS }, (_, i) => (i % 97 === 0 ? 0 : 1));
const arrays: Column = {
  kind: 'array',
  elementType: 'Int64',
  data: Array.from({ length: ROWS }, (_, i) => (arrayValid[i] === 0 ? [] : Array.from({ length: i % 4 }, (_, j) => BigInt((i + j * 3) % 20)))),
  valid: arrayValid,
};

const builds: { name: string; column: Column; idx: IndexRecord }[] = [
  { name: 'INVERTED over Int64', column: ints, idx: record(1, 'INVERTED', '') },
  { name: 'Trie over VarChar', column: names, idx: record(2, 'Trie', '') },
  { name: 'BITMAP over Int64', column: ints, idx: record(3, 'BITMAP', '') },
  { name: 'STL_SORT over VarChar', column: names, idx: record(4, 'STL_SORT', '') },
  { name: 'JSON path INVERTED', column: docs, idx: record(5, 'INVERTED', '', { jsonPath: ['a', 'b'], jsonCastType: 'DOUBLE' }) },
  { name: 'BIN_IVF_FLAT', column: bins, idx: record(6, 'BIN_IVF_FLAT', 'HAMMING', { nlist: 16 }) },
  { name: 'SPARSE_INVERTED_INDEX', column: sparse, idx: record(7, 'SPARSE_INVERTED_INDEX', 'IP') },
  { name: 'SPARSE_WAND', column: sparse, idx: record(8, 'SPARSE_WAND', 'IP') },
  { name: 'INVERTED over Array<Int64>', column: arrays, idx: record(9, 'INVERTED', '') },
];

const sorted = (rows: ArrayLike<number> | undefined) => [...new Set(Array.from(rows ?? []))].sort((a, b) => a - b);
const scanRows = (n: number, keep: (i: number) => boolean) => Array.from({ length: n }, (_, i) => i).filter(keep);

describe('column index builds on the build worker', () => {
  let dir: string;
  const store = new MemoryObjectStore();
  const inlineStore = new MemoryObjectStore();
  let pool: IndexBuildPool;
  let inline: IndexBuildPool;
  let executor: IndexBuildExecutor;
  let inThread: IndexBuildExecutor;
  const files = new Map<number, Uint8Array>();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'quiver-column-builds-'));
    let next = 1_000;
    pool = new IndexBuildPool({ threads: 1 });
    inline = new IndexBuildPool({ inline: true, threads: 1 });
    executor = new IndexBuildExecutor({ store, ids: { alloc: async () => next++ }, pool }, { tmpDir: dir });
    inThread = new IndexBuildExecutor({ store: inlineStore, ids: { alloc: async () => next++ }, pool: inline }, { tmpDir: dir });
    for (const b of builds) {
      const file = await executor.buildColumn(b.column, b.idx, 2, 9);
      expect(file.indexId).toBe(b.idx.id);
      expect(file.files).toHaveLength(1);
      expect(file.files[0]).toContain(`index_files/${file.buildId}/1/`);
      const bytes = await store.get(file.files[0]!);
      expect(bytes.byteLength).toBe(file.size);
      files.set(b.idx.id, bytes);
    }
  }, 60_000);

  afterAll(async () => {
    await pool.close();
    await inline.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('every build ran on the worker thread, and wrote what an in-thread build writes', async () => {
    expect(pool.workerTasksDone()).toEqual({ build: 0, column: builds.length, merge: 0, text: 0 });
    for (const b of builds) {
      const here = await inThread.buildColumn(b.column, b.idx, 2, 9);
      expect(Buffer.from(files.get(b.idx.id)!).equals(Buffer.from(await inlineStore.get(here.files[0]!))), b.name).toBe(true);
    }
    // The JSON path index went to the worker as the values at its path only: the file is the one built from
    // the whole documents.
    const jsonIdx = builds.find((b) => b.idx.id === 5)!.idx;
    const fromDocs = ScalarIndex.build(docs, {
      indexType: 'INVERTED',
      jsonPath: jsonIdx.buildParams.jsonPath,
      jsonCastType: jsonIdx.buildParams.jsonCastType,
    });
    expect(Buffer.from(files.get(5)!).equals(Buffer.from(fromDocs.toBytes()))).toBe(true);
    // Sparse and array columns went packed: the files are the ones built from the rows as they are.
    expect(Buffer.from(files.get(7)!).equals(Buffer.from(buildTypedIndex(sparse, builds.find((b) => b.idx.id === 7)!.idx).toBytes()))).toBe(true);
    expect(Buffer.from(files.get(9)!).equals(Buffer.from(ScalarIndex.build(arrays, { indexType: 'INVERTED' }).toBytes()))).toBe(true);
    // The inline pool ran nothing on a worker.
    expect(inline.workerTasksDone()).toEqual({ build: 0, column: 0, merge: 0, text: 0 });
  });

  it('scalar files built on the worker answer lookups exactly as a scan', () => {
    const open = (id: number, indexType: 'INVERTED' | 'Trie' | 'BITMAP' | 'STL_SORT') =>
      ScalarIndex.fromBytes(files.get(id)!, `i${id}`, { rows: ROWS, indexType }) as ScalarIndex;
    const intData = ints.data as BigInt64Array;
    const strData = names.data as string[];
    for (const id of [1, 3]) {
      const idx = open(id, id === 1 ? 'INVERTED' : 'BITMAP');
      expect(sorted(idx.equalAny([7n, 19n]))).toEqual(scanRows(ROWS, (i) => intData[i] === 7n || intData[i] === 19n));
    }
    const inv = open(1, 'INVERTED');
    // Candidate rows (exclusive bounds are left to the filter that follows): inclusive bounds are exact.
    expect(sorted(inv.range({ value: 10n, inclusive: true }, { value: 19n, inclusive: true }))).toEqual(
      scanRows(ROWS, (i) => intData[i]! >= 10n && intData[i]! <= 19n),
    );
    const trie = open(2, 'Trie');
    expect(sorted(trie.prefix('n12'))).toEqual(scanRows(ROWS, (i) => strData[i]!.startsWith('n12')));
    const stl = open(4, 'STL_SORT');
    expect(sorted(stl.range({ value: 'n100', inclusive: true }, { value: 'n150', inclusive: true }))).toEqual(
      scanRows(ROWS, (i) => strData[i]! >= 'n100' && strData[i]! <= 'n150'),
    );
    const json = open(5, 'INVERTED');
    const docData = docs.data as { a: { b?: unknown } }[];
    const arr = ScalarIndex.fromBytes(files.get(9)!, 'i9', { rows: ROWS, indexType: 'INVERTED' }) as ScalarIndex;
    const arrData = arrays.data as bigint[][];
    expect(sorted(arr.equalAny([5n]))).toEqual(scanRows(ROWS, (i) => arrayValid[i] === 1 && arrData[i]!.includes(5n)));
    // A DOUBLE cast takes numbers only (not the string '4').
    expect(sorted(json.equalAny([4]))).toEqual(scanRows(ROWS, (i) => docData[i]!.a.b === 4));
  });

  it('BIN_IVF_FLAT and sparse files built on the worker search exactly (nprobe = nlist, no drop)', () => {
    const spec = (id: number) => builds.find((b) => b.idx.id === id)!.idx;
    const binData = bins.data as Uint8Array;
    const bin = openTypedIndex(files.get(6)!, 'bin', spec(6), { rows: ROWS, dim: WIDTH * 8 }) as BinaryIvfIndex;
    const pop = (x: number) => {
      let n = 0;
      for (; x; x &= x - 1) n++;
      return n;
    };
    for (const q of [0, 17, 2_999]) {
      const query = binData.slice(q * WIDTH, (q + 1) * WIDTH);
      const dist = Array.from({ length: ROWS }, (_, r) => {
        let d = 0;
        for (let j = 0; j < WIDTH; j++) d += pop(query[j]! ^ binData[r * WIDTH + j]!);
        return d;
      });
      const [hits] = bin.search([query], { k: 10, nprobe: 16 });
      const want = [...dist.keys()].sort((a, b) => dist[a]! - dist[b]! || a - b).slice(0, 10);
      expect(Array.from(hits!.rows)).toEqual(want);
    }
    for (const id of [7, 8]) {
      const sp = openTypedIndex(files.get(id)!, 'sp', spec(id), { rows: ROWS, dim: 0 }) as SparseInvertedIndex;
      const query = sparseRows[42]!;
      const ip = sparseRows.map((r) => {
        let s = 0;
        for (let a = 0, b = 0; a < query.indices.length && b < r.indices.length;) {
          if (query.indices[a] === r.indices[b]) s += query.values[a++]! * r.values[b++]!;
          else if (query.indices[a]! < r.indices[b]!) a++;
          else b++;
        }
        return s;
      });
      const [hits] = sp.search([query], { k: 10 });
      const want = [...ip.keys()]
        .filter((r) => ip[r]! > 0)
        .sort((a, b) => ip[b]! - ip[a]! || a - b)
        .slice(0, 10);
      expect(Array.from(hits!.rows)).toEqual(want);
    }
  });
});
