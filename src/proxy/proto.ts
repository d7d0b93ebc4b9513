import { createRequire } from 'node:module';
import * as grpc from '@grpc/grpc-js';
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

/**
 * Float vectors dominate insert and search traffic. protobufjs decodes a packed `repeated float` into a
 * JS array one number at a time and copies it again in toObject; a 5,000 x 128 batch is 640k numbers.
 * This codec reads the packed bytes into a Float32Array in one copy and writes one back in one copy.
 * Everything else about the message is unchanged (field 1, packed, wire type 2; unpacked floats, wire
 * type 5, are still accepted as the proto3 spec requires).
 */
function installFloatArrayCodec(): void {
  const FloatArray = root.lookupType('milvus.proto.schema.FloatArray');
  FloatArray.setup();
  const ctor = FloatArray.ctor as unknown as new () => { data: Float32Array | number[] };
  FloatArray.decode = ((input: protobuf.Reader | Uint8Array, length?: number) => {
    const reader = input instanceof protobuf.Reader ? input : protobuf.Reader.create(input);
    const end = length === undefined ? reader.len : reader.pos + length;
    const msg = new ctor();
    const parts: Float32Array[] = [];
    let loose: number[] | undefined;
    while (reader.pos < end) {
      const tag = reader.uint32();
      if (tag >>> 3 === 1 && (tag & 7) === 2) {
        const len = reader.uint32();
        const f = new Float32Array(len >>> 2);
        new Uint8Array(f.buffer).set(reader.buf.subarray(reader.pos, reader.pos + (len & ~3)));
        reader.pos += len;
        parts.push(f);
      } else if (tag >>> 3 === 1 && (tag & 7) === 5) {
        (loose ??= []).push(reader.float());
      } else {
        reader.skipType(tag & 7);
      }
    }
    if (loose) parts.push(Float32Array.from(loose));
    if (parts.length === 1) msg.data = parts[0]!;
    else {
      const total = parts.reduce((n, p) => n + p.length, 0);
      const all = new Float32Array(total);
      let off = 0;
      for (const p of parts) {
        all.set(p, off);
        off += p.length;
      }
      msg.data = all;
    }
    return msg;
  }) as unknown as typeof FloatArray.decode;
  FloatArray.encode = ((m: { data?: ArrayLike<number> }, w?: protobuf.Writer) => {
    const writer = w ?? protobuf.Writer.create();
    const data = m.data;
    if (data && data.length > 0) {
      const f = data instanceof Float32Array ? data : Float32Array.from(data);
      writer.uint32(10).bytes(new Uint8Array(f.buffer, f.byteOffset, f.byteLength));
    }
    return writer;
  }) as unknown as typeof FloatArray.encode;
  FloatArray.fromObject = ((d: { data?: ArrayLike<number> }) => {
    const msg = new ctor();
    msg.data = d.data instanceof Float32Array ? d.data : Float32Array.from(d.data ?? []);
    return msg;
  }) as unknown as typeof FloatArray.fromObject;
  FloatArray.toObject = ((m: { data?: Float32Array | number[] }) => ({ data: m.data ?? new Float32Array(0) })) as unknown as typeof FloatArray.toObject;
}
installFloatArrayCodec();

/**
 * Int64 columns and primary keys leave the server as decimal strings (the objects of `longs: String`).
 * protobufjs's fromObject turns each into a Long through Long.fromString, which was the largest single cost
 * of encoding a 1,000-row query answer. This writer keeps the values as given and encodes them as packed
 * varints directly: a string of at most 15 digits is exactly representable as a number (the fast path),
 * anything longer goes through protobufjs's own int64 conversion. Decoding is unchanged.
 */
