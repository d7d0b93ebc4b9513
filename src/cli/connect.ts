import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { sdkAccessConfig, type ClientAccess } from './client-access.js';
import { exportSnapshot, restoreExternal } from './export-rpc.js';
import { formatFailure, httpAdminClient, SnapshotCommands, type ExitCode, type ExternalClient, type OutputSink } from './snapshot-commands.js';

/** Per-RPC deadline of the CLI's client: long enough for a create that flushes a large collection. */
const RPC_TIMEOUT_MS = 10 * 60 * 1000;

/**
 * Connects the official SDK to `address`, runs one command, and closes the connection whatever happened.
 * A server that cannot be reached is a failure like any other: printed, exit 1.
 */
export async function withSnapshotCommands(
  address: string,
  sink: OutputSink,
  run: (commands: SnapshotCommands) => Promise<ExitCode>,
  httpAddress?: string,
  access?: ClientAccess,
): Promise<ExitCode> {
  const client = new MilvusClient({
    address,
    timeout: RPC_TIMEOUT_MS,
    telemetry: { enabled: false },
    logLevel: 'error',
    ...sdkAccessConfig(access),
  } as never);
  try {
    try {
      await client.connectPromise;
    } catch (e) {
      sink.err(formatFailure(new Error(`cannot connect to Quiver at ${address}: ${e instanceof Error ? e.message : String(e)}`)));
      return 1;
    }
    const external: ExternalClient = {
      exportSnapshot: (req) => exportSnapshot(address, req, access),
      restoreExternal: (req) => restoreExternal(address, req, access),
      exportsInFlight: async () => {
        if (httpAddress === undefined) return [];
        const res = await fetch(`http://${httpAddress}/exports`);
        return res.ok ? ((await res.json()) as Awaited<ReturnType<ExternalClient['exportsInFlight']>>) : [];
      },
    };
    return await run(new SnapshotCommands({ client, sink, external, admin: httpAddress === undefined ? undefined : httpAdminClient(httpAddress) }));
  } finally {
    await client.closeConnection().catch(() => undefined);
  }
}

/** The process's stdout/stderr; the progress bar only when stdout is a terminal. */
export function processSink(): OutputSink {
  return {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    tty: process.stdout.isTTY ? process.stdout : undefined,
  };
}
