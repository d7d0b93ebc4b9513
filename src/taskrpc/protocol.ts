/**
 * The coordinator ⇄ data node task protocol (proto/datanode.proto): the service definition loaded from
 * the .proto at run time, its messages as TypeScript types, a typed client and a server binding.
 *
 * It sits below the roles so that both sides use it without importing each other: the coordinator's
 * remote worker pool holds a `DataNodeTaskClient`, the data node serves `DataNodeTaskHandlers`.
 *
 * Errors: the client turns every failed call into a QuiverError. A refusal the node decided (full,
 * cancelled task, older version, another node id) is non-retriable (`ParameterInvalid`); anything else
 * (unreachable, deadline, reset) is retriable (`ServiceNotReady`): the caller asks again later and never
 * takes it as proof that the node lost the task.
 */

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { quiverError } from '../common/errors.js';
import type { SegmentIndexFile } from '../coord/records.js';

export type WireTaskType = 'COPY_SEGMENT' | 'INDEX_BUILD' | 'COMPACTION_MERGE';
export type WireTaskState = 'UNKNOWN' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED';

export interface WireSegmentMapping {
  readonly source_segment_id: number;
  readonly target_segment_id: number;
  readonly target_partition_id: number;
}

export interface CopySegmentParams {
  readonly source_collection_id: number;
  readonly snapshot_id: number;
  readonly target_collection_id: number;
  readonly mappings: readonly WireSegmentMapping[];
}

export interface IndexBuildParams {
  readonly collection_id: number;
  readonly segment_id: number;
  readonly index_id: number;
}

export interface WireMergeSource {
  /** Field id (a decimal string: proto map keys) → binlog key. */
  readonly binlogs: Readonly<Record<string, string>>;
  readonly keep_ranges: readonly number[];
}

export interface WireMergeField {
  readonly field_id: number;
  readonly kind: string;
  readonly output_key: string;
}

/** An index the merge builds over its merged output (the compaction target's own index). */
export interface WireMergeIndex {
  readonly index_id: number;
  /** Chosen by the coordinator; the index version is the task's dispatch epoch. */
  readonly build_id: number;
}

export interface CompactionMergeParams {
  readonly collection_id: number;
  readonly source_segment_ids: readonly number[];
  readonly target_segment_id: number;
  readonly fields: readonly WireMergeField[];
  readonly sources: readonly WireMergeSource[];
  /** The target's partition (index file keys name it); needed with `indexes`. */
  readonly partition_id?: number | undefined;
  readonly indexes?: readonly WireMergeIndex[] | undefined;
}

export interface CreateTaskRequest {
  readonly node_id: number;
  readonly task_id: number;
  readonly version: number;
  readonly type: WireTaskType;
  readonly copy_segment?: CopySegmentParams | null | undefined;
  readonly index_build?: IndexBuildParams | null | undefined;
  readonly compaction_merge?: CompactionMergeParams | null | undefined;
}

export interface QueryTaskRequest {
  readonly node_id: number;
  readonly task_id: number;
  readonly version: number;
  /** Long poll: hold an IN_PROGRESS answer up to this long for the task to finish (0: answer at once). */
  readonly wait_ms?: number | undefined;
}

export interface WireCopiedSegment {
  readonly target_segment_id: number;
  readonly num_rows: number;
  readonly files_copied: number;
}

export interface WireBuiltIndex {
  readonly index_id: number;
  readonly build_id: number;
  readonly index_version: number;
  readonly files: readonly string[];
  readonly size: number;
  /** SHA-256 of each file, parallel to `files` (empty or absent from nodes that do not record one). */
  readonly files_sha256?: readonly string[] | undefined;
  readonly rows: number;
}

/** A built index file as the wire carries it (`rows`: the rows it covers). */
export function wireBuiltIndex(f: SegmentIndexFile, rows: number): WireBuiltIndex {
  return {
    index_id: f.indexId,
    build_id: f.buildId,
    index_version: f.version,
    files: [...f.files],
    size: f.size,
    rows,
    files_sha256: [...(f.filesSha256 ?? [])],
  };
}

/** The segment index file a node reported; hashes only when there is one per file (older nodes send none). */
export function segmentIndexFileOf(b: WireBuiltIndex): SegmentIndexFile {
  return {
    indexId: b.index_id,
    buildId: b.build_id,
    version: b.index_version,
    files: [...b.files],
    size: b.size,
    ...(b.files_sha256?.length === b.files.length && b.files.length > 0 ? { filesSha256: [...b.files_sha256] } : {}),
  };
}

export interface QueryTaskResponse {
  readonly state: WireTaskState;
  readonly version: number;
  readonly reason: string;
  readonly copied_segments: readonly WireCopiedSegment[];
  /** Set for a completed INDEX_BUILD (null/absent otherwise: proto3 message fields). */
  readonly built_index?: WireBuiltIndex | null | undefined;
  /** Set for a completed COMPACTION_MERGE. */
  readonly merged?: WireMerged | null | undefined;
}

export interface WireMerged {
  readonly rows: number;
  /** Field id (decimal string) → bytes written. */
  readonly sizes: Readonly<Record<string, number>>;
  /** The indexes the merge built over its output, one per requested index. */
  readonly built_indexes?: readonly WireBuiltIndex[] | undefined;
}

export interface DropTaskRequest {
  readonly node_id: number;
  readonly task_id: number;
}

export interface RunningTask {
  readonly task_id: number;
  readonly version: number;
  readonly type: WireTaskType;
  readonly state: WireTaskState;
}

export interface QuerySlotsResponse {
  readonly node_id: number;
  readonly slots_total: number;
  readonly slots_used: number;
  readonly tasks: readonly RunningTask[];
}

