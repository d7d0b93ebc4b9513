/**
 * The privilege catalogue: every privilege name (Milvus's `ObjectPrivilege` enum without its `Privilege`
 * prefix), the level it lives at, the nine built-in privilege groups, and for every MilvusService method
 * the server implements the checks a call must pass (privilege, object, database).
 *
 * Milvus's model, with these deliberate differences:
 * - Snapshot privileges sit at collection level and are in the built-in collection groups from the start
 *   (Milvus 3.0 shipped them outside, #47855): ReadOnly holds ListSnapshots and DescribeSnapshot,
 *   ReadWrite adds CreateSnapshot, PinSnapshotData and UnpinSnapshotData, Admin adds DropSnapshot and
 *   RestoreSnapshot. ExportSnapshot and RestoreExternalSnapshot are cluster level (in ClusterAdmin).
 * - A method that names a collection is checked against that collection even where Milvus's proto checks a
 *   `Global` object (DescribeCollection, aliases, Pin/Unpin): a grant on `*` still covers it, and a grant on
 *   one collection can no longer be stretched to its neighbours.
 * - RestoreSnapshot also needs CreateCollection on the target collection in the target database (Milvus
 *   checks only the source, so a restore could write into a database the caller may not write).
 * - Aliases and `COLLECTION@SNAPSHOT` views are checked as the collection they name (see ObjectResolver).
 *
 * Object names: `*` means every object; a check of a database-level or cluster-level privilege uses `*`
 * (only a grant on `*` satisfies it).
 */

/* eslint-disable @typescript-eslint/no-explicit-any */

export type ObjectType = 'Global' | 'Collection' | 'User';
export const OBJECT_TYPES: readonly ObjectType[] = ['Global', 'Collection', 'User'];

export type PrivilegeLevel = 'Cluster' | 'Database' | 'Collection';

export const ANY = '*';
/** Grants every privilege (Milvus `PrivilegeAll`; accepted as `*` or `All`, stored as `*`). */
export const ALL_PRIVILEGES = '*';

const COLLECTION_READ_ONLY = [
  'Query',
  'Search',
  'IndexDetail',
  'GetFlushState',
  'GetLoadState',
  'GetLoadingProgress',
  'HasPartition',
  'ShowPartitions',
  'DescribeCollection',
  'DescribeAlias',
  'GetStatistics',
  'ListAliases',
  'ListSnapshots',
  'DescribeSnapshot',
] as const;
const COLLECTION_READ_WRITE = [
  ...COLLECTION_READ_ONLY,
  'Load',
  'Release',
  'Insert',
  'Delete',
  'Upsert',
  'Import',
  'Flush',
  'Compaction',
  'LoadBalance',
  'CreateIndex',
  'DropIndex',
  'CreatePartition',
  'DropPartition',
  'CreateSnapshot',
  'PinSnapshotData',
  'UnpinSnapshotData',
] as const;
const COLLECTION_ADMIN = [
  ...COLLECTION_READ_WRITE,
  'CreateAlias',
  'DropAlias',
  'DropSnapshot',
  'RestoreSnapshot',
  // Schema changes: not in any Milvus group yet; an admin-of-the-collection operation.
  'AddCollectionField',
  'AlterCollectionSchema',
] as const;
const DATABASE_READ_ONLY = ['ShowCollections', 'DescribeDatabase'] as const;
const DATABASE_READ_WRITE = [...DATABASE_READ_ONLY, 'AlterDatabase'] as const;
const DATABASE_ADMIN = [...DATABASE_READ_WRITE, 'CreateCollection', 'DropCollection'] as const;
const CLUSTER_READ_ONLY = ['ListDatabases', 'SelectOwnership', 'SelectUser', 'DescribeResourceGroup', 'ListResourceGroups', 'ListPrivilegeGroups'] as const;
const CLUSTER_READ_WRITE = [...CLUSTER_READ_ONLY, 'FlushAll', 'TransferNode', 'TransferReplica', 'UpdateResourceGroups'] as const;
const CLUSTER_ADMIN = [
  ...CLUSTER_READ_WRITE,
  'BackupRBAC',
  'RestoreRBAC',
  'CreateDatabase',
  'DropDatabase',
  'CreateOwnership',
  'DropOwnership',
  'ManageOwnership',
  'CreateResourceGroup',
  'DropResourceGroup',
  'UpdateUser',
  'RenameCollection',
  'CreatePrivilegeGroup',
  'DropPrivilegeGroup',
  'OperatePrivilegeGroup',
  'ExportSnapshot',
  'RestoreExternalSnapshot',
] as const;