function installLongArrayEncoder(): void {
  const LongArray = root.lookupType('milvus.proto.schema.LongArray');
  LongArray.setup();
  const ctor = LongArray.ctor as unknown as new () => { data: readonly (string | number | bigint)[] };
  LongArray.fromObject = ((d: { data?: readonly (string | number | bigint)[] }) => {
    const msg = new ctor();
    msg.data = d.data ?? [];
    return msg;
  }) as unknown as typeof LongArray.fromObject;
  LongArray.encode = ((m: { data?: readonly (string | number | bigint | protobuf.Long)[] }, w?: protobuf.Writer) => {
    const writer = w ?? protobuf.Writer.create();
    const data = m.data;
    if (data && data.length > 0) {
      writer.uint32(10).fork();
      for (const v of data) {
        if (typeof v === 'string' && v.length <= 15) writer.int64(Number(v));
        else if (typeof v === 'bigint') writer.int64(v.toString());
        else writer.int64(v);
      }
      writer.ldelim();
    }
    return writer;
  }) as unknown as typeof LongArray.encode;
  // A message made by the fromObject above holds strings / numbers / bigints, which protobufjs's generated
  // toObject would hand to Long.prototype.toString (the REST bridge round-trips replies through toObject).
  const toObject = LongArray.toObject.bind(LongArray);
  LongArray.toObject = ((m: { data?: readonly unknown[] }, o?: protobuf.IConversionOptions) => {
    const data = m.data ?? [];
    if (!data.some((v) => typeof v === 'string' || typeof v === 'bigint')) return toObject(m as protobuf.Message, o);
    const out = data.map((v) => {
      if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'bigint')
        return toObject({ data: [v] } as unknown as protobuf.Message, o)['data'][0];
      return o?.longs === String
        ? String(v)
        : o?.longs === Number
          ? Number(v)
          : (protobuf.util.Long as unknown as { fromString(s: string): unknown }).fromString(String(v));
    });
    return data.length > 0 || o?.arrays || o?.defaults ? { data: out } : {};
  }) as unknown as typeof LongArray.toObject;
}
installLongArrayEncoder();

const REQUEST_OPTIONS = { ...LOADER_OPTIONS };

/** gRPC service definitions built straight from our protobufjs root (so the FloatArray codec applies). */
function serviceDefinition(fullName: string): grpc.ServiceDefinition {
  const svc = root.lookupService(fullName);
  svc.resolveAll();
  const def: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(svc.methods)) {
    const req = m.resolvedRequestType!;
    const res = m.resolvedResponseType!;
    def[name] = {
      path: `/${fullName}/${name}`,
      requestStream: false,
      responseStream: false,
      requestSerialize: (o: unknown) => Buffer.from(req.encode(req.fromObject(o as Record<string, unknown>)).finish()),
      requestDeserialize: (b: Buffer) => req.toObject(req.decode(b), REQUEST_OPTIONS),
      responseSerialize: (o: unknown) => Buffer.from(res.encode(res.fromObject(o as Record<string, unknown>)).finish()),
      responseDeserialize: (b: Buffer) => res.toObject(res.decode(b), REQUEST_OPTIONS),
      originalName: name.charAt(0).toLowerCase() + name.slice(1),
    };
  }
  return def as grpc.ServiceDefinition;
}

export function loadServices(): { milvus: grpc.ServiceDefinition; telemetry: grpc.ServiceDefinition | undefined } {
  let telemetry: grpc.ServiceDefinition | undefined;
  try {
    telemetry = serviceDefinition('milvus.proto.milvus.ClientTelemetryService');
  } catch {
    telemetry = undefined;
  }
  return { milvus: serviceDefinition('milvus.proto.milvus.MilvusService'), telemetry };
}

const collectionSchemaType = root.lookupType('milvus.proto.schema.CollectionSchema');
const placeholderGroupType = root.lookupType('milvus.proto.common.PlaceholderGroup');

const TO_OBJECT = { longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true } as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function decodeCollectionSchema(bytes: Uint8Array): any {
  return collectionSchemaType.toObject(collectionSchemaType.decode(bytes), TO_OBJECT);
}

/** Placeholder group: query vectors; `values` holds one bytes entry per query. */
export function decodePlaceholderGroup(bytes: Uint8Array): { tag: string; type: string; values: Buffer[] }[] {
  const msg = placeholderGroupType.toObject(placeholderGroupType.decode(bytes), { ...TO_OBJECT, defaults: false }) as {
    placeholders?: { tag?: string; type?: string; values?: Buffer[] }[];
  };
  return (msg.placeholders ?? []).map((p) => ({ tag: p.tag ?? '', type: String(p.type ?? ''), values: p.values ?? [] }));
}
