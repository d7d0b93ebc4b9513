import { segmentIndexFileOf } from '../../taskrpc/protocol.js';
/**
 * Index builds on the registered data nodes, behind the `DataNodeTasks` interface the index scheduler
 * already speaks (so its commit path, a compare under the collection lock, is the same in both modes):
 *   - RemoteIndexBuilds: `indexBuild` tasks through the NodeTaskDispatcher (persisted, fenced, timed out);
 *   - IndexTaskRouter: what `quiver serve` hands the scheduler: builds go to the data nodes when some are
 *     registered (or always, with --datanode-slots 0: then they wait for one), everything else (and
 *     builds in the embedded mode) to the in-process data node.
 */

import { quiverError } from '../../common/errors.js';
import type { DataNodeTaskSpec, DataNodeTaskState, DataNodeTasks } from '../../datanode/types.js';
import { isScalarIndexType } from '../../index/scalar/scalar-index-params.js';
import { hasTypedIndexFile } from '../../index/typed-index-file.js';
import { isFloatIndexable } from '../../index/typed-search.js';
import type { CompactionMergeParams } from '../../taskrpc/protocol.js';
import type { NodeTaskDispatcher, NodeTaskOutcome } from './node-task-dispatcher.js';
import type { NodeTaskSpec } from './node-task-store.js';

export class RemoteIndexBuilds implements DataNodeTasks {
  readonly #dispatcher: NodeTaskDispatcher;
  /** The merge each task runs: a merge claimed after a restart runs the adopted params, not the caller's. */
  readonly #merges = new Map<number, CompactionMergeParams>();

  constructor(dispatcher: NodeTaskDispatcher) {
    this.#dispatcher = dispatcher;
  }

  async createTask(spec: DataNodeTaskSpec): Promise<number> {
    const id = await this.#dispatcher.submit(nodeTaskOf(spec));
    const rec = this.#dispatcher.task(id);
    if (rec?.type === 'compaction-merge') this.#merges.set(id, rec.params);
    return id;
  }

  /** True when a run adopted at restart does this work (the router then sends it here, whatever the slots). */
  async resumes(spec: DataNodeTaskSpec): Promise<boolean> {
    if (spec.kind === 'merge') return false;
    return this.#dispatcher.holds(nodeTaskOf(spec));
  }

