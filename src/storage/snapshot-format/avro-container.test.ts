import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { ContainerFormatError, readContainer, writeContainer, type AvroCodec } from './avro-container.js';

const SCHEMA = {
  type: 'record',
  name: 'Pair',
  fields: [
    { name: 'k', type: 'string' },
    { name: 'v', type: 'long' },
  ],
};
const TYPE = avro.Type.forSchema(SCHEMA as avro.Schema);
const OPTS = { bytesMax: 1 << 20, recordsMax: 100, requireChecksum: false };

function records(n: number): { k: string; v: number }[] {
  return Array.from({ length: n }, (_, i) => ({ k: `key-${i}`.repeat(3), v: i * 2 ** 40 - 5 }));
}

function write(codec: AvroCodec, recs = records(3)): Uint8Array {
  const data = Buffer.concat(recs.map((r) => TYPE.toBuffer(r)));
  return writeContainer({ schemaJson: JSON.stringify(SCHEMA), codec, meta: { 'x.note': 'hello' }, blocks: [{ count: recs.length, data }] });
}

async function avscRead(bytes: Uint8Array): Promise<unknown[]> {
  const out: unknown[] = [];
  const decoder = new avro.streams.BlockDecoder();
  decoder.on('data', (r: unknown) => out.push(r));
  await new Promise<void>((resolve, reject) => {
    decoder.on('end', resolve);
    decoder.on('error', reject);
    decoder.end(Buffer.from(bytes));
  });
  return out;
}

async function avscWrite(codec: string, recs: unknown[]): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  const encoder = new avro.streams.BlockEncoder(SCHEMA as avro.Schema, { codec, blockSize: 64 });
  encoder.on('data', (c: Buffer) => chunks.push(c));
  await new Promise<void>((resolve, reject) => {
    encoder.on('end', resolve);
    encoder.on('error', reject);
    for (const r of recs) encoder.write(r);
    encoder.end();
  });
  return Buffer.concat(chunks);
}

function decodeAll(bytes: Uint8Array): unknown[] {
  const file = readContainer(bytes, OPTS);
  const out: unknown[] = [];
  for (const b of file.blocks) {
    const buf = Buffer.from(b.data);
    let pos = 0;
    for (let i = 0; i < b.count; i++) {
      const { value, offset } = TYPE.decode(buf, pos);
      out.push(value);
      pos = offset;
    }
  }
  return out;
}

describe('avro container', () => {
  it.each(['null', 'deflate'] as const)('files we write are read by avsc (%s codec)', async (codec) => {
    const got = await avscRead(write(codec));
    expect(got.map((r) => ({ ...(r as object) }))).toEqual(records(3));
  });

  it.each(['null', 'deflate'])('files avsc writes (%s codec, several blocks) are read by us', async (codec) => {
    const recs = records(40);
    const bytes = await avscWrite(codec, recs);
    const file = readContainer(bytes, OPTS);
    expect(file.blocks.length).toBeGreaterThan(1);
    expect(file.codec).toBe(codec);
    expect(decodeAll(bytes).map((r) => ({ ...(r as object) }))).toEqual(recs);
    expect(() => readContainer(bytes, { ...OPTS, requireChecksum: true })).toThrow(/no quiver.crc32/);
  });

  it('keeps the header metadata and is deterministic', () => {
    const a = write('deflate');
    const b = write('deflate');
    expect(Buffer.from(a).equals(Buffer.from(b))).toBe(true);
    const file = readContainer(a, { ...OPTS, requireChecksum: true });
    expect(Buffer.from(file.meta.get('x.note') ?? []).toString()).toBe('hello');
    expect(file.schemaJson).toBe(JSON.stringify(SCHEMA));
  });

  it('refuses every truncation with a ContainerFormatError', () => {
    for (const codec of ['null', 'deflate'] as const) {
      const bytes = write(codec);
      for (let n = 0; n < bytes.length; n++) {
        expect(() => readContainer(bytes.subarray(0, n), { ...OPTS, requireChecksum: true }), `${codec} cut at ${n}`).toThrow(ContainerFormatError);
      }
    }
  });

  it('refuses a flipped bit anywhere with a ContainerFormatError', () => {
    for (const codec of ['null', 'deflate'] as const) {
      const bytes = write(codec);
      const original = readContainer(bytes, OPTS);
      for (let i = 0; i < bytes.length; i++) {
        const bad = bytes.slice();
        bad[i] = bad[i]! ^ (1 << (i % 8));
        let error: unknown;
        try {
          readContainer(bad, { ...OPTS, requireChecksum: true });
        } catch (e) {
          error = e;
        }
        // A flip in the header metadata (schema text, note, key names), in a block's record count (the
        // record decoder catches that) or in deflate's final padding bits may still parse; the checksum
        // guarantees the block data is then exactly what was written.
        if (error === undefined) {
          const file = readContainer(bad, OPTS);
          expect(
            file.blocks.map((b) => Buffer.from(b.data).toString('hex')),
            `${codec} flip at ${i}`,
          ).toEqual(original.blocks.map((b) => Buffer.from(b.data).toString('hex')));
        }
        if (error !== undefined) expect(error, `${codec} flip at ${i}`).toBeInstanceOf(ContainerFormatError);
      }
    }
  });

  it('bounds what a damaged header may declare', () => {
    const bytes = write('null');
    // magic, then a map block count of 2^40 entries
    const huge = Buffer.concat([Buffer.from(bytes.subarray(0, 4)), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x20])]);
    expect(() => readContainer(huge, OPTS)).toThrow(/more metadata entries/);
    expect(() => readContainer(Buffer.from('PK\x03\x04 not avro'), OPTS)).toThrow(/not an Avro object container file/);
    expect(() => readContainer(write('null', records(5)), { ...OPTS, recordsMax: 4 })).toThrow(/declares 5 records/);
    expect(() => readContainer(write('deflate', records(50)), { ...OPTS, bytesMax: 100 })).toThrow(/inflate|exceeds/);
  });
});
