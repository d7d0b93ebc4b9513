/**
 * Durable MetaKV on SQLite (better-sqlite3): the embedded default.
 *
 * Durability: WAL journal with `synchronous=FULL`, so the WAL is fsynced at every commit and an
 * acknowledged put survives kill -9 and power loss. Each public write and each txn is one SQLite
 * transaction (`BEGIN IMMEDIATE`, so a second process on the same file waits instead of failing
 * mid-txn), which is what makes txn atomic.
 *
 * Layout: `kv` holds one row per key; `kv_state` holds the global revision. Keys are TEXT under the
 * BINARY collation, i.e. ordered by UTF-8 bytes, the order `key-order.ts` defines.
 */

import Database from 'better-sqlite3';
import { quiverError } from '../common/errors.js';
import { compareKeys, prefixUpperBound } from './key-order.js';
import {
  closedError,
  compareHolds,
  toBytes,
  validateKey,
  validatePrefix,
  validateScanOptions,
  validateTxn,
  VALUE_BYTES_MAX_DEFAULT,
  type Compare,
  type KvEntry,
  type MetaKV,
  type Op,
  type ScanOptions,
  type TxnResult,
} from './meta-kv.js';

export interface SqliteMetaKVOptions {
  readonly valueBytesMax?: number | undefined;
  /** How long a write waits for another connection's lock before failing (SQLite busy_timeout). */
  readonly busyTimeoutMs?: number | undefined;
}

interface Row {
  readonly key: string;
  readonly value: Uint8Array;
  readonly create_revision: number;
  readonly mod_revision: number;
  readonly version: number;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  key TEXT PRIMARY KEY NOT NULL,
  value BLOB NOT NULL,
  create_revision INTEGER NOT NULL,
  mod_revision INTEGER NOT NULL,
  version INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv_state (
  id INTEGER PRIMARY KEY CHECK (id = 0),
  revision INTEGER NOT NULL
);
INSERT OR IGNORE INTO kv_state (id, revision) VALUES (0, 0);
`;

const COLUMNS = 'key, value, create_revision, mod_revision, version';

interface Applied extends TxnResult {
  /** Rows written or deleted. */
  readonly changes: number;
}

export class SqliteMetaKV implements MetaKV {
  readonly #db: Database.Database;
  readonly #path: string;
  readonly #valueBytesMax: number;
  readonly #stmt: {
    readonly get: Database.Statement<[string], Row>;
    readonly upsert: Database.Statement<[string, Uint8Array, number, number, number]>;
    readonly delete: Database.Statement<[string]>;
    readonly revision: Database.Statement<[], { revision: number }>;
    readonly setRevision: Database.Statement<[number]>;
    readonly keysFrom: Database.Statement<[string], { key: string }>;
    readonly keysBetween: Database.Statement<[string, string], { key: string }>;
    /** Params: from, excluded key (startAfter, or '' which is never a key), limit (-1 = none). */
    readonly scanFrom: Database.Statement<[string, string, number], Row>;
    /** Params: from, exclusive upper bound, excluded key, limit. */
    readonly scanBetween: Database.Statement<[string, string, string, number], Row>;
  };
  /** Applies a txn inside one SQLite transaction. */
  readonly #applyTxn: (compares: readonly Compare[], success: readonly Op[], failure: readonly Op[]) => Applied;
  #closed = false;

  /** @param path a database file, or ':memory:' */
  constructor(path: string, options: SqliteMetaKVOptions = {}) {
    this.#path = path;
    this.#valueBytesMax = options.valueBytesMax ?? VALUE_BYTES_MAX_DEFAULT;
    try {
      this.#db = new Database(path);
      this.#db.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      this.#db.pragma('journal_mode = WAL');
      this.#db.pragma('synchronous = FULL');
      this.#db.exec(SCHEMA);
    } catch (e) {
      throw quiverError('IoFailed', `meta kv: cannot open SQLite database ${JSON.stringify(path)}: ${errText(e)}`, e);
    }
    const db = this.#db;
    this.#stmt = {
      get: db.prepare(`SELECT ${COLUMNS} FROM kv WHERE key = ?`),
      upsert: db.prepare(
        `INSERT INTO kv (${COLUMNS}) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, mod_revision = excluded.mod_revision,
           version = excluded.version`,
      ),
      delete: db.prepare('DELETE FROM kv WHERE key = ?'),
      revision: db.prepare('SELECT revision FROM kv_state WHERE id = 0'),
      setRevision: db.prepare('UPDATE kv_state SET revision = ? WHERE id = 0'),
      keysFrom: db.prepare('SELECT key FROM kv WHERE key >= ? ORDER BY key'),
      keysBetween: db.prepare('SELECT key FROM kv WHERE key >= ? AND key < ? ORDER BY key'),
      // `key != ?` drops the exclusive startAfter while SQLite still walks the primary key range.
      scanFrom: db.prepare(`SELECT ${COLUMNS} FROM kv WHERE key >= ? AND key != ? ORDER BY key LIMIT ?`),
      scanBetween: db.prepare(`SELECT ${COLUMNS} FROM kv WHERE key >= ? AND key < ? AND key != ? ORDER BY key LIMIT ?`),
    };
    const applyTxn = db.transaction((compares: readonly Compare[], success: readonly Op[], failure: readonly Op[]): Applied => {
      const succeeded = compares.every((c) => compareHolds(c, this.#read(c.key)));
      const current = this.#currentRevision();
      const revision = current + 1;
      let changes = 0;
      for (const op of succeeded ? success : failure) {
        switch (op.type) {
          case 'put':
            this.#writePut(op.key, toBytes(op.value), revision);
            changes += 1;
            break;
          case 'delete':
            changes += this.#stmt.delete.run(op.key).changes;
            break;
          case 'deletePrefix':
            changes += this.#deletePrefix(op.prefix);
            break;
        }
      }
      if (changes > 0) this.#stmt.setRevision.run(revision);
      return { succeeded, revision: changes > 0 ? revision : current, changes };
    });
    this.#applyTxn = (c, s, f) => applyTxn.immediate(c, s, f);
  }

  async get(key: string): Promise<KvEntry | undefined> {
    this.#checkOpen();
    validateKey(key);
    return this.#guard('get', key, () => this.#read(key));
  }

  async put(key: string, value: Uint8Array | string): Promise<number> {
    const ops: Op[] = [{ type: 'put', key, value }];
    this.#checkOpen();
    validateTxn([], [ops], this.#valueBytesMax);
    return this.#guard('put', key, () => this.#applyTxn([], ops, [])).revision;
  }

  async delete(key: string): Promise<boolean> {
    const ops: Op[] = [{ type: 'delete', key }];
    this.#checkOpen();
    validateTxn([], [ops], this.#valueBytesMax);
    return this.#guard('delete', key, () => this.#applyTxn([], ops, [])).changes > 0;
  }

  async scan(prefix: string, opts?: ScanOptions): Promise<KvEntry[]> {
    this.#checkOpen();
    validatePrefix(prefix);
    validateScanOptions(opts);
    return this.#guard('scan', prefix, () => {
      const startAfter = opts?.startAfter;
      const from = startAfter !== undefined && compareKeys(startAfter, prefix) >= 0 ? startAfter : prefix;
      const exclude = startAfter ?? '';
      const limit = opts?.limit ?? -1; // SQLite: a negative LIMIT means no limit
      const upper = prefixUpperBound(prefix);
      const rows = upper === undefined ? this.#stmt.scanFrom.all(from, exclude, limit) : this.#stmt.scanBetween.all(from, upper, exclude, limit);
      return rows.map(toEntry);
    });
  }

  async txn(compares: readonly Compare[], success: readonly Op[], failure: readonly Op[] = []): Promise<TxnResult> {
    this.#checkOpen();
    validateTxn(compares, [success, failure], this.#valueBytesMax);
    const first = compares[0]?.key ?? success[0] ?? failure[0];
    const { succeeded, revision } = this.#guard('txn', describeTarget(first), () => this.#applyTxn(compares, success, failure));
    return { succeeded, revision };
  }

  async revision(): Promise<number> {
    this.#checkOpen();
    return this.#guard('revision', '', () => this.#currentRevision());
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#db.close();
  }

  #checkOpen(): void {
    if (this.#closed) throw closedError(`sqlite ${this.#path}`);
  }

