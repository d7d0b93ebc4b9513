import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
import { fromJSON } from '@grpc/proto-loader';
import protobuf from 'protobufjs';

/**
 * The Milvus protocol definitions, taken from the proto JSON bundled in the official SDK package
 * (`@zilliz/milvus2-sdk-node`, milvus-proto 3.0), so the server and its clients agree byte for byte.
 */
const require = createRequire(import.meta.url);
// eslint-disable-next-line @typescript-eslint/no-explicit-any
const protoJson = (require('@zilliz/milvus2-sdk-node/dist/milvus/proto-json/milvus.js') as { default: any }).default;

/** Decoding options matching what the SDK itself uses. */
export const LOADER_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

export const root = protobuf.Root.fromJSON(protoJson);

export function loadServices(): { milvus: grpc.ServiceDefinition; telemetry: grpc.ServiceDefinition | undefined } {
  const def = fromJSON(protoJson, LOADER_OPTIONS);
  const pkg = grpc.loadPackageDefinition(def) as unknown as {
    milvus: { proto: { milvus: Record<string, { service: grpc.ServiceDefinition } | undefined> } };
  };
  const ns = pkg.milvus.proto.milvus;
  const milvus = ns['MilvusService'];
  if (!milvus) throw new Error('MilvusService missing from the SDK proto');
  return { milvus: milvus.service, telemetry: ns['ClientTelemetryService']?.service };
}

const collectionSchemaType = root.lookupType('milvus.proto.schema.CollectionSchema');
const fieldSchemaType = root.lookupType('milvus.proto.schema.FieldSchema');
const placeholderGroupType = root.lookupType('milvus.proto.common.PlaceholderGroup');

const TO_OBJECT = { longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true } as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function decodeCollectionSchema(bytes: Uint8Array): any {
  return collectionSchemaType.toObject(collectionSchemaType.decode(bytes), TO_OBJECT);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function decodeFieldSchema(bytes: Uint8Array): any {
  return fieldSchemaType.toObject(fieldSchemaType.decode(bytes), TO_OBJECT);
}

/** Placeholder group: query vectors; `values` holds one bytes entry per query. */
export function decodePlaceholderGroup(bytes: Uint8Array): { tag: string; type: string; values: Buffer[] }[] {
  const msg = placeholderGroupType.toObject(placeholderGroupType.decode(bytes), { ...TO_OBJECT, defaults: false }) as {
    placeholders?: { tag?: string; type?: string; values?: Buffer[] }[];
  };
  return (msg.placeholders ?? []).map((p) => ({ tag: p.tag ?? '', type: String(p.type ?? ''), values: p.values ?? [] }));
}

export function serviceMethodNames(def: grpc.ServiceDefinition): string[] {
  return Object.values(def).map((m) => (m as { path: string }).path.split('/').pop()!);
}
