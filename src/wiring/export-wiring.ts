import type { Logger } from 'pino';
import type { Clock } from '../common/clock.js';
import type { Config } from '../common/config.js';
import { parseExportRoots } from '../coord/snapshot/export/export-location.js';
import { SnapshotExporter } from '../coord/snapshot/export/exporter.js';
import { ExternalRestoreService } from '../coord/snapshot/export/import-service.js';
import type { RestoreService } from '../coord/snapshot/restore-service.js';
import type { RestoreHost } from '../coord/snapshot/restore-targets.js';
import type { SnapshotManager } from '../coord/snapshot/snapshot-manager.js';
import type { MetaKV } from '../meta/meta-kv.js';
import { exportHandlers, importInfo } from '../proxy/export-service.js';
import { restoreInfo } from '../proxy/restore-info.js';
import type { Handler } from '../proxy/milvus-service.js';
import type { ObjectStore } from '../storage/object-store.js';

/**
 * Export and restore-external (coord/snapshot/export): built after `RestoreService.init`, because the
 * import reconcile asks the restore jobs which staged bundles are still in use.
 */
export async function wireExports(deps: {
  readonly config: Config;
  readonly dataDir: string;
  readonly host: RestoreHost;
  readonly snapshots: SnapshotManager;
  readonly restores: RestoreService;
  readonly kv: MetaKV;
  readonly store: ObjectStore;
  readonly clock: Clock;
  readonly log: Logger;
}): Promise<{
  exporter: SnapshotExporter;
  imports: ExternalRestoreService;
  handlers(base: Readonly<Record<string, Handler>>): Record<string, Handler>;
  /** `POST /restore-jobs/{id}/cancel`: an external restore still verifying its bundle, else the restore job. */
  cancelRestoreJob(jobId: number): Promise<Record<string, unknown>>;
}> {
  const roots = parseExportRoots(deps.config.exportRoots, deps.dataDir);
  const exporter = new SnapshotExporter({
    snapshots: deps.snapshots,
    store: deps.store,
    clock: deps.clock,
    log: deps.log,
    roots,
    dataDir: deps.dataDir,
    faultFileDelayMs: deps.config.faultExportFileDelayMs,
  });
  const imports = new ExternalRestoreService({
    host: deps.host,
    restores: deps.restores,
    kv: deps.kv,
    store: deps.store,
    clock: deps.clock,
    log: deps.log,
    roots,
    dataDir: deps.dataDir,
    options: { jobTimeoutMs: deps.config.copyJobTimeoutMs, taskRetentionMs: deps.config.copyTaskRetentionMs },
    faultFileDelayMs: deps.config.faultExportFileDelayMs,
  });
  const r = await imports.init();
  if (r.rolledBack + r.stagingRemoved > 0) deps.log.warn(r, 'external restores: rolled back what a crash left');
  const nowMs = () => deps.clock.nowMs();
  return {
    exporter,
    imports,
    handlers: (base) => exportHandlers(exporter, imports, base, nowMs),
    cancelRestoreJob: async (jobId) => {
      const rec = await imports.cancel(jobId);
      return rec ? importInfo({ ...rec, bytesVerified: 0 }, nowMs()) : restoreInfo(await deps.restores.cancel(jobId), nowMs());
    },
  };
}
