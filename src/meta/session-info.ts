/**
 * What both session stores share: the node-id counter on a MetaKV-shaped compare-and-set, and the
 * check of a session record read back (assert right after reading: a record some other version or a
 * stray writer left must not turn into a half-valid node).
 */

import { quiverError } from '../common/errors.js';
import type { NodeSessionInfo, SessionRole } from './sessions.js';

export const SESSION_ROLES: readonly SessionRole[] = ['datanode'];

/** Largest node id: ids stay exact in JSON numbers and in a u32 field of the task protocol. */
export const NODE_ID_MAX = 0xffff_ffff;

/** Validates a session record (the JSON value of `session/{role}-{id}`) whose key named `nodeId`. */
export function parseSessionInfo(where: string, nodeId: number, value: unknown): NodeSessionInfo {
  const v = value as Partial<Record<keyof NodeSessionInfo, unknown>> | null;
  const bad = (why: string): Error => quiverError('ServiceInternal', `session ${where}: ${why}: ${JSON.stringify(value)?.slice(0, 200)}`);
  if (typeof v !== 'object' || v === null) throw bad('not an object');
  if (v.nodeId !== nodeId) throw bad(`nodeId does not match the key's ${nodeId}`);
  if (typeof v.role !== 'string' || !SESSION_ROLES.includes(v.role as SessionRole)) throw bad('unknown role');
  if (typeof v.address !== 'string' || v.address === '') throw bad('no address');
  if (typeof v.metricsAddress !== 'string') throw bad('no metricsAddress');
  if (typeof v.slots !== 'number' || !Number.isSafeInteger(v.slots) || v.slots < 0) throw bad('slots is not a non-negative integer');
  if (typeof v.startedAtMs !== 'number' || !Number.isFinite(v.startedAtMs)) throw bad('no startedAtMs');
  if (typeof v.version !== 'string') throw bad('no version');
  return {
    nodeId,
    role: v.role as SessionRole,
    address: v.address,
    metricsAddress: v.metricsAddress,
    slots: v.slots,
    startedAtMs: v.startedAtMs,
    version: v.version,
  };
}

/** Checks what a node registers with before anything is written. */
export function validateRegistration(info: Omit<NodeSessionInfo, 'nodeId'>, ttlMs: number): void {
  if (!SESSION_ROLES.includes(info.role)) throw quiverError('ParameterInvalid', `session: unknown role ${JSON.stringify(info.role)}`);
  if (info.address === '') throw quiverError('ParameterInvalid', 'session: a node registers with its task address');
  if (!Number.isSafeInteger(info.slots) || info.slots < 0)
    throw quiverError('ParameterInvalid', `session: slots ${info.slots} must be a non-negative integer`);
  if (!Number.isSafeInteger(ttlMs) || ttlMs < 1_000) throw quiverError('ParameterInvalid', `session: lease TTL ${ttlMs} ms must be an integer >= 1000`);
}

/** The id following a counter value read back (assert: the counter is what we wrote). */
export function nextNodeId(where: string, current: string | undefined): number {
  if (current === undefined) return 1;
  const n = Number(current);
  if (!/^\d+$/.test(current) || !Number.isSafeInteger(n) || n < 1) {
    throw quiverError('ServiceInternal', `session ${where}: node id counter holds ${JSON.stringify(current.slice(0, 40))}`);
  }
  if (n >= NODE_ID_MAX) throw quiverError('ServiceInternal', `session ${where}: node ids exhausted (${n})`);
  return n + 1;
}

/** Sorts by node id and drops nothing: list/watch answer in ascending id order. */
export function byNodeId(nodes: NodeSessionInfo[]): NodeSessionInfo[] {
  return nodes.sort((a, b) => a.nodeId - b.nodeId);
}

/** Conflicts on the id counter before giving up; each lost race means another node got an id. */
export const ID_ATTEMPTS_MAX = 100;
