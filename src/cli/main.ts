#!/usr/bin/env node
import { Command } from 'commander';
import { loadConfig } from '../common/config.js';
import { startServer } from '../server/server.js';

const program = new Command();
program.name('quiver').description('Quiver: a Milvus-compatible vector database with collection snapshots');

program
  .command('serve')
  .description('serve the Milvus gRPC protocol with an embedded data dir')
  .option('--host <host>', 'bind address (env QUIVER_HOST)')
  .option('--port <port>', 'gRPC port (env QUIVER_PORT)')
  .option('--metrics-port <port>', 'HTTP port for /metrics and /healthz (env QUIVER_METRICS_PORT)')
  .option('--data-dir <dir>', 'data directory (env QUIVER_DATA_DIR)')
  .option('--wal-fsync <policy>', 'always | batch | none (env QUIVER_WAL_FSYNC)')
  .option('--log-level <level>', 'pino log level (env QUIVER_LOG_LEVEL)')
  .action(async (opts: Record<string, string | undefined>) => {
    const config = loadConfig({
      host: opts['host'],
      port: opts['port'],
      metricsPort: opts['metricsPort'],
      dataDir: opts['dataDir'],
      walFsync: opts['walFsync'],
      logLevel: opts['logLevel'],
    });
    const server = await startServer(config);
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      server.log.info({ signal }, 'shutting down');
      await server.close();
      process.exit(0);
    };
    process.on('SIGINT', () => void stop('SIGINT'));
    process.on('SIGTERM', () => void stop('SIGTERM'));
  });

program.parseAsync(process.argv).catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
