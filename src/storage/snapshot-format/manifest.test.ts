import avro from 'avsc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { QuiverError, isQuiverError } from '../../common/errors.js';
import type { Binlog, SegmentRecord } from '../../coord/records.js';
import { readContainer, writeContainer } from './avro-container.js';
import { MANIFEST_AVRO_SCHEMA, MANIFEST_SCHEMA_VERSION, decodeManifest, encodeManifest, type ManifestEntry } from './manifest.js';
import { TS, entry, segment } from './test-fixtures.js';

function roundTrip(e: ManifestEntry): ManifestEntry {
  return decodeManifest(encodeManifest(e));
}

function decodeError(bytes: Uint8Array): QuiverError | undefined {
  try {
    decodeManifest(bytes);
    return undefined;
  } catch (e) {
    if (!(e instanceof QuiverError)) throw new Error(`expected a QuiverError, got ${String(e)}`);
    return e;
  }
}

describe('manifest round trip', () => {
  it('gives back an equal record with every kind of file list', () => {
    const e = entry(segment(42, { deltalogs: 3, builds: [900, 901] }));
    const back = roundTrip(e);
    expect(back.segment).toStrictEqual(e.segment);
    expect(back.channel).toBe('quiver-dml_0_7v0');
    expect(back.indexParams).toStrictEqual(e.indexParams);
  });

  it('keeps empty lists and a segment without binlogs', () => {
    const s: SegmentRecord = { ...segment(1), binlogs: {}, deltalogs: [], statslogs: [], indexes: [] };
    expect(roundTrip({ segment: s, channel: 'c', indexParams: [] }).segment).toStrictEqual(s);
    const emptyField: SegmentRecord = { ...segment(2), binlogs: { '100': [] } };
    expect(roundTrip(entry(emptyField)).segment).toStrictEqual(emptyField);
    const noFiles: SegmentRecord = { ...segment(3, { builds: [5] }), indexes: [{ indexId: 500, buildId: 5, version: 0, files: [], size: 0 }] };
    expect(roundTrip(entry(noFiles)).segment).toStrictEqual(noFiles);
  });

  it('keeps large ids, timestamps above 2^53 and the optional fields', () => {
    const max = Number.MAX_SAFE_INTEGER;
    const big: Binlog = { logId: max, path: 'p', entries: max, tsFrom: '18446744073709551615', tsTo: '18446744073709551615', size: max };
    const s: SegmentRecord = {
      id: max,
      collectionId: max - 1,
      partitionId: max - 2,
      state: 'Dropped',
      numRows: max,
      binlogs: { [String(max)]: [big], '0': [big, big] },
      deltalogs: [big],
      statslogs: [big],
      indexes: [{ indexId: max, buildId: max, version: max, files: ['f'], size: max }],
      compactedFrom: [0, 1, max],
      compactedTo: max,
      droppedAtMs: 1_700_000_000_123,
      createdTs: '18446744073709551615',
    };
    const e: ManifestEntry = { segment: s, channel: `quiver-dml_0_${max}v0`, indexParams: [{ indexId: max, indexType: 'FLAT', metric: 'L2' }] };
    const back = roundTrip(e);
    expect(back.segment).toStrictEqual(s);
    expect(back.indexParams).toStrictEqual([{ indexId: max, indexType: 'FLAT', metric: 'L2' }]);
    // An explicitly empty compactedFrom is not the same as none.
    expect(roundTrip({ ...e, segment: { ...s, compactedFrom: [] } }).segment.compactedFrom).toEqual([]);
  });

  it('stores params only for indexes with files, one per index id', () => {
    const s = segment(9, { builds: [1, 2] }); // two builds of index 500
    const e: ManifestEntry = {
      segment: s,
      channel: 'c',
      indexParams: [
        { indexId: 777, indexType: 'HNSW', metric: 'IP', M: 8 },
        { indexId: 500, indexType: 'HNSW', metric: 'COSINE', M: 16, efConstruction: 200 },
      ],
    };
    expect(roundTrip(e).indexParams).toStrictEqual([{ indexId: 500, indexType: 'HNSW', metric: 'COSINE', M: 16, efConstruction: 200 }]);
  });

  it('round-trips arbitrary records (property)', () => {
    const id = fc.maxSafeNat();
    const ts = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(String);
    const plain = { noNullPrototype: true };
    const sha = fc.stringMatching(/^[0-9a-f]{64}$/);
    const log = fc.record(
      { logId: id, path: fc.string({ minLength: 1 }), entries: id, tsFrom: ts, tsTo: ts, size: id, sha256: sha },
      { requiredKeys: ['logId', 'path', 'entries', 'tsFrom', 'tsTo', 'size'], ...plain },
    );
    const seg = fc.record(
      {
        id,
        collectionId: id,
        partitionId: id,
        state: fc.constantFrom('Importing' as const, 'Flushed' as const, 'Dropped' as const),
        numRows: id,
        binlogs: fc.dictionary(id.map(String), fc.array(log, { maxLength: 3 }), { maxKeys: 4, ...plain }),
        deltalogs: fc.array(log, { maxLength: 4 }),
        statslogs: fc.array(log, { maxLength: 2 }),
        indexes: fc.array(
          fc.record(
            { indexId: fc.constantFrom(1, 2), buildId: id, version: id, files: fc.array(fc.string({ minLength: 1 }), { maxLength: 3 }), size: id },
            plain,
          ),
          { maxLength: 3 },
        ),
        compactedFrom: fc.array(id, { maxLength: 3 }),
        compactedTo: id,
        droppedAtMs: id,
        createdTs: ts,
      },
      { requiredKeys: ['id', 'collectionId', 'partitionId', 'state', 'numRows', 'binlogs', 'deltalogs', 'statslogs', 'indexes', 'createdTs'], ...plain },
    );
    fc.assert(
      fc.property(seg, fc.string({ minLength: 1 }), (s, channel) => {
        const indexParams = [
          { indexId: 1, indexType: 'HNSW', metric: 'L2', M: 4, efConstruction: 40 },
          { indexId: 2, indexType: 'FLAT', metric: 'IP' },
        ];
        const back = roundTrip({ segment: s, channel, indexParams });
        expect(back.segment).toStrictEqual(s);
        expect(back.channel).toBe(channel);
      }),
      { numRuns: 200, seed: 20240601 },
    );
  });

  it('encodes deterministically and compresses', () => {
    const e = entry(segment(42, { deltalogs: 30, builds: [900] }));
    const a = encodeManifest(e);
    expect(Buffer.from(a).equals(Buffer.from(encodeManifest(e)))).toBe(true);
    expect(a.byteLength).toBeLessThan(4096);
  });

  it('writes a standard Avro container that avsc reads (schema embedded, deflate)', async () => {
    const e = entry(segment(42, { deltalogs: 1, builds: [900] }));
    const bytes = encodeManifest(e);
    const got: Record<string, unknown>[] = [];
    let header: { meta: Record<string, Buffer> } | undefined;
    const decoder = new avro.streams.BlockDecoder();
    decoder.on('metadata', (_type: unknown, _codec: unknown, h: { meta: Record<string, Buffer> }) => (header = h));
    decoder.on('data', (r: Record<string, unknown>) => got.push(r));
    await new Promise<void>((resolve, reject) => {
      decoder.on('end', resolve);
      decoder.on('error', reject);
      decoder.end(Buffer.from(bytes));
    });
    expect(got).toHaveLength(1);
    expect(got[0]?.segment_id).toBe(42);
    expect(got[0]?.start_position).toBe(TS);
    expect(header?.meta['avro.codec']?.toString()).toBe('deflate');
    expect(JSON.parse(header?.meta['avro.schema']?.toString() ?? '{}')).toMatchObject({ name: 'ManifestEntry', namespace: 'quiver.snapshot' });
    expect(header?.meta['quiver.manifest.version']?.toString()).toBe(String(MANIFEST_SCHEMA_VERSION));
  });
});

