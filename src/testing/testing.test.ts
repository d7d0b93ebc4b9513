import { describe, expect, it } from 'vitest';
import { collectionRecord, PARTITION_ID, SeededRandom, seededRandom, segmentRecord, until, vectorRows, waitRestore } from './index.js';

describe('SeededRandom', () => {
  it('is mulberry32: the sequence for a seed never changes (benchmark data and failing seeds depend on it)', () => {
    const r = new SeededRandom(1);
    expect([r.next(), r.next(), r.next()]).toEqual([0.6270739405881613, 0.002735721180215478, 0.5274470399599522]);
  });

  it('the function form draws the same sequence as the class', () => {
    const a = new SeededRandom(42);
    const b = seededRandom(42);
    for (let i = 0; i < 100; i++) expect(b()).toBe(a.next());
  });

  it('int stays in range', () => {
    const r = new SeededRandom(7);
    for (let i = 0; i < 1000; i++) {
      const n = r.int(5);
      expect(n >= 0 && n < 5 && Number.isInteger(n)).toBe(true);
    }
  });

  it('vectorRows is reproducible from its seed and differs across seeds', () => {
    expect(vectorRows(3, 4, 9)).toEqual(vectorRows(3, 4, 9));
    expect(vectorRows(3, 4, 9)).not.toEqual(vectorRows(3, 4, 10));
  });
});

describe('until', () => {
  it('returns once the predicate holds', async () => {
    let calls = 0;
    await until(() => ++calls >= 3, { intervalMs: 1 });
    expect(calls).toBe(3);
  });

  it('throws after the timeout, naming what it waited for', async () => {
    await expect(until(() => false, { timeoutMs: 0, intervalMs: 1, what: 'the moon' })).rejects.toThrow(/the moon/);
  });
});

describe('waitRestore', () => {
  const client = (answers: { code: string; state?: string }[]) => {
    let i = 0;
    return {
      getRestoreSnapshotState: async () => {
        const a = answers[Math.min(i++, answers.length - 1)]!;
        return { status: { error_code: a.code, reason: 'r' }, info: a.state === undefined ? undefined : { state: a.state } };
      },
    } as never;
  };

  it('polls until the job is Completed or Failed', async () => {
    const info = await waitRestore(
      client([
        { code: 'Success', state: 'RestoreSnapshotExecuting' },
        { code: 'Success', state: 'RestoreSnapshotFailed' },
      ]),
      '1',
      {
        intervalMs: 1,
      },
    );
    expect(info.state).toBe('RestoreSnapshotFailed');
  });

  it('throws at once on an error status instead of polling to the timeout', async () => {
    await expect(waitRestore(client([{ code: 'UnexpectedError' }]), '1', { timeoutMs: 60_000 })).rejects.toThrow(/UnexpectedError/);
  });
});

describe('record factories', () => {
  it('segments of different ids or collections share no file key', () => {
    const keys = (r: ReturnType<typeof segmentRecord>) => [
      ...Object.values(r.binlogs)
        .flat()
        .map((b) => b.path),
      ...r.deltalogs.map((b) => b.path),
      ...r.statslogs.map((b) => b.path),
      ...r.indexes.flatMap((i) => i.files),
    ];
    const a = keys(segmentRecord({ collectionId: 1, id: 1, buildId: 5 }));
    const b = keys(segmentRecord({ collectionId: 1, id: 2, buildId: 6 }));
    const c = keys(segmentRecord({ collectionId: 2, id: 1 }));
    expect(new Set([...a, ...b, ...c]).size).toBe(a.length + b.length + c.length);
  });

  it('a collection has the default partition the segments use', () => {
    expect(collectionRecord(3).partitions.map((p) => p.id)).toEqual([PARTITION_ID]);
    expect(segmentRecord({ collectionId: 3, id: 1 }).partitionId).toBe(PARTITION_ID);
  });
});