/** The built-in privilege groups (grantable by name, never altered or dropped). */
export const BUILTIN_GROUPS: Readonly<Record<string, readonly string[]>> = {
  CollectionReadOnly: COLLECTION_READ_ONLY,
  CollectionReadWrite: COLLECTION_READ_WRITE,
  CollectionAdmin: COLLECTION_ADMIN,
  DatabaseReadOnly: DATABASE_READ_ONLY,
  DatabaseReadWrite: DATABASE_READ_WRITE,
  DatabaseAdmin: DATABASE_ADMIN,
  ClusterReadOnly: CLUSTER_READ_ONLY,
  ClusterReadWrite: CLUSTER_READ_WRITE,
  ClusterAdmin: CLUSTER_ADMIN,
};

/** Privileges that exist in Milvus's enum but are in no built-in group, with their level. */
const UNGROUPED: Readonly<Record<string, PrivilegeLevel>> = {
  GetImportProgress: 'Collection',
  ListImport: 'Collection',
  RefreshExternalCollection: 'Collection',
  AddFileResource: 'Cluster',
  RemoveFileResource: 'Cluster',
  ListFileResources: 'Cluster',
  UpdateReplicateConfiguration: 'Cluster',
  GetReplicateConfiguration: 'Cluster',
};

/** Every single privilege and its level (the first group that holds it decides). */
export const PRIVILEGE_LEVELS: ReadonlyMap<string, PrivilegeLevel> = (() => {
  const m = new Map<string, PrivilegeLevel>();
  for (const p of COLLECTION_ADMIN) m.set(p, 'Collection');
  for (const p of DATABASE_ADMIN) m.set(p, 'Database');
  for (const p of CLUSTER_ADMIN) m.set(p, 'Cluster');
  for (const [p, l] of Object.entries(UNGROUPED)) m.set(p, l);
  return m;
})();

export function isPrivilege(name: string): boolean {
  return PRIVILEGE_LEVELS.has(name);
}

export function isBuiltinGroup(name: string): boolean {
  return Object.hasOwn(BUILTIN_GROUPS, name);
}

/** Level of a built-in group (from its name). */
export function builtinGroupLevel(name: string): PrivilegeLevel | undefined {
  if (!isBuiltinGroup(name)) return undefined;
  return name.startsWith('Collection') ? 'Collection' : name.startsWith('Database') ? 'Database' : 'Cluster';
}

/** The object type Milvus's V1 API files a privilege under (UpdateUser/SelectUser also under User). */
export function objectTypeOfLevel(level: PrivilegeLevel): ObjectType {
  return level === 'Collection' ? 'Collection' : 'Global';
}

// ---------------------------------------------------------------- method catalogue

/** One privilege a call needs: `privilege` on object `name` (`*` = every object) in database `db`. */
export interface Check {
  readonly privilege: string;
  readonly type: ObjectType;
  readonly name: string;
  readonly db: string;
}

/**
 * What the authorizer may ask about objects named only indirectly. Implementations answer from in-memory
 * state (authorize is synchronous, called before every handler).
 */
export interface ObjectResolver {
  /** The collection a name reaches: an alias resolves to its collection; otherwise the name itself. */
  collectionOf(db: string, name: string): string;
  /** The (database, collection) a snapshot pin belongs to, when the pin is known. */
  pinTarget?(pinId: number): { readonly db: string; readonly collection: string } | undefined;
}