describe('manifest encode refuses bad input, naming it', () => {
  const base = segment(42, { builds: [900] });
  const cases: [string, ManifestEntry, RegExp][] = [
    ['negative id', entry({ ...base, id: -1 }), /id must be a non-negative safe integer, got -1/],
    ['unsafe row count', entry({ ...base, numRows: 2 ** 53 }), /numRows .* got 9007199254740992/],
    ['fractional size', entry({ ...base, statslogs: [{ ...base.statslogs[0]!, size: 1.5 }] }), /statslogs\[0\]: size .* got 1.5/],
    ['bad timestamp', entry({ ...base, createdTs: '12abc' }), /createdTs must be a decimal hybrid timestamp string, got "12abc"/],
    ['bad field key', entry({ ...base, binlogs: { vec: [] } }), /binlogs key "vec" is not a field id/],
    ['unknown state', entry({ ...base, state: 'Growing' as never }), /unknown state "Growing"/],
    ['empty channel', { ...entry(base), channel: '' }, /channel must be a non-empty string/],
    ['missing index params', { ...entry(base), indexParams: [] }, /no indexParams for index 500 \(build 900\)/],
  ];
  it.each(cases)('%s', (_name, e, reason) => {
    let error: unknown;
    try {
      encodeManifest(e);
    } catch (err) {
      error = err;
    }
    expect(isQuiverError(error, 'ParameterInvalid')).toBe(true);
    expect((error as Error).message).toMatch(reason);
    expect((error as Error).message).toContain('segment ');
  });
});

