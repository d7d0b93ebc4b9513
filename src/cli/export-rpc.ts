import * as grpc from '@grpc/grpc-js';
import { root } from '../proxy/proto.js';
import { grpcAccess, type ClientAccess } from './client-access.js';

/**
 * ExportSnapshot and RestoreExternalSnapshot through raw gRPC with the SDK's own proto (the SDK 3.0.6
 * has no methods for them); `server` is a port on 127.0.0.1 or a `host:port`. Answers the decoded reply
 * (status, snapshot_metadata_uri / job_id).
 */
export async function rawRpc(
  server: number | string,
  method: 'ExportSnapshot' | 'RestoreExternalSnapshot',
  obj: Record<string, unknown>,
  access?: ClientAccess,
): Promise<RawReply> {
  const { credentials, metadata, options } = grpcAccess(access);
  const Req = root.lookupType(`milvus.proto.milvus.${method}Request`);
  const Res = root.lookupType(`milvus.proto.milvus.${method}Response`);
  const client = new grpc.Client(typeof server === 'number' ? `127.0.0.1:${server}` : server, credentials, options);
  try {
    const reply = await new Promise<Buffer>((resolve, reject) =>
      client.makeUnaryRequest(
        `/milvus.proto.milvus.MilvusService/${method}`,
        (x: Buffer) => x,
        (x: Buffer) => x,
        Buffer.from(Req.encode(Req.fromObject(obj)).finish()),
        metadata,
        (e, r) => (e ? reject(e) : resolve(r!)),
      ),
    );
    const o = Res.toObject(Res.decode(reply), { longs: String, defaults: true }) as RawReply;
    return { ...o, status: { code: o.status?.code ?? 0, reason: o.status?.reason ?? '' } };
  } finally {
    client.close();
  }
}

export interface RawReply {
  readonly status: { readonly code: number; readonly reason: string };
  readonly snapshot_metadata_uri?: string;
  readonly job_id?: string;
}

export const exportSnapshot = (
  server: number | string,
  req: { collection_name: string; name: string; target_s3_path: string; external_spec?: string; db_name?: string },
  access?: ClientAccess,
) => rawRpc(server, 'ExportSnapshot', req, access);

export const restoreExternal = (
  server: number | string,
  req: { target_collection_name: string; snapshot_metadata_uri: string; external_spec?: string; db_name?: string },
  access?: ClientAccess,
) => rawRpc(server, 'RestoreExternalSnapshot', req, access);