/** How a method is checked. */
export type MethodRule =
  /** Any authenticated caller (Milvus checks none of these either): the reason says why that is safe. */
  | { readonly kind: 'open'; readonly why: string }
  | { readonly kind: 'checks'; readonly checks: (req: any, db: string, resolve: ObjectResolver) => readonly Check[]; readonly note?: string };

/** The database a request is about: its own db_name field wins over the connection's (as the handlers do). */
export function requestDb(req: any, connectionDb: string): string {
  const own = req?.db_name ?? req?.dbName;
  return typeof own === 'string' && own !== '' ? own : connectionDb || 'default';
}

function str(v: unknown): string {
  return typeof v === 'string' ? v : '';
}

/** `COLLECTION@SNAPSHOT` (a read-only snapshot view) is checked as COLLECTION; aliases as their collection. */
export function collectionName(resolve: ObjectResolver, db: string, raw: unknown): string {
  const name = str(raw);
  if (name === '' || name === ANY) return ANY;
  const at = name.indexOf('@');
  const base = at > 0 ? name.slice(0, at) : name;
  return resolve.collectionOf(db, base);
}

const coll =
  (privilege: string, field = 'collection_name') =>
  (req: any, db: string, r: ObjectResolver): Check[] => [{ privilege, type: 'Collection', name: collectionName(r, db, req?.[field]), db }];
const global =
  (privilege: string) =>
  (_req: any, db: string): Check[] => [{ privilege, type: 'Global', name: ANY, db }];
const user =
  (privilege: string, pick: (req: any) => unknown) =>
  (req: any, db: string): Check[] => [{ privilege, type: 'User', name: str(pick(req)) || ANY, db }];

const rule = (checks: (req: any, db: string, r: ObjectResolver) => readonly Check[], note?: string): MethodRule =>
  note === undefined ? { kind: 'checks', checks } : { kind: 'checks', checks, note };
const open = (why: string): MethodRule => ({ kind: 'open', why });

/**
 * Every MilvusService method the server implements → how a call is checked. A unit test fails when a
 * served method has no entry, so a new RPC cannot slip through unchecked; the authorizer refuses (fails
 * closed) a method that has none.
 */
