import { MilvusClient } from '@zilliz/milvus2-sdk-node';
import { sdkAccessConfig, type ClientAccess } from './client-access.js';
import { formatFailure, type ExitCode, type OutputSink } from './snapshot-commands.js';
import { httpInsightsClient, SnapshotInsightCommands } from './snapshot-insight-commands.js';

/** As `withSnapshotCommands`: the SDK only when the command needs it (schedule), the HTTP client always. */
export async function withInsightCommands(
  sink: OutputSink,
  run: (commands: SnapshotInsightCommands) => Promise<ExitCode>,
  opts: { readonly address?: string | undefined; readonly httpAddress: string; readonly access?: ClientAccess | undefined },
): Promise<ExitCode> {
  const http = httpInsightsClient(opts.httpAddress);
  if (opts.address === undefined) return run(new SnapshotInsightCommands({ http, sink }));
  const client = new MilvusClient({ address: opts.address, telemetry: { enabled: false }, logLevel: 'error', ...sdkAccessConfig(opts.access) } as never);
  try {
    try {
      await client.connectPromise;
    } catch (e) {
      sink.err(formatFailure(new Error(`cannot connect to Quiver at ${opts.address}: ${e instanceof Error ? e.message : String(e)}`)));
      return 1;
    }
    return await run(new SnapshotInsightCommands({ client, http, sink }));
  } finally {
    await client.closeConnection().catch(() => undefined);
  }
}
