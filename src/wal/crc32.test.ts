import { crc32 as zlibCrc32 } from 'node:zlib';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { crc32 } from './crc32.js';
import { maskCrc, payloadChecksum } from './record-format.js';

describe('crc32', () => {
  it('matches the standard check values', () => {
    expect(crc32(new Uint8Array(0))).toBe(0);
    expect(crc32(Buffer.from('123456789'))).toBe(0xcbf43926);
    expect(crc32(Buffer.from('The quick brown fox jumps over the lazy dog'))).toBe(0x414fa339);
  });

  it('agrees with zlib on arbitrary data, lengths and unaligned views', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat(7), (bytes, skip) => {
        const view = bytes.subarray(Math.min(skip, bytes.length));
        expect(crc32(view)).toBe(zlibCrc32(view));
      }),
      { numRuns: 300 },
    );
  });

  it('continues over chunks with a seed', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 100 }), fc.uint8Array({ maxLength: 100 }), (a, b) => {
        expect(crc32(b, crc32(a))).toBe(crc32(Buffer.concat([a, b])));
      }),
    );
  });

  it('masked checksum of an empty payload is not zero, so zero-filled tails never parse', () => {
    expect(maskCrc(0)).not.toBe(0);
    expect(payloadChecksum(new Uint8Array(0))).toBe(0xa282ead8);
  });
});

describe('crc32: native and portable agree', () => {
  it('gives the same checksums and chaining as the portable implementation', async () => {
    const { crc32, crc32Portable } = await import('./crc32.js');
    const data = new Uint8Array(10_007).map((_, i) => (i * 31 + 7) & 0xff);
    expect(crc32(data)).toBe(crc32Portable(data));
    expect(crc32(data.subarray(5000), crc32(data.subarray(0, 5000)))).toBe(crc32Portable(data));
  });
});