  queryTask(taskId: number): DataNodeTaskState | undefined {
    const o = this.#dispatcher.outcome(taskId);
    if (o !== undefined) return toState(o, this.#merges.get(taskId));
    return this.#dispatcher.task(taskId) === undefined ? undefined : { state: 'InProgress' };
  }

  async waitTask(taskId: number): Promise<DataNodeTaskState> {
    return toState(await this.#dispatcher.wait(taskId), this.#merges.get(taskId));
  }

  dropTask(taskId: number): void {
    this.#merges.delete(taskId);
    void this.#dispatcher.forget(taskId);
  }

  querySlots(): { readonly total: number; readonly free: number } {
    return this.#dispatcher.slots();
  }
}

/**
 * Data nodes build every index that has files: vector indexes over float-widenable vectors, scalar
 * indexes, BIN_IVF_FLAT and sparse indexes over the column (their runner reads the field's binlog).
 */
function remoteBuildable(spec: Extract<DataNodeTaskSpec, { kind: 'indexBuild' }>): boolean {
  return isScalarIndexType(spec.index.indexType) || hasTypedIndexFile(spec.index) || isFloatIndexable(spec.field.dataType);
}

function nodeTaskOf(spec: DataNodeTaskSpec): NodeTaskSpec {
  switch (spec.kind) {
    case 'indexBuild':
      // Ids only: the node reads the records and the binlog itself (the vectors the caller may hold stay here).
      return { type: 'index-build', params: { collectionId: spec.collection.id, segmentId: spec.segment.id, indexId: spec.index.id } };
    case 'keyMerge':
      return { type: 'compaction-merge', params: spec.merge };
    case 'merge':
      throw quiverError('ServiceUnimplemented', 'a merge of local files runs on the in-process data node');
    default: {
      const never: never = spec;
      throw new Error(`assertion failed: task kind ${String((never as { kind: unknown }).kind)}`);
    }
  }
}

function toState(o: NodeTaskOutcome, params: CompactionMergeParams | undefined): DataNodeTaskState {
  if (o.state === 'Failed') return o;
  if (o.merged !== undefined) return { state: 'Finished', result: { kind: 'keyMerge', merged: o.merged, ...(params ? { params } : {}) } };
  const b = o.built;
  if (b === undefined) throw new Error('assertion failed: a completed node task without a result');
  return {
    state: 'Finished',
    result: {
      kind: 'indexBuild',
      file: segmentIndexFileOf(b),
    },
  };
}

/** The data nodes' side of the router: tasks, and whether a run adopted at restart does a given one. */
export interface RemoteTasks extends DataNodeTasks {
  resumes(spec: DataNodeTaskSpec): Promise<boolean>;
}

export class IndexTaskRouter implements DataNodeTasks {
  readonly #local: DataNodeTasks;
  /** --datanode-slots 0: builds never run in this process; they wait for a data node. */
  readonly #remoteOnly: boolean;
  #remote: RemoteTasks | undefined;
  readonly #remoteSet: Promise<void>;
  #markRemoteSet: () => void = () => {};
  /** Router id → the backend and its own id (the two id spaces overlap). */
  readonly #routes = new Map<number, { readonly backend: DataNodeTasks; readonly id: number }>();
  #nextId = 1;

  constructor(local: DataNodeTasks, opts: { remoteOnly: boolean }) {
    this.#local = local;
    this.#remoteOnly = opts.remoteOnly;
    this.#remoteSet = new Promise((r) => (this.#markRemoteSet = r));
  }

  /** The data nodes' builds, once the cluster wiring is up (it starts after the engine). */
  setRemote(remote: RemoteTasks): void {
    this.#remote = remote;
    this.#markRemoteSet();
  }

  async createTask(spec: DataNodeTaskSpec): Promise<number> {
    let backend = this.#local;
    if (spec.kind === 'keyMerge' || (spec.kind === 'indexBuild' && remoteBuildable(spec))) {
      // The router exists only with etcd, where the cluster wiring always sets the remote side: wait for
      // it, or a build asked for right after a restart would run here instead of resuming on its node.
      if (this.#remote === undefined) await this.#remoteSet;
      const remote = this.#remote as RemoteTasks | undefined;
      if (remote === undefined) throw new Error('assertion failed: the remote side of the router is set');
      if (this.#remoteOnly || remote.querySlots().total > 0 || (await remote.resumes(spec))) backend = remote;
    }
    const id = await backend.createTask(spec);
    const routed = this.#nextId++;
    this.#routes.set(routed, { backend, id });
    return routed;
  }

  queryTask(taskId: number): DataNodeTaskState | undefined {
    const r = this.#routes.get(taskId);
    return r?.backend.queryTask(r.id);
  }

  waitTask(taskId: number): Promise<DataNodeTaskState> {
    const r = this.#routes.get(taskId);
    if (r === undefined) throw quiverError('ServiceInternal', `data node task ${taskId} is unknown`);
    return r.backend.waitTask(r.id);
  }

  dropTask(taskId: number): void {
    const r = this.#routes.get(taskId);
    if (r === undefined) return;
    this.#routes.delete(taskId);
    r.backend.dropTask(r.id);
  }

  /** The data nodes' slots when builds go there (the scheduler runs that many builds at once). */
  querySlots(): { readonly total: number; readonly free: number } {
    const remote = this.#remote?.querySlots();
    if (remote !== undefined && (this.#remoteOnly || remote.total > 0)) return remote;
    // The in-process node has one build worker: more builds at once would only queue there.
    const local = this.#local.querySlots();
    return { total: Math.min(1, local.total), free: Math.min(1, local.free) };
  }
}
