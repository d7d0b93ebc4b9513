/* eslint-disable @typescript-eslint/no-explicit-any */
import type { z } from 'zod';

/**
 * One RESTful API v2 endpoint (`POST /v2/vectordb/<path>`). Routes never touch storage or roles: they
 * translate the JSON body into the MilvusService request a gRPC client would send, call that method
 * through `call` (which authenticates, authorizes as that gRPC method, runs the same handler, and
 * throws a QuiverError when the reply's status is not Success), and shape the reply's `data`.
 * The server answers `{code: 0, data}` on success and `{code, message}` with the Milvus code otherwise,
 * as Milvus's REST v2 does.
 */
export interface RestCallContext {
  /** `dbName` from the body when present, else 'default'. */
  readonly dbName: string;
  readonly requestId: string;
  /**
   * The `Accept-Type-Allow-Int64: true` header: int64 values (and Int64 primary keys) answered as JSON
   * numbers; otherwise as decimal strings, as Milvus does, since JSON numbers lose precision past 2^53.
   */
  readonly int64AsNumber?: boolean;
}

/**
 * `internal`: a lookup a route makes on the caller's behalf before the call it authorizes (Milvus's REST
 * reads the collection schema from the proxy's cache to build an insert or a search); honoured only for
 * DescribeCollection, and its reply never goes to the client as such.
 */
export type RestCall = (method: string, req: Record<string, unknown>, opts?: { readonly internal?: boolean }) => Promise<any>;

export interface RestRoute<B = any> {
  /** Path under /v2/vectordb/, e.g. 'collections/create' or 'snapshots/create'. */
  readonly path: string;
  /** Validates the body; a failure answers code 1100 naming the bad field. */
  readonly body: z.ZodType<B>;
  /** Returns the reply's `data` (undefined for none). */
  run(body: B, call: RestCall, ctx: RestCallContext): Promise<unknown>;
}
