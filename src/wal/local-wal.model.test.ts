/**
 * Model test: random sequences of append / failed append / reopen / truncateBefore / read against an
 * in-memory list of acknowledged records. A failed append (its segment rotation trips over a file in
 * the way) leaves the model unchanged, and the log carries on without a reopen. Invariants: positions strictly increase and never repeat across reopen; a read
 * from p returns exactly the model's records at >= p; truncation never loses a record at or after the
 * truncation point and only drops whole older segment files.
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { isQuiverError } from '../common/errors.js';
import { openLocalWal, segmentFileName, type LocalWal } from './local-wal.js';

type Command =
  | { readonly op: 'append'; readonly sizes: readonly number[]; readonly concurrent: boolean }
  | { readonly op: 'reopen' }
  | { readonly op: 'fail' }
  | { readonly op: 'truncate'; readonly pick: number }
  | { readonly op: 'read'; readonly pick: number; readonly inside: boolean };

const command: fc.Arbitrary<Command> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({ op: fc.constant('append' as const), sizes: fc.array(fc.nat(120), { minLength: 1, maxLength: 6 }), concurrent: fc.boolean() }),
  },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('reopen' as const) }) },
  { weight: 1, arbitrary: fc.record({ op: fc.constant('fail' as const) }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('truncate' as const), pick: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ op: fc.constant('read' as const), pick: fc.nat(), inside: fc.boolean() }) },
);

interface ModelRecord {
  readonly position: number;
  readonly payload: Uint8Array;
}

describe('LocalWal model', () => {
  it('behaves like an append-only list with a moving start', async () => {
    let counter = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(command, { minLength: 1, maxLength: 25 }), fc.integer({ min: 40, max: 400 }), async (commands, segmentBytesMax) => {
        const dir = await mkdtemp(join(tmpdir(), 'quiver-wal-model-'));
        const opts = {
          segmentBytesMax,
          onWarn: (m: string) => {
            throw new Error(`unexpected warning: ${m}`);
          },
        };
        let wal: LocalWal = await openLocalWal(dir, opts);
        let model: ModelRecord[] = [];
        let truncatedBefore = 0;
        let lastPosition = -1;
        try {
          for (const c of commands) {
            switch (c.op) {
              case 'append': {
                const payloads = c.sizes.map((s) => new Uint8Array(s).fill(counter++ & 0xff));
                const positions = c.concurrent ? (await Promise.all(payloads.map((p) => wal.append([p])))).map((r) => r[0]!) : await wal.append(payloads);
                positions.forEach((p, i) => {
                  expect(p).toBeGreaterThan(lastPosition);
                  lastPosition = p;
                  model.push({ position: p, payload: payloads[i]! });
                });
                break;
              }
              case 'reopen': {
                const end = wal.endPosition();
                await wal.close();
                wal = await openLocalWal(dir, opts);
                expect(wal.endPosition()).toBe(end);
                break;
              }
              case 'fail': {
                const segments = (await readdir(dir)).filter((n) => /^\d{20}\.wal$/.test(n)).sort();
                const end = wal.endPosition();
                // A record bigger than a segment rotates first, unless it is the segment's first record.
                if (end === Number(segments[segments.length - 1]!.slice(0, 20))) break;
                await writeFile(join(dir, segmentFileName(end)), '');
                const failure = await wal.append([new Uint8Array(segmentBytesMax)]).then(
                  () => undefined,
                  (e: unknown) => e,
                );
                expect(isQuiverError(failure, 'IoFailed'), String(failure)).toBe(true);
                expect(wal.endPosition()).toBe(end);
                expect(await readdir(dir)).not.toContain(segmentFileName(end));
                break;
              }
              case 'truncate': {
                const candidates = [...model.map((r) => r.position), wal.endPosition()].filter((p) => p >= truncatedBefore);
                const at = candidates[c.pick % candidates.length]!;
                await wal.truncateBefore(at);
                truncatedBefore = at;
                break;
              }
              case 'read': {
                if (model.length === 0) break;
                const target = model[c.pick % model.length]!;
                const from = c.inside && target.payload.length > 0 ? target.position + 1 : target.position;
                const got: ModelRecord[] = [];
                try {
                  for await (const r of wal.read(from)) got.push(r);
                } catch (e) {
                  // Only positions before the truncation point may be gone, and then loudly.
                  expect(from).toBeLessThan(truncatedBefore);
                  expect(isQuiverError(e, 'IoKeyNotFound')).toBe(true);
                  break;
                }
                expect(got).toEqual(model.filter((r) => r.position >= from));
                break;
              }
            }
          }
          // Whatever was dropped is before the truncation point; everything after it is intact.
          const all: ModelRecord[] = [];
          const oldest = model.find((r) => r.position >= truncatedBefore)?.position ?? wal.endPosition();
          try {
            for await (const r of wal.read(oldest)) all.push(r);
          } catch (e) {
            expect(isQuiverError(e, 'IoKeyNotFound')).toBe(false);
            throw e;
          }
          model = model.filter((r) => r.position >= oldest);
          expect(all).toEqual(model);
        } finally {
          await wal.close();
          await rm(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: 100 },
    );
  });
});
