import { quiverError } from '../common/errors.js';
import type { ObjectStore } from '../storage/object-store.js';
import { readSegment } from '../segcore/segment-io.js';
import type { IndexBuildExecutor } from './index-build-executor.js';
import type { IndexBuildPool } from './index-builder.js';
import type { DataNodeTaskResult, DataNodeTaskSpec, DataNodeTaskState, DataNodeTasks } from './types.js';
import { floatVectorsOf } from '../index/typed-search.js';
import { isScalarIndexType } from '../index/scalar/scalar-index-params.js';
import { hasTypedIndexFile } from '../index/typed-index-file.js';
import { runMerge } from './remote/merge-runner.js';

/**
 * The data node's task service (Milvus DataNode CreateTask / QueryTask / DropTask / QuerySlots): accepts
 * tasks from the coordinator, runs them on its executors and keeps their outcome until dropped. Slots
 * bound how many tasks run at once; the embedded node has one build worker and one merge worker, so two slots by default (slots are
 * reported for scheduling, not enforced here).
 */

interface TaskEntry {
  state: DataNodeTaskState;
  readonly done: Promise<DataNodeTaskState>;
}

export class TaskService implements DataNodeTasks {
  readonly #store: ObjectStore;
  readonly #builds: IndexBuildExecutor;
  readonly #merges: Pick<IndexBuildPool, 'merge'>;
  readonly #slotsTotal: number;
  readonly #tasks = new Map<number, TaskEntry>();
  #nextId = 1;
  #running = 0;

  constructor(deps: { store: ObjectStore; builds: IndexBuildExecutor; merges: Pick<IndexBuildPool, 'merge'> }, opts: { slots?: number } = {}) {
    this.#store = deps.store;
    this.#builds = deps.builds;
    this.#merges = deps.merges;
    this.#slotsTotal = opts.slots ?? 2;
  }

  async createTask(spec: DataNodeTaskSpec): Promise<number> {
    const id = this.#nextId++;
    this.#running++;
    const entry: TaskEntry = {
      state: { state: 'InProgress' },
      done: this.#run(spec).then(
        (result): DataNodeTaskState => ({ state: 'Finished', result }),
        (err: unknown): DataNodeTaskState => ({ state: 'Failed', reason: (err as Error).message }),
      ),
    };
    this.#tasks.set(id, entry);
    void entry.done.then((s) => {
      entry.state = s;
      this.#running--;
    });
    return id;
  }

  queryTask(taskId: number): DataNodeTaskState | undefined {
    return this.#tasks.get(taskId)?.state;
  }

  async waitTask(taskId: number): Promise<DataNodeTaskState> {
    const entry = this.#tasks.get(taskId);
    if (!entry) throw quiverError('ServiceInternal', `data node task ${taskId} is unknown`);
    const s = await entry.done;
    entry.state = s;
    return s;
  }

  dropTask(taskId: number): void {
    const entry = this.#tasks.get(taskId);
    if (entry && entry.state.state !== 'InProgress') this.#tasks.delete(taskId);
  }

  querySlots(): { total: number; free: number } {
    return { total: this.#slotsTotal, free: Math.max(0, this.#slotsTotal - this.#running) };
  }

  async #run(spec: DataNodeTaskSpec): Promise<DataNodeTaskResult> {
    switch (spec.kind) {
      case 'indexBuild': {
        if (isScalarIndexType(spec.index.indexType) || hasTypedIndexFile(spec.index)) {
          const chunk = await readSegment(this.#store, spec.collection, spec.segment, [spec.field]);
          const column = chunk.columns.get(spec.field.name)!;
          return { kind: 'indexBuild', file: await this.#builds.buildColumn(column, spec.index, spec.segment.partitionId, spec.segment.id) };
        }
        let vectors = spec.vectors;
        if (!vectors) {
          const chunk = await readSegment(this.#store, spec.collection, spec.segment, [spec.field]);
          vectors = floatVectorsOf(chunk.columns.get(spec.field.name))!;
        }
        const file = await this.#builds.build(vectors, spec.index, spec.field, spec.segment.partitionId, spec.segment.id);
        return { kind: 'indexBuild', file };
      }
      case 'merge':
        return { kind: 'merge', result: await this.#merges.merge(spec.merge) };
      case 'keyMerge':
        return { kind: 'keyMerge', merged: await runMerge(this.#store, spec.merge) };
      default: {
        const never: never = spec;
        throw new Error(`unknown task kind ${String((never as { kind: unknown }).kind)}`);
      }
    }
  }
}