  #read(key: string): KvEntry | undefined {
    const row = this.#stmt.get.get(key);
    return row === undefined ? undefined : toEntry(row);
  }

  #currentRevision(): number {
    const row = this.#stmt.revision.get();
    if (row === undefined) throw new Error('assertion failed: kv_state row missing');
    return row.revision;
  }

  #writePut(key: string, value: Uint8Array, revision: number): void {
    const prev = this.#stmt.get.get(key);
    this.#stmt.upsert.run(key, value, prev?.create_revision ?? revision, revision, (prev?.version ?? 0) + 1);
  }

  #deletePrefix(prefix: string): number {
    const upper = prefixUpperBound(prefix);
    const keys = upper === undefined ? this.#stmt.keysFrom.all(prefix) : this.#stmt.keysBetween.all(prefix, upper);
    for (const { key } of keys) this.#stmt.delete.run(key);
    return keys.length;
  }

  /** Maps SQLite failures (disk full, I/O error, busy) to a retriable IoFailed naming the key. */
  #guard<T>(op: string, target: string, fn: () => T): T {
    try {
      return fn();
    } catch (e) {
      if (e instanceof Database.SqliteError) {
        throw quiverError('IoFailed', `meta kv ${op} ${JSON.stringify(target)} failed: ${e.code} ${e.message}`, e);
      }
      throw e;
    }
  }
}

function toEntry(row: Row): KvEntry {
  // better-sqlite3 returns a Buffer it allocated for this row; view it as a plain Uint8Array.
  const v = row.value;
  return {
    key: row.key,
    value: new Uint8Array(v.buffer, v.byteOffset, v.byteLength),
    createRevision: row.create_revision,
    modRevision: row.mod_revision,
    version: row.version,
  };
}

function describeTarget(x: string | Op | undefined): string {
  if (x === undefined) return '';
  if (typeof x === 'string') return x;
  return x.type === 'deletePrefix' ? `${x.prefix}*` : x.key;
}

function errText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