describe('manifest decode refuses damaged input with SegmentLoadFailed', () => {
  const e = entry(segment(42, { deltalogs: 2, builds: [900] }));
  const bytes = encodeManifest(e);

  it('every truncation', () => {
    for (let n = 0; n < bytes.length; n++) {
      const error = decodeError(bytes.subarray(0, n));
      expect(error?.kind, `cut at ${n}`).toBe('SegmentLoadFailed');
      expect(error?.message).toMatch(/^manifest is damaged or unreadable: /);
    }
  });

  it('every single-bit flip either fails or decodes to the same entry', () => {
    let failed = 0;
    for (let i = 0; i < bytes.length; i++) {
      for (const bit of [i % 8]) {
        const bad = bytes.slice();
        bad[i] = bad[i]! ^ (1 << bit);
        const error = decodeError(bad);
        if (error === undefined) {
          // Only harmless flips survive (e.g. the version digit to an older one, deflate padding).
          const back = decodeManifest(bad);
          expect(back.segment, `flip ${i}.${bit}`).toStrictEqual(e.segment);
        } else {
          failed += 1;
          expect(error.kind, `flip ${i}.${bit}: ${error.message}`).toBe('SegmentLoadFailed');
        }
      }
    }
    expect(failed).toBeGreaterThan(bytes.length * 0.95);
  });

  it('garbage, empty input and a foreign Avro file', () => {
    expect(decodeError(new Uint8Array())?.message).toMatch(/truncated/);
    expect(decodeError(new TextEncoder().encode('{"segment": 1}'))?.message).toMatch(/not an Avro object container file/);
    const foreign = writeContainer({ schemaJson: '"string"', codec: 'null', blocks: [{ count: 1, data: avro.Type.forSchema('string').toBuffer('hi') }] });
    expect(decodeError(foreign)?.message).toMatch(/quiver.manifest.version/);
  });

  it('a newer version, several records, or an incompatible writer schema', () => {
    const record = decodeRecord(bytes);
    const type = avro.Type.forSchema(MANIFEST_AVRO_SCHEMA as unknown as avro.Schema);
    const data = type.toBuffer(record);
    const file = (meta: Record<string, string>, blocks: { count: number; data: Uint8Array }[], schema = JSON.stringify(MANIFEST_AVRO_SCHEMA)) =>
      writeContainer({ schemaJson: schema, codec: 'deflate', meta, blocks });
    expect(decodeError(file({ 'quiver.manifest.version': '2' }, [{ count: 1, data }]))?.message).toMatch(/version 2 is newer than this reader \(1\)/);
    expect(decodeError(file({ 'quiver.manifest.version': '1' }, [{ count: 2, data: Buffer.concat([data, data]) }]))?.message).toMatch(
      /declares 2 records \(at most 1/,
    );
    expect(decodeError(file({ 'quiver.manifest.version': '1' }, [{ count: 1, data: Buffer.concat([data, Buffer.from([0])]) }]))?.message).toMatch(
      /ends at byte/,
    );
    const otherSchema = JSON.stringify({ type: 'record', name: 'Other', fields: [{ name: 'x', type: 'long' }] });
    expect(decodeError(file({ 'quiver.manifest.version': '1' }, [{ count: 1, data: Buffer.from([2]) }], otherSchema))?.message).toMatch(
      /writer schema cannot be read/,
    );
  });

  it('keeps the SHA-256 recorded for each file, and reads files written before hashes were recorded', () => {
    const h = (c: string): string => c.repeat(64);
    const base = segment(77, { deltalogs: 1, builds: [900] });
    const withHashes: SegmentRecord = {
      ...base,
      binlogs: Object.fromEntries(Object.entries(base.binlogs).map(([k, logs]) => [k, logs.map((b) => ({ ...b, sha256: h('a') }))])),
      deltalogs: base.deltalogs.map((b) => ({ ...b, sha256: h('b') })),
      statslogs: base.statslogs.map((b) => ({ ...b, sha256: h('c') })),
      indexes: base.indexes.map((ix) => ({ ...ix, filesSha256: ix.files.map(() => h('d')) })),
    };
    const e = entry(withHashes);
    const bytesNow = encodeManifest(e);
    expect(decodeManifest(bytesNow).segment).toStrictEqual(withHashes);
    // Bad hashes are refused when written, naming the value.
    const badLog: SegmentRecord = { ...withHashes, deltalogs: [{ ...withHashes.deltalogs[0]!, sha256: 'XYZ' }] };
    expect(() => encodeManifest(entry(badLog))).toThrow(/sha256 must be 64 lowercase hex digits, got "XYZ"/);
    const badIdx: SegmentRecord = { ...withHashes, indexes: [{ ...withHashes.indexes[0]!, filesSha256: [] }] };
    expect(() => encodeManifest(entry(badIdx))).toThrow(/filesSha256 has 0 hashes for [1-9][0-9]* files/);
    // A file written with the schema before the hash fields existed: same record, no hashes.
    const strip = <T extends { name: string }>(fields: readonly T[], name: string): T[] => fields.filter((f) => f.name !== name);
    const old = JSON.parse(JSON.stringify(MANIFEST_AVRO_SCHEMA)) as { fields: { name: string; type: unknown }[] };
    const oldBinlogs = old.fields.find((f) => f.name === 'binlog_files')!.type as {
      items: { fields: { name: string; type: { items: { fields: { name: string }[] } } }[] };
    };
    const binlogRecord = oldBinlogs.items.fields.find((f) => f.name === 'binlogs')!.type.items;
    binlogRecord.fields = strip(binlogRecord.fields, 'sha256');
    const idxRecord = (old.fields.find((f) => f.name === 'index_files')!.type as { items: { fields: { name: string }[] } }).items;
    idxRecord.fields = strip(idxRecord.fields, 'files_sha256');
    const oldType = avro.Type.forSchema(old as unknown as avro.Schema);
    const raw = decodeRecord(encodeManifest(entry(base)));
    const dropHash = (b: Record<string, unknown>): Record<string, unknown> => {
      const { sha256: _s, ...rest } = b;
      return rest;
    };
    const oldRecord = {
      ...raw,
      binlog_files: (raw.binlog_files as { field_id: number; binlogs: Record<string, unknown>[] }[]).map((f) => ({
        ...f,
        binlogs: f.binlogs.map(dropHash),
      })),
      deltalog_files: (raw.deltalog_files as Record<string, unknown>[]).map(dropHash),
      statslog_files: (raw.statslog_files as Record<string, unknown>[]).map(dropHash),
      index_files: (raw.index_files as Record<string, unknown>[]).map(({ files_sha256: _f, ...rest }) => rest),
    };
    const bytesOld = writeContainer({
      schemaJson: JSON.stringify(old),
      codec: 'null',
      meta: { 'quiver.manifest.version': '1' },
      blocks: [{ count: 1, data: oldType.toBuffer(oldRecord) }],
    });
    const back = decodeManifest(bytesOld).segment;
    expect(back).toStrictEqual(base);
    expect(back.deltalogs[0]!.sha256).toBeUndefined();
    expect(back.indexes[0]!.filesSha256).toBeUndefined();
  });

  it('reads a file written with an older, smaller schema (schema evolution)', () => {
    // Version 0 had no compacted_to / dropped_at_ms: they take their defaults.
    const old = {
      ...MANIFEST_AVRO_SCHEMA,
      fields: MANIFEST_AVRO_SCHEMA.fields.filter((f) => f.name !== 'compacted_to' && f.name !== 'dropped_at_ms'),
    };
    const oldType = avro.Type.forSchema(old as unknown as avro.Schema);
    const { compacted_to: _a, dropped_at_ms: _b, ...record } = decodeRecord(bytes);
    const bytesV0 = writeContainer({
      schemaJson: JSON.stringify(old),
      codec: 'null',
      meta: { 'quiver.manifest.version': '0' },
      blocks: [{ count: 1, data: oldType.toBuffer(record) }],
    });
    expect(decodeManifest(bytesV0).segment).toStrictEqual(e.segment);
  });
});

/** The raw Avro record inside a manifest file. */
function decodeRecord(bytes: Uint8Array): Record<string, unknown> {
  const file = readContainer(bytes, { bytesMax: 1 << 20, recordsMax: 1, requireChecksum: true });
  const type = avro.Type.forSchema(MANIFEST_AVRO_SCHEMA as unknown as avro.Schema, { omitRecordMethods: true });
  return { ...(type.fromBuffer(Buffer.from(file.blocks[0]!.data)) as Record<string, unknown>) };
}
