import { z } from 'zod';

/** Server configuration: flags > environment (QUIVER_*) > defaults. Validated once at startup. */
export const ConfigSchema = z.object({
  host: z.string().default('127.0.0.1'),
  port: z.coerce.number().int().min(0).max(65535).default(19530),
  metricsPort: z.coerce.number().int().min(0).max(65535).default(9091),
  /** The RESTful API v2 port (its own: grpc-js cannot share an HTTP/2 port with an HTTP/1.1 server); 0 = any free port. */
  httpPort: z.coerce.number().int().min(0).max(65535).default(19531),
  /** Largest REST request body; a larger one is refused before it is read. */
  httpBodyMaxBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(64 * 1024 * 1024),
  dataDir: z.string().default('./data'),
  /** Metadata backend URL: 'sqlite' (<dataDir>/meta.db) or 'etcd://HOST:PORT[,HOST:PORT...][/ROOT]' (meta/open-meta.ts). */
  meta: z.string().default('sqlite'),
  /** Object store URL: 'local' (<dataDir>/objects) or 's3://BUCKET[/PREFIX]' (storage/open-store.ts). */
  storage: z.string().default('local'),
  /** S3-compatible endpoint (MinIO, ...; path-style); unset = AWS S3. Credentials and region: the AWS chain. */
  s3Endpoint: z.string().url().optional(),
  /** Bound of the local disk cache of segment and index files read from or written to S3 (<dataDir>/s3-cache); 0 = no cache. */
  s3CacheMaxBytes: z.coerce
    .number()
    .int()
    .min(0)
    .default(8 * 1024 ** 3),
  /** etcd user authentication (both or neither). */
  etcdUsername: z.string().min(1).optional(),
  etcdPassword: z.string().optional(),
  /** TLS to etcd: CA file (turns on https), and a client certificate and key if etcd requires one. */
  etcdCaFile: z.string().min(1).optional(),
  etcdCertFile: z.string().min(1).optional(),
  etcdKeyFile: z.string().min(1).optional(),
  walFsync: z.enum(['always', 'batch', 'none']).default('always'),
  maxMessageBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(512 * 1024 * 1024),
  sealRows: z.coerce.number().int().min(1).default(200_000),
  /** Bulk import jobs that run at once; more wait Pending. */
  importJobsMax: z.coerce.number().int().min(1).max(64).default(2),
  /** Native threads per index build; unset = every core (os.availableParallelism()). */
  indexBuildThreads: z.coerce.number().int().min(1).max(1024).optional(),
  sealBytes: z.coerce
    .number()
    .int()
    .min(1024)
    .default(256 * 1024 * 1024),
  flushIdleMs: z.coerce.number().int().min(100).default(60_000),
  backgroundIntervalMs: z.coerce.number().int().min(10).default(1000),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  autoCompaction: z.preprocess((v) => (typeof v === 'string' ? v !== 'false' && v !== '0' : v), z.boolean()).default(true),
  compactionDeleteRatio: z.coerce.number().min(0.01).max(1).default(0.2),
  gcIntervalMs: z.coerce.number().int().min(10).default(30_000),
  gcDroppedGraceMs: z.coerce
    .number()
    .int()
    .min(0)
    .default(10 * 60_000),
  gcOrphanGraceMs: z.coerce
    .number()
    .int()
    .min(0)
    .default(24 * 3600_000),
  snapshotPendingTimeoutMs: z.coerce
    .number()
    .int()
    .min(0)
    .default(60 * 60_000),
  copyCheckIntervalMs: z.coerce.number().int().min(10).default(2000),
  copyMaxSegmentsPerTask: z.coerce.number().int().min(1).default(100),
  copyTaskRetentionMs: z.coerce
    .number()
    .int()
    .min(0)
    .default(3 * 3600_000),
  copyJobTimeoutMs: z.coerce
    .number()
    .int()
    .min(1000)
    .default(24 * 3600_000),
  /** Test-only fault injection (crash tests): see SnapshotOptions.faultPauseBeforeCommitMs. */
  faultSnapshotPauseMs: z.coerce.number().int().min(0).default(0),
  /** Test-only fault injection (crash tests): see RestoreFaults.faultPauseBeforeStartCommitMs. */
  faultRestoreStartPauseMs: z.coerce.number().int().min(0).default(0),
  /** Test-only fault injection (crash tests): every copy of a restore waits this long first. */
  faultCopyDelayMs: z.coerce.number().int().min(0).default(0),
  /**
   * Test-only fault injection (crash tests): the restore checker waits `faultRestorePauseMs` before the
   * side effect of this job state (Pending: register; Publishing: publish; RollingBack: rollback), so a
   * kill -9 can land in that phase. Empty: off.
   */
  faultRestorePauseState: z.enum(['', 'Pending', 'Publishing', 'RollingBack']).default(''),
  faultRestorePauseMs: z.coerce.number().int().min(0).default(0),
  /** Lease of one restore publish/rollback attempt: a crashed attempt is resumed after it. */
  copyFinalizeLeaseMs: z.coerce
    .number()
    .int()
    .min(100)
    .default(5 * 60_000),
  /** Object copies: hardlinks (default) or forced byte copies. */
  copyMode: z.enum(['link', 'copy']).default('link'),
  /**
   * Copy-task slots of the data node inside `quiver serve` (the embedded default). 0: run no tasks here,
   * only on `quiver datanode` processes registered in etcd (needs --meta etcd://...).
   */
  datanodeSlots: z.coerce.number().int().min(0).max(1024).default(4),
  /** Index-build / compaction-merge tasks on data nodes: one run's limit, the whole job's, re-dispatches before failing. */
  nodeTaskTimeoutMs: z.coerce
    .number()
    .int()
    .min(1)
    .default(30 * 60_000),
  nodeJobTimeoutMs: z.coerce
    .number()
    .int()
    .min(1)
    .default(6 * 3600_000),
  nodeTaskAttemptsMax: z.coerce.number().int().min(1).max(100).default(3),
  /** Where ExportSnapshot may write and RestoreExternalSnapshot read: comma-separated dirs and s3://bucket/prefix; '' = <dataDir>/exports. */
  exportRoots: z.string().default(''),
  /** Test-only fault injection (crash tests): every file an export or an external restore reads waits this long first. */
  faultExportFileDelayMs: z.coerce.number().int().min(0).default(0),
  /** Authentication on every gRPC call (users, passwords, API keys). Off by default, as in Milvus. */
  // 'true'/'1' or 'false'/'0'; anything else is refused rather than read as off.
  auth: z.preprocess((v) => (v === 'true' || v === '1' ? true : v === 'false' || v === '0' ? false : v), z.boolean()).default(false),
  /** The first root password (only used while no root user is stored). Env only: a flag would show in `ps`. */
  rootPassword: z.string().optional(),
  /** A file holding the first root password (trailing newline ignored). */
  rootPasswordFile: z.string().min(1).optional(),
  /** Failed logins per user and address before a lockout; the lockout then doubles up to 15 min. */
  authFailuresFree: z.coerce.number().int().min(1).max(1000).default(5),
  authLockoutMs: z.coerce.number().int().min(0).default(30_000),
  /** TLS on the gRPC port: certificate and key (both or neither); with a CA, mutual TLS (client certificates required). */
  tlsCert: z.string().min(1).optional(),
  tlsKey: z.string().min(1).optional(),
  tlsCa: z.string().min(1).optional(),
});

