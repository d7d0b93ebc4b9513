import { readdir } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';

/**
 * What a server left in its data dir, read from the outside (the tests that spawn a server process do
 * not reach into it). Keys follow the object layout of README/DESIGN §3: `insert_log/{collection}/...`.
 */

/** Every object key under `<dataDir>/objects/` (temp files of puts in progress excluded), sorted. */
export async function objectKeys(dataDir: string, prefix = ''): Promise<string[]> {
  const root = join(dataDir, 'objects');
  const out: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      if (e.name.startsWith('.')) continue; // .quiver-tmp/: puts in progress, invisible to readers
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(relative(root, p).split(sep).join('/'));
    }
  };
  await walk(join(root, prefix));
  return out.sort();
}

/** Keys of the segment files of one collection: binlogs, deltalogs, stats logs (index files carry no collection id). */
export async function collectionFileKeys(dataDir: string, collectionId: number): Promise<string[]> {
  const out: string[] = [];
  for (const root of ['insert_log', 'delta_log', 'stats_log']) out.push(...(await objectKeys(dataDir, `${root}/${collectionId}`)));
  return out.sort();
}

/** Collection ids owning segment files under objects/. */
export async function collectionDirs(dataDir: string): Promise<number[]> {
  const out = new Set<number>();
  for (const root of ['insert_log', 'delta_log', 'stats_log']) {
    for (const name of await readdir(join(dataDir, 'objects', root)).catch(() => [] as string[])) out.add(Number(name));
  }
  return [...out].sort((a, b) => a - b);
}

/** Partition ids owning index files (`index_files/{build}/{version}/{partition}/...`). */
export async function indexFilePartitions(dataDir: string): Promise<number[]> {
  const out = new Set<number>();
  const root = join(dataDir, 'objects', 'index_files');
  for (const build of await readdir(root).catch(() => [] as string[])) {
    for (const version of await readdir(join(root, build)).catch(() => [] as string[])) {
      for (const partition of await readdir(join(root, build, version)).catch(() => [] as string[])) out.add(Number(partition));
    }
  }
  return [...out].sort((a, b) => a - b);
}
