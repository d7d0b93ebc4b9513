import { cpus, totalmem } from 'node:os';
import { seededRandom } from '../src/testing/index.js';

function gauss(r: () => number): number {
  const u = Math.max(r(), 1e-12);
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r());
}

/**
 * Embedding-like clustered data: `clusters` gaussian centres in a `latent`-dimensional space, points around
 * them (spread 0.35), mapped into `dim` dimensions by one fixed random projection, plus small isotropic
 * noise (0.02). Real embeddings have a low intrinsic dimension; pure high-dimensional gaussian blobs do not,
 * and make every approximate index look worse than it will on real data. Same seed → same data.
 */
export function clustered(n: number, dim: number, seed = 42, clusters = 100, latent = 24): Float32Array {
  const proj = seededRandom(0xc0ffee);
  const projection = new Float32Array(latent * dim);
  for (let i = 0; i < projection.length; i++) projection[i] = gauss(proj) / Math.sqrt(latent);
  const cr = seededRandom(0xbeef);
  const centres = new Float32Array(clusters * latent);
  for (let i = 0; i < centres.length; i++) centres[i] = gauss(cr);
  const r = seededRandom(seed);
  const out = new Float32Array(n * dim);
  const z = new Float32Array(latent);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * clusters);
    for (let l = 0; l < latent; l++) z[l] = centres[c * latent + l]! + 0.35 * gauss(r);
    for (let j = 0; j < dim; j++) {
      let x = 0;
      for (let l = 0; l < latent; l++) x += z[l]! * projection[l * dim + j]!;
      out[i * dim + j] = x + 0.02 * gauss(r);
    }
  }
  return out;
}

export function rowsOf(data: Float32Array, dim: number, from: number, to: number): number[][] {
  const out: number[][] = [];
  for (let i = from; i < to; i++) out.push(Array.from(data.subarray(i * dim, (i + 1) * dim)));
  return out;
}

export function machine(): string {
  const c = cpus();
  return `${c[0]?.model ?? 'unknown cpu'} x${c.length}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, node ${process.version}`;
}

export function table(title: string, rows: Record<string, string | number>[]): void {
  console.log(`\n## ${title}\n`);
  if (rows.length === 0) return;
  const cols = Object.keys(rows[0]!);
  console.log(`| ${cols.join(' | ')} |`);
  console.log(`| ${cols.map(() => '---').join(' | ')} |`);
  for (const r of rows) console.log(`| ${cols.map((c) => String(r[c])).join(' | ')} |`);
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export const envInt = (name: string, def: number): number => (process.env[name] ? Number(process.env[name]) : def);