export interface TlsConfig {
  readonly certFile: string;
  readonly keyFile: string;
  /** Set: mutual TLS, clients must present a certificate this CA signed. */
  readonly caFile?: string | undefined;
}

export type Config = z.infer<typeof ConfigSchema> & {
  /** From tlsCert/tlsKey/tlsCa; undefined = plaintext gRPC. */
  readonly tls?: TlsConfig | undefined;
};

const ENV: Record<keyof z.infer<typeof ConfigSchema>, string> = {
  host: 'QUIVER_HOST',
  port: 'QUIVER_PORT',
  metricsPort: 'QUIVER_METRICS_PORT',
  httpPort: 'QUIVER_HTTP_PORT',
  httpBodyMaxBytes: 'QUIVER_HTTP_BODY_MAX_BYTES',
  dataDir: 'QUIVER_DATA_DIR',
  meta: 'QUIVER_META',
  storage: 'QUIVER_STORAGE',
  s3Endpoint: 'QUIVER_S3_ENDPOINT',
  s3CacheMaxBytes: 'QUIVER_S3_CACHE_MAX_BYTES',
  etcdUsername: 'QUIVER_ETCD_USERNAME',
  etcdPassword: 'QUIVER_ETCD_PASSWORD',
  etcdCaFile: 'QUIVER_ETCD_CA_FILE',
  etcdCertFile: 'QUIVER_ETCD_CERT_FILE',
  etcdKeyFile: 'QUIVER_ETCD_KEY_FILE',
  walFsync: 'QUIVER_WAL_FSYNC',
  maxMessageBytes: 'QUIVER_MAX_MESSAGE_BYTES',
  sealRows: 'QUIVER_SEAL_ROWS',
  importJobsMax: 'QUIVER_IMPORT_JOBS_MAX',
  indexBuildThreads: 'QUIVER_INDEX_BUILD_THREADS',
  sealBytes: 'QUIVER_SEAL_BYTES',
  flushIdleMs: 'QUIVER_FLUSH_IDLE_MS',
  backgroundIntervalMs: 'QUIVER_BACKGROUND_INTERVAL_MS',
  logLevel: 'QUIVER_LOG_LEVEL',
  autoCompaction: 'QUIVER_AUTO_COMPACTION',
  compactionDeleteRatio: 'QUIVER_COMPACTION_DELETE_RATIO',
  gcIntervalMs: 'QUIVER_GC_INTERVAL_MS',
  gcDroppedGraceMs: 'QUIVER_GC_DROPPED_GRACE_MS',
  gcOrphanGraceMs: 'QUIVER_GC_ORPHAN_GRACE_MS',
  snapshotPendingTimeoutMs: 'QUIVER_SNAPSHOT_PENDING_TIMEOUT_MS',
  copyCheckIntervalMs: 'QUIVER_COPY_CHECK_INTERVAL_MS',
  copyMaxSegmentsPerTask: 'QUIVER_COPY_MAX_SEGMENTS_PER_TASK',
  copyTaskRetentionMs: 'QUIVER_COPY_TASK_RETENTION_MS',
  copyJobTimeoutMs: 'QUIVER_COPY_JOB_TIMEOUT_MS',
  nodeTaskTimeoutMs: 'QUIVER_NODE_TASK_TIMEOUT_MS',
  nodeJobTimeoutMs: 'QUIVER_NODE_JOB_TIMEOUT_MS',
  nodeTaskAttemptsMax: 'QUIVER_NODE_TASK_ATTEMPTS_MAX',
  faultSnapshotPauseMs: 'QUIVER_FAULT_SNAPSHOT_PAUSE_MS',
  faultRestoreStartPauseMs: 'QUIVER_FAULT_RESTORE_START_PAUSE_MS',
  faultCopyDelayMs: 'QUIVER_FAULT_COPY_DELAY_MS',
  faultRestorePauseState: 'QUIVER_FAULT_RESTORE_PAUSE_STATE',
  faultRestorePauseMs: 'QUIVER_FAULT_RESTORE_PAUSE_MS',
  copyFinalizeLeaseMs: 'QUIVER_COPY_FINALIZE_LEASE_MS',
  copyMode: 'QUIVER_COPY_MODE',
  datanodeSlots: 'QUIVER_DATANODE_SLOTS',
  exportRoots: 'QUIVER_EXPORT_ROOTS',
  faultExportFileDelayMs: 'QUIVER_FAULT_EXPORT_FILE_DELAY_MS',
  auth: 'QUIVER_AUTH',
  rootPassword: 'QUIVER_ROOT_PASSWORD',
  rootPasswordFile: 'QUIVER_ROOT_PASSWORD_FILE',
  authFailuresFree: 'QUIVER_AUTH_FAILURES_FREE',
  authLockoutMs: 'QUIVER_AUTH_LOCKOUT_MS',
  tlsCert: 'QUIVER_TLS_CERT',
  tlsKey: 'QUIVER_TLS_KEY',
  tlsCa: 'QUIVER_TLS_CA',
};

