#!/usr/bin/env node
import { Command, InvalidArgumentError } from 'commander';
import { loadConfig } from '../common/config.js';
import { clientAccess, withAccessOptions, withCredentialOptions, type AccessOpts, type ClientAccess } from './client-access.js';
import { startServer } from '../wiring/server.js';
import type { ExitCode, SnapshotCommands } from './snapshot-commands.js';

/** The version a data node registers in its session. */
const QUIVER_VERSION = '0.1.0';

const program = new Command();
program.name('quiver').description('Quiver: a Milvus-compatible vector database with collection snapshots');

program
  .command('serve')
  .description('serve the Milvus gRPC protocol (embedded data dir by default; metadata in etcd and files in S3 by URL)')
  .option('--host <host>', 'bind address (env QUIVER_HOST)')
  .option('--port <port>', 'gRPC port (env QUIVER_PORT)')
  .option('--metrics-port <port>', 'HTTP port for /metrics and /healthz (env QUIVER_METRICS_PORT)')
  .option('--http-port <port>', 'RESTful API v2 port, default 19531; 0 = any free port (env QUIVER_HTTP_PORT)')
  .option('--http-body-max-bytes <n>', 'largest REST request body, default 64 MiB (env QUIVER_HTTP_BODY_MAX_BYTES)')
  .option('--data-dir <dir>', 'data directory; with etcd + S3 it holds only the WAL (env QUIVER_DATA_DIR)')
  .option('--meta <url>', "metadata: 'sqlite' (default) or 'etcd://HOST:PORT[,HOST:PORT...][/ROOT]' (env QUIVER_META)")
  .option('--storage <url>', "files: 'local' (default) or 's3://BUCKET[/PREFIX]' (env QUIVER_STORAGE; AWS credential chain)")
  .option('--s3-endpoint <url>', 'S3-compatible endpoint, e.g. http://127.0.0.1:9000 (path-style; env QUIVER_S3_ENDPOINT)')
  .option('--s3-cache-max-bytes <n>', 'local disk cache of S3 segment and index files, in bytes; 0 = off (env QUIVER_S3_CACHE_MAX_BYTES)')
  .option('--etcd-username <name>', 'etcd user (env QUIVER_ETCD_USERNAME)')
  .option('--etcd-password <password>', 'etcd password (env QUIVER_ETCD_PASSWORD)')
  .option('--etcd-ca-file <path>', 'CA certificate: talk TLS to etcd (env QUIVER_ETCD_CA_FILE)')
  .option('--etcd-cert-file <path>', 'client certificate for etcd (env QUIVER_ETCD_CERT_FILE)')
  .option('--etcd-key-file <path>', 'client key for etcd (env QUIVER_ETCD_KEY_FILE)')
  .option('--wal-fsync <policy>', 'always | batch | none (env QUIVER_WAL_FSYNC)')
  .option('--log-level <level>', 'pino log level (env QUIVER_LOG_LEVEL)')
  .option('--index-build-threads <n>', 'threads per index build, default every core (env QUIVER_INDEX_BUILD_THREADS)')
  .option(
    '--datanode-slots <n>',
    'copy-task slots of the in-process data node; 0 = only registered `quiver datanode` processes (env QUIVER_DATANODE_SLOTS)',
  )
  .option('--auth', 'require credentials on every call: users and passwords, API keys (env QUIVER_AUTH=true)')
  .option('--root-password-file <path>', 'first root password, read from a file (or env QUIVER_ROOT_PASSWORD); needed once, with --auth')
  .option('--tls-cert <path>', 'TLS certificate of the gRPC port (env QUIVER_TLS_CERT)')
  .option('--tls-key <path>', 'TLS private key of the gRPC port (env QUIVER_TLS_KEY)')
  .option('--tls-ca <path>', 'CA of client certificates: mutual TLS, clients without one are refused (env QUIVER_TLS_CA)')
  .action(async (opts: Record<string, string | undefined>) => {
    const config = loadConfig({
      auth: opts['auth'],
      rootPasswordFile: opts['rootPasswordFile'],
      tlsCert: opts['tlsCert'],
      tlsKey: opts['tlsKey'],
      tlsCa: opts['tlsCa'],
      host: opts['host'],
      port: opts['port'],
      metricsPort: opts['metricsPort'],
      httpPort: opts['httpPort'],
      httpBodyMaxBytes: opts['httpBodyMaxBytes'],
      dataDir: opts['dataDir'],
      meta: opts['meta'],
      storage: opts['storage'],
      s3Endpoint: opts['s3Endpoint'],
      s3CacheMaxBytes: opts['s3CacheMaxBytes'],
      etcdUsername: opts['etcdUsername'],
      etcdPassword: opts['etcdPassword'],
      etcdCaFile: opts['etcdCaFile'],
      etcdCertFile: opts['etcdCertFile'],
      etcdKeyFile: opts['etcdKeyFile'],
      walFsync: opts['walFsync'],
      logLevel: opts['logLevel'],
      indexBuildThreads: opts['indexBuildThreads'],
      datanodeSlots: opts['datanodeSlots'],
    });
    const server = await startServer(config);
    let stopping = false;
    // Graceful: new calls are refused, calls in flight finish, background work (flushes, index builds,
    // restore checks) is awaited, then the stores close. A second signal while that runs forces the exit.
    const stop = async (signal: string) => {
      if (stopping) {
        server.log.warn({ signal }, 'second signal: exiting without waiting for the shutdown to finish');
        process.exit(1);
      }
      stopping = true;
      server.log.info({ signal }, 'shutting down');
      try {
        await server.close();
      } catch (err) {
        server.log.error({ err }, 'shutdown failed');
        process.exit(1);
      }
      server.log.info('stopped');
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  });

// ------------------------------------------------------------------ quiver datanode

program
  .command('datanode')
  .description('run a data node: copy tasks of restores, dispatched by `quiver serve` through the sessions in etcd')
  .requiredOption('--meta <url>', "the cluster's etcd: 'etcd://HOST:PORT[,HOST:PORT...][/ROOT]' (env QUIVER_META)", process.env['QUIVER_META'])
  .requiredOption(
    '--storage <url>',
    "the cluster's files: 's3://BUCKET[/PREFIX]' or a shared local dir (env QUIVER_STORAGE)",
    process.env['QUIVER_STORAGE'],
  )
  .option('--s3-endpoint <url>', 'S3-compatible endpoint (env QUIVER_S3_ENDPOINT)', process.env['QUIVER_S3_ENDPOINT'])
  .option('--host <host>', 'bind address, and the address the coordinator dials', '127.0.0.1')
  .option('--port <port>', 'task gRPC port (0: any free port)', nonNegativeInt('--port'), 0)
  .option('--metrics-port <port>', 'HTTP port for /metrics and /healthz (0: any free port)', nonNegativeInt('--metrics-port'), 0)
  .option('--slots <n>', 'tasks run at once', nonNegativeInt('--slots'), 4)
  .option(
    '--session-ttl-ms <ms>',
    'session lease TTL: the node counts as lost this long after it stops renewing',
    nonNegativeInt('--session-ttl-ms'),
    10_000,
  )
  .option('--copy-mode <mode>', "local storage only: 'link' (hardlinks) or 'copy' (byte copies)", 'link')
  .option(
    '--index-build-threads <n>',
    'threads per index build, default every core (env QUIVER_INDEX_BUILD_THREADS)',
    process.env['QUIVER_INDEX_BUILD_THREADS'],
  )
  .option('--log-level <level>', 'pino log level', process.env['QUIVER_LOG_LEVEL'] ?? 'info')
  .action(
    async (o: {
      indexBuildThreads?: string;
      meta: string;
      storage: string;
      s3Endpoint?: string;
      host: string;
      port: number;
      metricsPort: number;
      slots: number;
      sessionTtlMs: number;
      copyMode: string;
      logLevel: string;
    }) => {
      if (o.slots <= 0) throw new InvalidArgumentError('--slots must be at least 1');
      if (o.copyMode !== 'link' && o.copyMode !== 'copy') throw new InvalidArgumentError(`--copy-mode must be 'link' or 'copy', got "${o.copyMode}"`);
      const buildThreads = o.indexBuildThreads === undefined ? undefined : Number(o.indexBuildThreads);
      if (buildThreads !== undefined && (!Number.isInteger(buildThreads) || buildThreads < 1)) {
        throw new InvalidArgumentError(`--index-build-threads must be an integer >= 1, got "${o.indexBuildThreads}"`);
      }
      const { startDataNode } = await import('../wiring/datanode.js');
      const { openDataNodeSessions } = await import('../wiring/cluster.js');
      const { delayedCopies, etcdOptions } = await import('../wiring/server.js');
      const faultCopyDelayMs = Number(process.env['QUIVER_FAULT_COPY_DELAY_MS'] ?? 0) || 0;
      // etcd auth and TLS as `quiver serve` takes them (the QUIVER_ETCD_* environment).
      const env = process.env;
      const etcd = await etcdOptions({
        etcdUsername: env['QUIVER_ETCD_USERNAME'] || undefined,
        etcdPassword: env['QUIVER_ETCD_PASSWORD'],
        etcdCaFile: env['QUIVER_ETCD_CA_FILE'] || undefined,
        etcdCertFile: env['QUIVER_ETCD_CERT_FILE'] || undefined,
        etcdKeyFile: env['QUIVER_ETCD_KEY_FILE'] || undefined,
      });
      const sessions = await openDataNodeSessions(o.meta, etcd);
      const node = await startDataNode(
        {
          host: o.host,
          port: o.port,
          metricsPort: o.metricsPort,
          storage: o.storage,
          s3Endpoint: o.s3Endpoint,
          copyMode: o.copyMode,
          slots: o.slots,
          sessionTtlMs: o.sessionTtlMs,
          indexBuildThreads: buildThreads,
          version: QUIVER_VERSION,
          logLevel: o.logLevel,
        },
        {
          sessions,
          meta: sessions.meta,
          // Test-only fault injection (cluster tests): every copy waits this long, so a test can act mid-restore.
          wrapStore: faultCopyDelayMs > 0 ? (store) => delayedCopies(store, faultCopyDelayMs) : undefined,
        },
      );
      // A lost session is final: this node's tasks run elsewhere now; a supervisor restarts it as a new node.
      void node.lost.then((reason) => {
        node.log.error({ nodeId: node.nodeId }, `${reason}: exiting`);
        process.exit(3);
      });
      let stopping = false;
      const stop = async (signal: string) => {
        if (stopping) process.exit(1);
        stopping = true;
        node.log.info({ signal, nodeId: node.nodeId }, 'data node shutting down (deregistering)');
        try {
          await node.close();
        } catch (err) {
          node.log.error({ err }, 'shutdown failed');
          process.exit(1);
        }
        node.log.info('stopped');
        process.exit(0);
      };
      process.on('SIGINT', () => void stop('SIGINT'));
      process.on('SIGTERM', () => void stop('SIGTERM'));
    },
  );

// ------------------------------------------------------------------ quiver snapshot ...

interface CommonOpts extends AccessOpts {
  readonly address: string;
  readonly db: string;
}

const addressDefault = process.env['QUIVER_ADDRESS'] || '127.0.0.1:19530';

function withCommon(cmd: Command): Command {
  return withAccessOptions(
    cmd.option('--address <host:port>', 'server address (env QUIVER_ADDRESS)', addressDefault).option('--db <name>', 'database', 'default'),
  );
}

function nonNegativeInt(flag: string): (value: string) => number {
  return (value) => {
    const n = Number(value);
    if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new InvalidArgumentError(`${flag} must be a non-negative integer, got "${value}"`);
    return n;
  };
}

/** Runs one snapshot command against the server and exits with its code. */
async function runSnapshot(o: AccessOpts & { address: string }, run: (c: SnapshotCommands) => Promise<ExitCode>, httpAddress?: string): Promise<void> {
  // Loaded here, not at the top: the SDK is the client side only, `quiver serve` must not need it.
  const { processSink, withSnapshotCommands } = await import('./connect.js');
  const code = await withSnapshotCommands(o.address, processSink(), run, httpAddress, clientAccess(o));
  process.exit(code);
}

const httpOption = '--http-address <host:port>';
const httpHelp = 'server HTTP (metrics) address (env QUIVER_HTTP_ADDRESS; default: host of --address, port 9091)';

const snapshot = program.command('snapshot').description('manage collection snapshots on a running server');

withCommon(snapshot.command('create <collection> <name>'))
  .description('snapshot a collection (acknowledged writes included)')
  .option('--description <d>', 'free-text description', '')
  .option('--protect-seconds <n>', 'keep the snapshot segments out of compaction for this long (max 7 days)', nonNegativeInt('--protect-seconds'), 0)
  .action((collection: string, name: string, o: CommonOpts & { description: string; protectSeconds: number }) =>
    runSnapshot(o, (c) => c.create({ db: o.db, collection, name, description: o.description, protectSeconds: o.protectSeconds })),
  );

withCommon(snapshot.command('list <collection>'))
  .description('list the snapshots of a collection, oldest first, one name per line')
  .option('--json', 'print a JSON array')
  .option('--bytes', 'a table with the bytes each snapshot references and keeps alive alone (HTTP port)')
  .option(httpOption, httpHelp)
  .action((collection: string, o: CommonOpts & { json?: boolean; bytes?: boolean; httpAddress?: string }) =>
    o.bytes
      ? runInsight((c) => c.usage({ db: o.db, collection, json: o.json }), { httpAddress: o.httpAddress ?? httpAddressDefault(o.address) })
      : runSnapshot(o, (c) => c.list({ db: o.db, collection, json: o.json })),
  );

withCommon(snapshot.command('describe <collection> <name>'))
  .description('show one snapshot')
  .option('--json', 'print a JSON object')
  .option('--bytes', 'only the bytes it references and keeps alive alone (HTTP port)')
  .option(httpOption, httpHelp)
  .action((collection: string, name: string, o: CommonOpts & { json?: boolean; bytes?: boolean; httpAddress?: string }) =>
    o.bytes
      ? runInsight((c) => c.usageOf({ db: o.db, collection, name }), { httpAddress: o.httpAddress ?? httpAddressDefault(o.address) })
      : runSnapshot(o, (c) => c.describe({ db: o.db, collection, name, json: o.json })),
  );

withCommon(snapshot.command('drop <collection> <name>'))
  .description('drop a snapshot (refused while it is pinned, e.g. by a running restore)')
  .action((collection: string, name: string, o: CommonOpts) => runSnapshot(o, (c) => c.drop({ db: o.db, collection, name })));

withCommon(snapshot.command('restore <collection> <name> <target-collection>'))
  .description('restore a snapshot into a new collection; prints the job id, then follows the job')
  .option('--target-db <db>', 'database of the new collection (default: --db)')
  .option('--no-wait', 'print the job id and return without waiting')
  .action((collection: string, name: string, targetCollection: string, o: CommonOpts & { targetDb?: string; wait: boolean }) =>
    runSnapshot(o, (c) => c.restore({ db: o.db, collection, name, targetCollection, targetDb: o.targetDb, wait: o.wait })),
  );

withAccessOptions(snapshot.command('jobs'))
  .description('list restore jobs (state, progress, reason)')
  .option('--address <host:port>', 'server address (env QUIVER_ADDRESS)', addressDefault)
  .option('--db <name>', 'only jobs restoring into this database')
  .option('--collection <c>', 'only jobs restoring into this collection')
  .option('--json', 'print a JSON array')
  .action((o: AccessOpts & { address: string; db?: string; collection?: string; json?: boolean }) =>
    runSnapshot(o, (c) => c.jobs({ db: o.db, collection: o.collection, json: o.json })),
  );

/** The server's HTTP (metrics) endpoint: same host as --address, default metrics port. */
function httpAddressDefault(address: string): string {
  return process.env['QUIVER_HTTP_ADDRESS'] || `${address.replace(/:\d+$/, '')}:9091`;
}

withAccessOptions(snapshot.command('cancel <job-id>'))
  .description('cancel a restore job: tasks stop, copied files and the target are removed, the job ends Failed "cancelled"')
  .option('--address <host:port>', 'server address (env QUIVER_ADDRESS)', addressDefault)
  .option('--http-address <host:port>', 'server HTTP (metrics) address (env QUIVER_HTTP_ADDRESS; default: host of --address, port 9091)')
  .option('--no-wait', 'return once the cancel is recorded, without waiting for the rollback')
  .action((jobId: string, o: AccessOpts & { address: string; httpAddress?: string; wait: boolean }) =>
    runSnapshot(o, (c) => c.cancel({ jobId, wait: o.wait }), o.httpAddress ?? httpAddressDefault(o.address)),
  );

// ------------------------------------------------------------------ quiver snapshot schedule | diff, --bytes

/** Runs one policy/accounting/diff command (cli/snapshot-insight-commands.ts) and exits with its code. */
async function runInsight(
  run: (c: import('./snapshot-insight-commands.js').SnapshotInsightCommands) => Promise<ExitCode>,
  o: { address?: string | undefined; httpAddress: string; access?: ClientAccess },
): Promise<void> {
  const [{ withInsightCommands }, { processSink }] = await Promise.all([import('./connect-insights.js'), import('./connect.js')]);
  process.exit(await withInsightCommands(processSink(), run, o));
}

withCommon(snapshot.command('schedule <collection>'))
  .description('show or set the snapshot schedule and retention of a collection (0 turns a part off)')
  .option('--every <seconds>', 'take a snapshot every this many seconds', nonNegativeInt('--every'))
  .option('--keep <n>', 'keep at most this many scheduled snapshots (pinned ones stay)', nonNegativeInt('--keep'))
  .option('--max-age <seconds>', 'drop scheduled snapshots older than this', nonNegativeInt('--max-age'))
  .action((collection: string, o: CommonOpts & { every?: number; keep?: number; maxAge?: number }) =>
    runInsight((c) => c.schedule({ db: o.db, collection, everySeconds: o.every, keep: o.keep, maxAgeSeconds: o.maxAge }), {
      address: o.address,
      httpAddress: httpAddressDefault(o.address),
      access: clientAccess(o),
    }),
  );

withCommon(snapshot.command('diff <collection> <from> <to>'))
  .description('primary keys inserted, deleted and updated between two snapshots (<to> may be "now")')
  .option('--jsonl', 'print one JSON object per changed primary key (counts go to stderr)')
  .option(httpOption, httpHelp)
  .action((collection: string, from: string, to: string, o: CommonOpts & { jsonl?: boolean; httpAddress?: string }) =>
    runInsight((c) => c.diff({ db: o.db, collection, from, to, jsonl: o.jsonl }), { httpAddress: o.httpAddress ?? httpAddressDefault(o.address) }),
  );

withCommon(snapshot.command('export <collection> <name> <target>'))
  .description('export a snapshot as a bundle to file:///DIR or s3://BUCKET/PREFIX (under QUIVER_EXPORT_ROOTS); prints the bundle URI')
  .option('--external-spec <json>', 'S3 settings: {"endpoint","region","access_key_id","secret_access_key"}')
  .option('--http-address <host:port>', 'server HTTP (metrics) address, for progress (env QUIVER_HTTP_ADDRESS; default: host of --address, port 9091)')
  .action((collection: string, name: string, target: string, o: CommonOpts & { externalSpec?: string; httpAddress?: string }) =>
    runSnapshot(o, (c) => c.export({ db: o.db, collection, name, target, externalSpec: o.externalSpec }), o.httpAddress ?? httpAddressDefault(o.address)),
  );

withCommon(snapshot.command('import <bundle-uri> <target-collection>'))
  .description('restore an exported bundle into a new collection (every file verified first); prints the job id, then follows it')
  .option('--external-spec <json>', 'S3 settings: {"endpoint","region","access_key_id","secret_access_key"}')
  .option('--no-wait', 'print the job id and return without waiting')
  .action((uri: string, targetCollection: string, o: CommonOpts & { externalSpec?: string; wait: boolean }) =>
    runSnapshot(o, (c) => c.import({ db: o.db, uri, targetCollection, externalSpec: o.externalSpec, wait: o.wait })),
  );

// ------------------------------------------------------------------ quiver apikey ...

const apikey = program.command('apikey').description("API keys (the SDK's token), on a running server; root's credentials required");

function withKeyAccess(cmd: Command): Command {
  return withCredentialOptions(
    cmd.option(
      '--http-address <host:port>',
      "`quiver serve`'s HTTP (metrics) address (env QUIVER_HTTP_ADDRESS)",
      process.env['QUIVER_HTTP_ADDRESS'] || '127.0.0.1:9091',
    ),
  );
}

async function runApiKey(
  run: (m: typeof import('./apikey-commands.js'), sink: import('./snapshot-commands.js').OutputSink) => Promise<ExitCode>,
): Promise<void> {
  const [commands, { processSink }] = await Promise.all([import('./apikey-commands.js'), import('./connect.js')]);
  process.exit(await run(commands, processSink()));
}

withKeyAccess(apikey.command('create'))
  .description('create a key (printed once, alone on stdout)')
  .option('--for-user <name>', 'the user the key acts as', 'root')
  .option('--description <text>', 'what the key is for', '')
  .action((o: AccessOpts & { httpAddress: string; forUser: string; description: string }) =>
    runApiKey((m, sink) => m.createApiKey({ httpAddress: o.httpAddress, access: clientAccess(o), user: o.forUser, description: o.description }, sink)),
  );

withKeyAccess(apikey.command('list'))
  .description('list keys: id, user, creation time, description (never the key)')
  .option('--json', 'print a JSON array')
  .action((o: AccessOpts & { httpAddress: string; json?: boolean }) =>
    runApiKey((m, sink) => m.listApiKeys({ httpAddress: o.httpAddress, access: clientAccess(o), json: o.json }, sink)),
  );

withKeyAccess(apikey.command('revoke <id>'))
  .description('revoke a key: calls with it fail at once')
  .action((id: string, o: AccessOpts & { httpAddress: string }) =>
    runApiKey((m, sink) => m.revokeApiKey({ httpAddress: o.httpAddress, access: clientAccess(o), id }, sink)),
  );

// ------------------------------------------------------------------ quiver cluster ...

program
  .command('cluster')
  .description('a cluster of `quiver serve` and `quiver datanode` processes')
  .command('status')
  .description('data nodes (slots, tasks, last heartbeat, state) and jobs in flight, from the serving process')
  .option(
    '--metrics-address <host:port>',
    "`quiver serve`'s metrics (HTTP) address (env QUIVER_HTTP_ADDRESS)",
    process.env['QUIVER_HTTP_ADDRESS'] || '127.0.0.1:9091',
  )
  .option('--json', 'print the JSON the server answered')
  .action(async (o: { metricsAddress: string; json?: boolean }) => {
    const [{ clusterStatus }, { processSink }] = await Promise.all([import('./cluster-commands.js'), import('./connect.js')]);
    process.exit(await clusterStatus({ metricsAddress: o.metricsAddress, json: o.json }, processSink()));
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
