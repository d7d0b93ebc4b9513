import type { IncomingMessage, ServerResponse } from 'node:http';
import { Gauge, type Registry } from 'prom-client';
import type { CollectionUsage } from '../coord/snapshot/accounting.js';
import type { NamedDiff } from '../coord/snapshot/diff.js';
import { DEFAULT_DB } from '../coord/types.js';
import { statusOf } from './status.js';

/**
 * What the Milvus protocol has no message for, on the HTTP (metrics) port, as `POST /restore-jobs/{id}/cancel`:
 *   GET /snapshots/usage?db=D&collection=C          bytes each snapshot references and keeps alive alone (JSON)
 *   GET /snapshots/diff?db=D&collection=C&from=A&to=B  row-level diff (B may be "now"): JSON lines, the
 *       first line the summary, then one `{"op","pk"}` per changed primary key
 * DescribeSnapshotResponse has no field for sizes (and `description` is the user's), so `quiver snapshot
 * list/describe` read the bytes here. Errors answer `{code, reason}` with the Milvus code.
 */

export interface SnapshotInsightsDeps {
  usage(dbName: string, collectionName: string): Promise<CollectionUsage & { readonly collectionId: number }>;
  diff(dbName: string, collectionName: string, from: string, to: string): Promise<NamedDiff>;
}

/** An Int64 pk as a JSON number while it is exact, else as a string; VarChar pks as strings. */
export function pkJson(pk: bigint | string): number | string {
  if (typeof pk === 'string') return pk;
  const n = Number(pk);
  return Number.isSafeInteger(n) ? n : pk.toString();
}

/** Serves the routes above; false when the request is not one of them. */
export function snapshotInsightRoutes(deps: SnapshotInsightsDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname !== '/snapshots/usage' && url.pathname !== '/snapshots/diff') return false;
    if (req.method !== 'GET') {
      res.writeHead(405, { allow: 'GET' });
      res.end('method not allowed');
      return true;
    }
    const q = (k: string) => url.searchParams.get(k) ?? '';
    const db = q('db') || DEFAULT_DB;
    const fail = (err: unknown) => {
      const s = statusOf(err);
      // 404 for a missing collection (100) or snapshot (2600), 400 for bad parameters.
      const http = s.code === 100 || s.code === 2600 ? 404 : s.code === 1100 || s.code === 1101 ? 400 : 500;
      res.writeHead(http, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ code: s.code, reason: s.reason }));
    };
    if (url.pathname === '/snapshots/usage') {
      deps.usage(db, q('collection')).then((u) => {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            db,
            collection: q('collection'),
            collection_id: u.collectionId,
            live_bytes: u.liveBytes,
            snapshot_only_bytes: u.snapshotOnlyBytes,
            snapshots: u.snapshots.map((s) => ({
              name: s.name,
              created_at_ms: s.createdAtMs,
              referenced_bytes: s.referencedBytes,
              exclusive_bytes: s.exclusiveBytes,
            })),
          }),
        );
      }, fail);
      return true;
    }
    deps.diff(db, q('collection'), q('from'), q('to')).then((d) => {
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      const summary = {
        from: d.from,
        to: d.to,
        inserted: d.inserted,
        deleted: d.deleted,
        updated: d.updated,
        segments_read: d.segmentsRead,
        segments_skipped: d.segmentsSkipped,
        deltalogs_read: d.deltalogsRead,
      };
      // Written in slices so a large diff does not build one huge string.
      const lines = [JSON.stringify(summary)];
      const flush = () => {
        res.write(lines.join('\n') + '\n');
        lines.length = 0;
      };
      for (const c of d.changes) {
        lines.push(JSON.stringify({ op: c.op, pk: pkJson(c.pk) }));
        if (lines.length >= 4096) flush();
      }
      flush();
      res.end();
    }, fail);
    return true;
  };
}

/**
 * Gauges computed at scrape time: per snapshot the bytes it references and the bytes only it keeps alive,
 * per collection the bytes only snapshots keep alive.
 */
export function registerSnapshotUsageMetrics(
  registry: Registry,
  deps: {
    collections(): Promise<readonly { readonly id: number; readonly db: string; readonly name: string }[]>;
    usage(collectionId: number): Promise<CollectionUsage>;
  },
): void {
  let inFlight: Promise<{ id: number; db: string; name: string; u: CollectionUsage }[]> | undefined;
  // One computation per scrape shared by the three gauges (prom-client runs their collects concurrently).
  const all = () =>
    (inFlight ??= (async () => {
      const out = [];
      for (const c of await deps.collections()) out.push({ ...c, u: await deps.usage(c.id) });
      return out;
    })().finally(() => (inFlight = undefined)));
  const snapLabels = ['db', 'collection', 'collection_id', 'snapshot'] as const;
  const perSnapshot = (name: string, help: string, pick: (s: CollectionUsage['snapshots'][number]) => number) =>
    new Gauge({
      name,
      help,
      labelNames: snapLabels,
      registers: [registry],
      async collect() {
        const rows = await all();
        this.reset();
        for (const r of rows) {
          for (const s of r.u.snapshots) this.set({ db: r.db, collection: r.name, collection_id: String(r.id), snapshot: s.name }, pick(s));
        }
      },
    });
  perSnapshot('quiver_snapshot_bytes_referenced', 'Bytes of the segment files a snapshot references', (s) => s.referencedBytes);
  perSnapshot(
    'quiver_snapshot_bytes_exclusive',
    'Bytes only this snapshot keeps alive: what dropping it lets GC free (files neither the live collection nor another snapshot names)',
    (s) => s.exclusiveBytes,
  );
  new Gauge({
    name: 'quiver_collection_snapshot_only_bytes',
    help: 'Bytes of a collection kept alive by its snapshots alone (not named by the live collection)',
    labelNames: ['db', 'collection', 'collection_id'],
    registers: [registry],
    async collect() {
      const rows = await all();
      this.reset();
      for (const r of rows) this.set({ db: r.db, collection: r.name, collection_id: String(r.id) }, r.u.snapshotOnlyBytes);
    },
  });
}
