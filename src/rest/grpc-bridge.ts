import type protobuf from 'protobufjs';
import { quiverError, QuiverError, legacyCodeOf } from '../common/errors.js';
import { LOADER_OPTIONS, root } from '../proxy/proto.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * What makes a REST call the same call as a gRPC one. A route builds a request in the form a gRPC client
 * would send (enum names, int64 as decimal strings, bytes as Buffers); the bridge passes it through the
 * MilvusService request type's fromObject/toObject with the gRPC server's decoding options, so the handler
 * sees exactly what it would have decoded from the wire (defaults filled in, oneof members named, unknown
 * keys dropped). Replies take the way back the gRPC server's serializer takes, so routes read one shape.
 */

interface MethodTypes {
  readonly request: protobuf.Type;
  readonly response: protobuf.Type;
  /** Where the reply carries its Status: the reply itself, `status`, or `alter_status`. */
  readonly statusAt: 'self' | 'status' | 'alter_status';
}

let methods: Map<string, MethodTypes> | undefined;

function methodTypes(): Map<string, MethodTypes> {
  if (methods) return methods;
  const svc = root.lookupService('milvus.proto.milvus.MilvusService');
  svc.resolveAll();
  const out = new Map<string, MethodTypes>();
  for (const [name, m] of Object.entries(svc.methods)) {
    const response = m.resolvedResponseType!;
    const statusAt = response.fullName === '.milvus.proto.common.Status' ? 'self' : response.fields['alter_status'] ? 'alter_status' : ('status' as const);
    out.set(name, { request: m.resolvedRequestType!, response, statusAt });
  }
  methods = out;
  return out;
}

export function hasMethod(method: string): boolean {
  return methodTypes().has(method);
}

/** The request as the gRPC server would have decoded it. */
export function asDecodedRequest(method: string, req: Record<string, unknown>): any {
  const t = methodTypes().get(method);
  if (!t) throw quiverError('ServiceUnimplemented', `${method} is not a MilvusService method`);
  return t.request.toObject(t.request.fromObject(req), LOADER_OPTIONS);
}

/** The reply as a gRPC client would have decoded it. */
export function asDecodedReply(method: string, reply: unknown): any {
  const t = methodTypes().get(method)!;
  return t.response.toObject(t.response.fromObject((reply ?? {}) as Record<string, unknown>), LOADER_OPTIONS);
}

/** A QuiverError-equivalent of a non-Success reply status (so REST answers the code gRPC would), else undefined. */
export function replyError(method: string, reply: any): QuiverError | undefined {
  const t = methodTypes().get(method)!;
  const st = t.statusAt === 'self' ? reply : reply?.[t.statusAt];
  if (!st) return undefined;
  const code = Number(st.code ?? 0);
  const legacy = String(st.error_code ?? 'Success');
  if (code === 0 && (legacy === 'Success' || legacy === '0')) return undefined;
  return new StatusError(code === 0 ? 5 : code, String(st.reason ?? 'request failed'));
}

/**
 * A failure carried by a reply Status rather than thrown: same code and message as the Status, so the REST
 * door answers exactly what the gRPC door put in the reply.
 */
export class StatusError extends QuiverError {
  constructor(code: number, reason: string) {
    super('Undefined', reason);
    Object.defineProperty(this, 'code', { value: code });
    Object.defineProperty(this, 'legacy', { value: legacyCodeOf(code) });
  }
}