export function loadConfig(flags: Partial<Record<keyof Config, unknown>>, env: NodeJS.ProcessEnv = process.env): Config {
  const merged: Record<string, unknown> = {};
  for (const [key, envName] of Object.entries(ENV)) {
    const v = flags[key as keyof Config] ?? env[envName];
    if (v !== undefined) merged[key] = v;
  }
  const parsed = ConfigSchema.refine((c) => (c.etcdUsername === undefined) === (c.etcdPassword === undefined), {
    message: 'give both --etcd-username and --etcd-password (or QUIVER_ETCD_USERNAME and QUIVER_ETCD_PASSWORD), or neither',
    path: ['etcdUsername'],
  })
    .refine((c) => (c.etcdCertFile === undefined) === (c.etcdKeyFile === undefined), {
      message: 'give both --etcd-cert-file and --etcd-key-file, or neither',
      path: ['etcdCertFile'],
    })
    .refine((c) => c.etcdCertFile === undefined || c.etcdCaFile !== undefined, {
      message: 'a client certificate needs --etcd-ca-file',
      path: ['etcdCaFile'],
    })
    .refine((c) => (c.tlsCert === undefined) === (c.tlsKey === undefined), {
      message: 'give both --tls-cert and --tls-key (or QUIVER_TLS_CERT and QUIVER_TLS_KEY), or neither',
      path: ['tlsCert'],
    })
    .refine((c) => c.tlsCa === undefined || c.tlsCert !== undefined, {
      message: 'mutual TLS (--tls-ca) needs the server certificate too: give --tls-cert and --tls-key',
      path: ['tlsCa'],
    })
    .refine((c) => c.rootPassword === undefined || c.rootPasswordFile === undefined, {
      message: 'give QUIVER_ROOT_PASSWORD or --root-password-file, not both',
      path: ['rootPasswordFile'],
    })
    .safeParse(merged);
  if (!parsed.success) {
    // Never echo a rejected value: zod's messages name the rule, and a password must not reach a terminal or a log.
    const msg = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new Error(`invalid configuration: ${msg}`);
  }
  const c = parsed.data;
  const tls = c.tlsCert !== undefined && c.tlsKey !== undefined ? { certFile: c.tlsCert, keyFile: c.tlsKey, caFile: c.tlsCa } : undefined;
  return { ...c, tls };
}
