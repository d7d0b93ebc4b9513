import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { afterEach, describe, expect, it } from 'vitest';

import { exactOver } from '../index/vector-source.js';
import { exactSearch } from '../index/flat-search.js';
import { takeRows, concatColumns } from '../schema/columns.js';
import { columnLength, type Column } from '../schema/types.js';
import { SeededRandom } from '../testing/random.js';
import { encodeColumn } from './binlog.js';
import { openLazyVectorColumn } from './lazy-vector-column.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

function writeBinlog(col: Column): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'quiver-lazy-'));
  dirs.push(dir);
  const file = path.join(dir, 'binlog');
  fs.writeFileSync(file, encodeColumn(col, { fieldId: 101 }));
  return file;
}

function randomVectors(rows: number, dim: number, seed: number): Float32Array {
  const rng = new SeededRandom(seed);
  return Float32Array.from({ length: rows * dim }, () => rng.next() * 2 - 1);
}

describe('lazy FloatVector column', () => {
  it('gathers any rows, in any order, byte-identical to the resident column', () => {
    const dim = 24;
    const data = randomVectors(500, dim, 3);
    const lazy = openLazyVectorColumn(writeBinlog({ kind: 'vector', dim, data }), 500);
    expect(lazy.lazy).toBeDefined();
    expect(lazy.data.length).toBe(0);
    expect(columnLength(lazy)).toBe(500);
    const rows = [499, 0, 1, 2, 250, 250, 17, 18, 400];
    const got = takeRows(lazy, rows);
    const want = takeRows({ kind: 'vector', dim, data }, rows);
    expect(got).toEqual(want);
    expect(lazy.lazy!.readAll()).toEqual(data);
    expect((concatColumns([lazy, { kind: 'vector', dim, data: data.subarray(0, dim) }]) as { data: Float32Array }).data.length).toBe(501 * dim);
  });

  it('keeps the validity bitmap of a nullable column resident', () => {
    const dim = 8;
    const valid = Uint8Array.from({ length: 40 }, (_, i) => (i % 3 === 0 ? 0 : 1));
    const data = randomVectors(40, dim, 4);
    for (let r = 0; r < 40; r++) if (valid[r] === 0) data.fill(0, r * dim, (r + 1) * dim);
    const lazy = openLazyVectorColumn(writeBinlog({ kind: 'vector', dim, data, valid }), 40);
    expect(lazy.valid).toEqual(valid);
    expect(takeRows(lazy, [3, 4])).toEqual(takeRows({ kind: 'vector', dim, data, valid }, [3, 4]));
  });

  it('refuses a binlog whose row count differs from the segment record, and a corrupt one', () => {
    const dim = 4;
    const data = randomVectors(10, dim, 5);
    const file = writeBinlog({ kind: 'vector', dim, data });
    expect(() => openLazyVectorColumn(file, 11)).toThrow(/10 rows, meta says 11/);
    const bytes = fs.readFileSync(file);
    // Flip a bit inside the stored values: the CRC check at open must catch it.
    const at = bytes.indexOf(Buffer.from(data.buffer, 0, dim * 4));
    expect(at).toBeGreaterThan(0);
    bytes[at + 5] = bytes[at + 5]! ^ 0x01;
    fs.writeFileSync(file, bytes);
    expect(() => openLazyVectorColumn(file, 10)).toThrow(/corrupt binlog/);
  });

  it('exact search through the reader equals exact search over the array (rows mapped back)', () => {
    const dim = 16;
    const data = randomVectors(300, dim, 6);
    const lazy = openLazyVectorColumn(writeBinlog({ kind: 'vector', dim, data }), 300);
    const q = randomVectors(3, dim, 7);
    const rows = Int32Array.from({ length: 90 }, (_, i) => i * 3 + 1);
    for (const metric of ['L2', 'IP', 'COSINE'] as const) {
      expect(exactOver(lazy.lazy!, dim, metric, q, 3, 7, rows, undefined)).toEqual(exactSearch(data, dim, metric, undefined, q, 3, 7, rows, undefined));
      expect(exactOver(lazy.lazy!, dim, metric, q, 3, 7, undefined, undefined)).toEqual(
        exactSearch(data, dim, metric, undefined, q, 3, 7, undefined, undefined),
      );
    }
  });
});