/** What a data node implements. A thrown QuiverError that is not retriable reaches the client as a refusal. */
export interface DataNodeTaskHandlers {
  createTask(req: CreateTaskRequest): Promise<void>;
  queryTask(req: QueryTaskRequest): Promise<QueryTaskResponse>;
  dropTask(req: DropTaskRequest): Promise<void>;
  querySlots(): Promise<QuerySlotsResponse>;
}

/**
 * proto/ is at the package root: two levels above this file both in src/taskrpc/ (tsx, tests) and in
 * dist/taskrpc/ (the build), and shipped by `npm pack` (no "files" list in package.json).
 */
function protoPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const p = join(dir, 'proto', 'datanode.proto');
    if (existsSync(p)) return p;
    dir = dirname(dir);
  }
  throw new Error(`assertion failed: proto/datanode.proto not found above ${fileURLToPath(import.meta.url)}`);
}

let loaded: grpc.ServiceClientConstructor | undefined;

/** The service definition, loaded once (the .proto is static for the life of the process). */
function service(): grpc.ServiceClientConstructor {
  if (loaded) return loaded;
  const def = protoLoader.loadSync(protoPath(), { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const pkg = grpc.loadPackageDefinition(def) as unknown as { quiver: { datanode: { v1: { DataNodeTasks: grpc.ServiceClientConstructor } } } };
  loaded = pkg.quiver.datanode.v1.DataNodeTasks;
  return loaded;
}

/** gRPC codes a node uses to refuse (its decision, not a transport failure). */
const REFUSAL_CODES = new Set([grpc.status.FAILED_PRECONDITION, grpc.status.INVALID_ARGUMENT, grpc.status.ALREADY_EXISTS, grpc.status.UNIMPLEMENTED]);

export const TASK_RPC_DEADLINE_MS_DEFAULT = 5_000;

type Unary<Req, Res> = (req: Req, meta: grpc.Metadata, opts: grpc.CallOptions, cb: (err: grpc.ServiceError | null, res: Res) => void) => void;

export class DataNodeTaskClient {
  readonly address: string;
  readonly #client: grpc.Client;
  readonly #deadlineMs: number;

  constructor(address: string, opts: { deadlineMs?: number | undefined } = {}) {
    this.address = address;
    const Ctor = service();
    this.#client = new Ctor(address, grpc.credentials.createInsecure(), {
      // A node that went away must surface as an error quickly, not after minutes of backoff.
      'grpc.initial_reconnect_backoff_ms': 200,
      'grpc.max_reconnect_backoff_ms': 2_000,
    });
    this.#deadlineMs = opts.deadlineMs ?? TASK_RPC_DEADLINE_MS_DEFAULT;
  }

  createTask(req: CreateTaskRequest): Promise<void> {
    return this.#call<CreateTaskRequest, object>('CreateTask', req).then(() => undefined);
  }

  queryTask(req: QueryTaskRequest): Promise<QueryTaskResponse> {
    // A long poll may be held `wait_ms` by the node: its deadline is that much longer.
    return this.#call('QueryTask', req, req.wait_ms ?? 0);
  }

  dropTask(req: DropTaskRequest): Promise<void> {
    return this.#call<DropTaskRequest, object>('DropTask', req).then(() => undefined);
  }

  querySlots(): Promise<QuerySlotsResponse> {
    return this.#call('QuerySlots', {});
  }

  close(): void {
    this.#client.close();
  }

  #call<Req, Res>(method: string, req: Req, extraMs = 0): Promise<Res> {
    const fn = (this.#client as unknown as Record<string, Unary<Req, Res>>)[method]!.bind(this.#client);
    return new Promise((resolve, reject) => {
      fn(req, new grpc.Metadata(), { deadline: Date.now() + this.#deadlineMs + extraMs }, (err, res) => {
        if (err === null) return resolve(res);
        const what = `${method} on data node ${this.address}: ${err.details || err.message}`;
        reject(REFUSAL_CODES.has(err.code) ? quiverError('ParameterInvalid', what, err) : quiverError('ServiceNotReady', what, err));
      });
    });
  }
}

export interface TaskServer {
  readonly port: number;
  /** Stops accepting calls, waits for the ones in flight (forces them after `graceMs`). Idempotent. */
  close(graceMs?: number): Promise<void>;
}

/** Serves `handlers` on host:port (0 = a free port). */
export async function serveDataNodeTasks(handlers: DataNodeTaskHandlers, host: string, port: number): Promise<TaskServer> {
  const server = new grpc.Server();
  const unary =
    <Req, Res>(fn: (req: Req) => Promise<Res>): grpc.handleUnaryCall<Req, Res> =>
    (call, cb) => {
      fn(call.request).then(
        (res) => cb(null, res),
        (e: unknown) => cb(toServiceError(e)),
      );
    };
  server.addService(service().service, {
    CreateTask: unary(async (req: CreateTaskRequest) => {
      await handlers.createTask(req);
      return {};
    }),
    QueryTask: unary((req: QueryTaskRequest) => handlers.queryTask(req)),
    DropTask: unary(async (req: DropTaskRequest) => {
      await handlers.dropTask(req);
      return {};
    }),
    QuerySlots: unary(() => handlers.querySlots()),
  });
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
  );
  let closed: Promise<void> | undefined;
  return {
    port: bound,
    close: (graceMs = 5_000) =>
      (closed ??= new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), graceMs);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      })),
  };
}

function toServiceError(e: unknown): Partial<grpc.ServiceError> {
  const retriable = (e as { retriable?: unknown }).retriable;
  const message = e instanceof Error ? e.message : String(e);
  return { code: retriable === false ? grpc.status.FAILED_PRECONDITION : grpc.status.UNAVAILABLE, details: message, message };
}
