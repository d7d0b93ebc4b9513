/**
 * Micro-benchmark of the filter evaluator (not a test): `npx tsx bench/expr.ts [rows]`.
 * Prints rows/s for a few typical filters over synthetic columns.
 */
import { MapBatch, type Column } from '../src/schema/types.js';
import { compileFilter, type ExprSchema } from '../src/expr/index.js';
import { seededRandom } from '../src/testing/index.js';

function main(): void {
  const numRows = Number(process.argv[2] ?? 1_000_000);
  // Deterministic data, no Math.random, so runs are comparable.
  const next = seededRandom(0x2545f491);
  const int64 = new BigInt64Array(numRows);
  const float = new Float32Array(numRows);
  const int32 = new Int32Array(numRows);
  const str: string[] = new Array<string>(numRows);
  const meta: unknown[] = new Array<unknown>(numRows);
  for (let i = 0; i < numRows; i++) {
    int64[i] = BigInt(Math.floor(next() * 2 ** 40)) * 1000n;
    float[i] = next();
    int32[i] = Math.floor(next() * 1000);
    str[i] = `title-${Math.floor(next() * 100)}`;
    meta[i] = { color: next() < 0.5 ? 'red' : 'blue', n: i % 10 };
  }
  const batch = new MapBatch(
    numRows,
    new Map<string, Column>([
      ['int64', { kind: 'int64', data: int64 }],
      ['float', { kind: 'float', data: float }],
      ['int32', { kind: 'int32', data: int32 }],
      ['title', { kind: 'string', data: str }],
      ['$meta', { kind: 'json', data: meta }],
    ]),
  );
  const schema: ExprSchema = {
    dynamicField: true,
    fields: [
      { name: 'int64', dataType: 'Int64', nullable: false, isPrimaryKey: true },
      { name: 'float', dataType: 'Float', nullable: false, isPrimaryKey: false },
      { name: 'int32', dataType: 'Int32', nullable: false, isPrimaryKey: false },
      { name: 'title', dataType: 'VarChar', nullable: false, isPrimaryKey: false },
    ],
  };
  const filters = [
    'int64 > 549755813888000',
    'float < 0.25',
    'int64 > 549755813888000 and float < 0.25',
    'int32 in [1, 5, 9, 500, 999] or int32 % 7 == 0',
    '100 <= int32 < 200',
    'title like "title-1%"',
    'int64 in [1000, 2000, 3000]',
    'color == "red" and n > 5',
  ];
  for (const text of filters) {
    const compiled = compileFilter(text, schema);
    if (compiled === null) continue;
    let matched = 0;
    for (let w = 0; w < 3; w++) matched = compiled.evaluate(batch).reduce((a, b) => a + b, 0);
    const iterations = text.includes('color') ? 3 : 10;
    const start = performance.now();
    for (let i = 0; i < iterations; i++) compiled.evaluate(batch);
    const elapsedMs = (performance.now() - start) / iterations;
    const rowsPerSec = numRows / (elapsedMs / 1000);
    console.log(`${text.padEnd(52)} ${elapsedMs.toFixed(2).padStart(8)} ms  ${(rowsPerSec / 1e6).toFixed(1).padStart(7)} M rows/s  (${matched} match)`);
  }
}

main();