export const METHOD_RULES: Readonly<Record<string, MethodRule>> = {
  // Connection handshake and liveness: nothing to protect (Milvus checks none).
  Connect: open('connection handshake'),
  GetVersion: open('server version'),
  CheckHealth: open('health probe'),
  GetComponentStates: open('health probe'),
  GetMetrics: open('server metrics (no data); Milvus checks none'),
  ListDatabases: open('Milvus checks none; lists names only'),
  RunAnalyzer: open('tokenizes the caller’s own text; Milvus checks none'),
  // By-id polls of operations started by a checked call; Milvus checks none of these.
  GetCompactionState: open('by compaction id; the compaction itself was checked'),
  GetCompactionStateWithPlans: open('by compaction id; the compaction itself was checked'),
  GetImportState: open('by import task id; the import itself was checked'),
  GetRestoreSnapshotState: open('by restore job id; the restore itself was checked (Milvus checks none)'),

  // Databases (cluster level) and their settings (database level).
  CreateDatabase: rule(global('CreateDatabase')),
  DropDatabase: rule(global('DropDatabase')),
  DescribeDatabase: rule(global('DescribeDatabase')),
  AlterDatabase: rule(global('AlterDatabase')),

  // Collections.
  CreateCollection: rule(coll('CreateCollection')),
  DropCollection: rule(coll('DropCollection')),
  TruncateCollection: rule(coll('DropCollection')),
  HasCollection: rule(coll('DescribeCollection')),
  DescribeCollection: rule(coll('DescribeCollection')),
  BatchDescribeCollection: rule((req, db, r) => {
    const names: unknown[] = Array.isArray(req?.collection_name) ? req.collection_name : [];
    return (names.length > 0 ? names : [ANY]).map((n) => ({
      privilege: 'DescribeCollection',
      type: 'Collection' as const,
      name: collectionName(r, db, n),
      db,
    }));
  }),
  ShowCollections: rule(global('ShowCollections')),
  GetCollectionStatistics: rule(coll('GetStatistics')),
  AlterCollection: rule(coll('CreateCollection'), 'Milvus checks CreateCollection for collection property changes'),
  AlterCollectionField: rule(coll('CreateCollection'), 'as AlterCollection'),
  AddCollectionField: rule(coll('AddCollectionField')),
  AddCollectionStructField: rule(coll('AddCollectionField')),
  AlterCollectionSchema: rule(coll('AlterCollectionSchema')),
  RenameCollection: rule((req, db) => {
    const checks: Check[] = [{ privilege: 'RenameCollection', type: 'Global', name: ANY, db }];
    const to = str(req?.newDBName);
    if (to !== '' && to !== db) checks.push({ privilege: 'RenameCollection', type: 'Global', name: ANY, db: to });
    return checks;
  }, 'cluster level; a move to another database needs it in both'),
  LoadCollection: rule(coll('Load')),
  ReleaseCollection: rule(coll('Release')),
  GetLoadState: rule(coll('GetLoadState')),
  GetLoadingProgress: rule(coll('GetLoadingProgress')),
  GetReplicas: rule(coll('GetLoadState')),
  LoadBalance: rule(coll('LoadBalance', 'collectionName')),
  ManualCompaction: rule(coll('Compaction')),
  GetPersistentSegmentInfo: rule(coll('GetStatistics', 'collectionName')),
  GetQuerySegmentInfo: rule(coll('GetStatistics', 'collectionName')),

  // Partitions.
  CreatePartition: rule(coll('CreatePartition')),
  DropPartition: rule(coll('DropPartition')),
  HasPartition: rule(coll('HasPartition')),
  ShowPartitions: rule(coll('ShowPartitions')),
  GetPartitionStatistics: rule(coll('GetStatistics')),
  LoadPartitions: rule(coll('Load')),
  ReleasePartitions: rule(coll('Release')),

  // Aliases: checked on the collection the alias names (after the call, for create/alter).
  CreateAlias: rule(coll('CreateAlias')),
  AlterAlias: rule(coll('CreateAlias'), 'Milvus checks CreateAlias; on the collection the alias will name'),
  DropAlias: rule(coll('DropAlias', 'alias')),
  DescribeAlias: rule(coll('DescribeAlias', 'alias')),
  ListAliases: rule(coll('ListAliases')),

  // Data.
  Insert: rule(coll('Insert')),
  Upsert: rule(coll('Upsert')),
  Delete: rule(coll('Delete')),
  Search: rule(coll('Search')),
  HybridSearch: rule(coll('Search')),
  Query: rule(coll('Query')),
  Flush: rule((req, db, r) => {
    const names: unknown[] = Array.isArray(req?.collection_names) ? req.collection_names : [];
    return (names.length > 0 ? names : [ANY]).map((n) => ({ privilege: 'Flush', type: 'Collection' as const, name: collectionName(r, db, n), db }));
  }),
  GetFlushState: rule(coll('GetFlushState')),
  FlushAll: rule(global('FlushAll')),
  GetFlushAllState: rule(global('FlushAll')),

  // Indexes.
  CreateIndex: rule(coll('CreateIndex')),
  AlterIndex: rule(coll('CreateIndex')),
  DropIndex: rule(coll('DropIndex')),
  DescribeIndex: rule(coll('IndexDetail')),
  GetIndexStatistics: rule(coll('IndexDetail')),
  GetIndexState: rule(coll('IndexDetail')),
  GetIndexBuildProgress: rule(coll('IndexDetail')),

  // Imports: Import on the collection; listing without a collection needs it on every collection.
  Import: rule(coll('Import')),
  ListImportTasks: rule(coll('Import')),

  // Snapshots (collection level) and restore jobs.
  CreateSnapshot: rule(coll('CreateSnapshot')),
  DropSnapshot: rule(coll('DropSnapshot')),
  ListSnapshots: rule(coll('ListSnapshots')),
  DescribeSnapshot: rule(coll('DescribeSnapshot')),
  PinSnapshotData: rule(coll('PinSnapshotData')),
  UnpinSnapshotData: rule((req, db, r) => {
    const target = r.pinTarget?.(Number(req?.pin_id ?? 0));
    // An unknown pin: the handler answers "not found"; until then it needs the privilege on everything.
    return [
      { privilege: 'UnpinSnapshotData', type: 'Collection', name: target ? r.collectionOf(target.db, target.collection) : ANY, db: target?.db ?? db },
    ];
  }, 'on the collection of the pin'),
  RestoreSnapshot: rule((req, db, r) => {
    const targetDb = str(req?.target_db_name) || db;
    return [
      { privilege: 'RestoreSnapshot', type: 'Collection', name: collectionName(r, db, req?.collection_name), db },
      // The restore creates a collection in the target database: the caller must be allowed to.
      { privilege: 'CreateCollection', type: 'Collection', name: str(req?.target_collection_name) || ANY, db: targetDb },
    ];
  }, 'RestoreSnapshot on the source and CreateCollection in the target database'),
  ListRestoreSnapshotJobs: rule(coll('RestoreSnapshot')),
  ExportSnapshot: rule(global('ExportSnapshot')),
  RestoreExternalSnapshot: rule(
    (req, db) => [
      { privilege: 'RestoreExternalSnapshot', type: 'Global', name: ANY, db },
      { privilege: 'CreateCollection', type: 'Collection', name: str(req?.target_collection_name) || ANY, db },
    ],
    'RestoreExternalSnapshot and CreateCollection in the target database',
  ),

  // Users (authn's handlers; a user may always read and update itself, see authorizer.ts).
  CreateCredential: rule(global('CreateOwnership')),
  UpdateCredential: rule(user('UpdateUser', (req) => req?.username)),
  DeleteCredential: rule(global('DropOwnership')),
  ListCredUsers: rule(global('SelectOwnership')),

  // RBAC (proxy/rbac-service.ts). Granting also needs the granted privilege itself (see the handlers).
  CreateRole: rule(global('CreateOwnership')),
  DropRole: rule(global('DropOwnership')),
  OperateUserRole: rule(global('ManageOwnership')),
  SelectRole: rule(global('SelectOwnership')),
  SelectUser: rule(user('SelectUser', (req) => req?.user?.name)),
  OperatePrivilege: rule(global('ManageOwnership')),
  OperatePrivilegeV2: rule(global('ManageOwnership')),
  SelectGrant: rule(global('SelectOwnership')),
  CreatePrivilegeGroup: rule(global('CreatePrivilegeGroup')),
  DropPrivilegeGroup: rule(global('DropPrivilegeGroup')),
  ListPrivilegeGroups: rule(global('ListPrivilegeGroups')),
  OperatePrivilegeGroup: rule(global('OperatePrivilegeGroup')),
  BackupRBAC: rule(global('BackupRBAC')),
  RestoreRBAC: rule(global('RestoreRBAC')),
};

/**
 * Methods whose privilege differs from the `privilege_ext_obj` option Milvus's proto declares (checked by a
 * unit test against the SDK's proto), and why.
 */
export const PROTO_DEVIATIONS: Readonly<Record<string, string>> = {
  HasCollection: 'Milvus checks none; existence is what DescribeCollection reveals',
  ShowCollections: 'Milvus filters the list instead; here ShowCollections is needed (public has it)',
  GetPartitionStatistics: 'Milvus checks none; statistics need GetStatistics',
  GetLoadingProgress: 'the proto says GetLoadState; GetLoadingProgress is its own privilege in the groups',
  GetFlushAllState: 'Milvus checks none; needs FlushAll like the call it polls',
  GetReplicas: 'Milvus checks none; needs GetLoadState',
  GetPersistentSegmentInfo: 'Milvus checks none; needs GetStatistics',
  GetQuerySegmentInfo: 'Milvus checks none; needs GetStatistics',
  ListImportTasks: 'Milvus checks none; listing needs Import on the collection (or on every one)',
  PinSnapshotData: 'collection level (the proto files it as Global)',
  UnpinSnapshotData: 'collection level, on the collection of the pin (the proto files it as Global)',
};
