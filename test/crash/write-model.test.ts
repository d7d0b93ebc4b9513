import { describe, expect, it } from 'vitest';
import { WriteModel, tagOf, v0Of, type ObservedRow } from './write-model.js';

const row = (id: number, val: number): ObservedRow => ({ id, val, tag: tagOf(id, val), v0: v0Of(val) });

describe('crash write model', () => {
  it('an acknowledged write must be there; an op of unknown fate may or may not be', () => {
    const m = new WriteModel();
    const s1 = m.nextSeq();
    m.begin([1, 2], 'insert', s1).ack();
    const s2 = m.nextSeq();
    m.begin([1], 'upsert', s2).fail();
    const s3 = m.nextSeq();
    m.begin([2], 'delete', s3); // in flight at the kill
    expect(m.check([row(1, s1), row(2, s1)])).toEqual([]);
    expect(m.check([row(1, s2)])).toEqual([]);
    expect(m.check([row(2, s1)])).toHaveLength(1); // key 1 lost its acknowledged insert
    expect(m.check([row(1, s3), row(2, s1)])).toHaveLength(1); // s3 was never written to key 1
    expect(m.check([row(1, s1), row(2, s1), row(3, s1)])).toHaveLength(1); // key 3 never written
    expect(m.check([row(1, s1), row(1, s1), row(2, s1)])).toHaveLength(1); // visible twice
    expect(m.check([{ ...row(1, s1), tag: 'x' }, row(2, s1)])).toHaveLength(1); // columns disagree
  });

  it('settles on what was observed, then holds the next round to it', () => {
    const m = new WriteModel();
    const s1 = m.nextSeq();
    m.begin([1], 'insert', s1);
    m.settle([]);
    expect(m.exact()).toEqual(new Map());
    expect(m.check([row(1, s1)])).toHaveLength(1);
    const s2 = m.nextSeq();
    m.begin([1], 'insert', s2).ack();
    expect(m.current(1)).toBe(s2);
    const s3 = m.nextSeq();
    m.begin([1], 'delete', s3).ack();
    expect(m.check([])).toEqual([]);
    expect(m.check([row(1, s2)])).toHaveLength(1);
  });
});
