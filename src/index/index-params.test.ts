import { describe, expect, it } from 'vitest';

import { type QuiverError, isQuiverError } from '../common/errors.js';
import { parseIndexParams } from './index-params.js';

function errorOf(f: () => unknown): QuiverError {
  try {
    f();
  } catch (e) {
    if (isQuiverError(e)) return e;
    throw e;
  }
  throw new Error('expected a QuiverError');
}

describe('parseIndexParams', () => {
  it('maps AUTOINDEX and a missing type to HNSW with Milvus defaults', () => {
    const expected = { type: 'HNSW', metric: 'COSINE', M: 16, efConstruction: 200 };
    expect(parseIndexParams(undefined, {})).toEqual(expected);
    expect(parseIndexParams('', {})).toEqual(expected);
    expect(parseIndexParams('AUTOINDEX', {})).toEqual(expected);
    expect(parseIndexParams('autoindex', { metric_type: 'l2' })).toEqual({ ...expected, metric: 'L2' });
  });

  it('reads HNSW and FLAT params, numbers given as strings or numbers', () => {
    expect(parseIndexParams('HNSW', { metric_type: 'IP', M: '32', efConstruction: 64 })).toEqual({
      type: 'HNSW',
      metric: 'IP',
      M: 32,
      efConstruction: 64,
    });
    expect(parseIndexParams('hnsw', { metric_type: 'Cosine', M: 2, efConstruction: '1' })).toEqual({
      type: 'HNSW',
      metric: 'COSINE',
      M: 2,
      efConstruction: 1,
    });
    // FLAT has no build parameters; stray ones are ignored as Milvus does.
    expect(parseIndexParams('FLAT', { metric_type: 'L2', M: 'junk' })).toEqual({ type: 'FLAT', metric: 'L2' });
  });

  it('merges a JSON params entry, top-level keys winning', () => {
    expect(parseIndexParams('HNSW', { metric_type: 'L2', params: '{"M": 8, "efConstruction": 40, "metric_type": "IP"}' })).toEqual({
      type: 'HNSW',
      metric: 'L2',
      M: 8,
      efConstruction: 40,
    });
    const bad = errorOf(() => parseIndexParams('HNSW', { params: '{M:' }));
    expect(bad.kind).toBe('ParameterInvalid');
    expect(bad.message).toContain('{M:');
  });

  it('rejects unsupported index types, listing the supported ones', () => {
    const e = errorOf(() => parseIndexParams('DISKANN', { metric_type: 'L2' }));
    expect(e.kind).toBe('IndexNotSupported');
    expect(e.message).toBe('index type DISKANN is not supported; supported: FLAT, HNSW, HNSW_SQ, HNSW_PQ, HNSW_PRQ, IVF_FLAT, IVF_SQ8, IVF_PQ, AUTOINDEX');
  });

  it('rejects unknown metrics, listing the supported ones', () => {
    const e = errorOf(() => parseIndexParams('HNSW', { metric_type: 'HAMMING' }));
    expect(e.kind).toBe('MetricNotFound');
    expect(e.message).toBe('metric type HAMMING is not supported; supported: L2, IP, COSINE');
  });

  it('validates M and efConstruction bounds, naming the offending value', () => {
    const cases: [Record<string, string | number>, string][] = [
      [{ M: 1 }, 'M must be an integer in [2, 2048], got 1'],
      [{ M: 2049 }, 'got 2049'],
      [{ M: '16.5' }, 'got "16.5"'],
      [{ M: 'abc' }, 'got "abc"'],
      [{ M: 4.5 }, 'got 4.5'],
      [{ efConstruction: 0 }, 'efConstruction must be an integer in [1, 2147483647], got 0'],
      [{ efConstruction: 2_147_483_648 }, 'got 2147483648'],
      [{ efConstruction: '' }, 'got ""'],
    ];
    for (const [params, text] of cases) {
      const e = errorOf(() => parseIndexParams('HNSW', params));
      expect(e.kind).toBe('ParameterInvalid');
      expect(e.message).toContain(text);
    }
    expect(parseIndexParams('HNSW', { M: 2048, efConstruction: 2_147_483_647 })).toMatchObject({ M: 2048, efConstruction: 2_147_483_647 });
  });
});
