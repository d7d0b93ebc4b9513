import { quiverError } from '../common/errors.js';
import { checkNotFunctionField, parseFunctions } from '../text/functions.js';
import { indexDefinitionOf } from './index-definition.js';
import { DEFAULT_DB } from '../coord/types.js';
import { OK } from './status.js';
import { root } from './proto.js';
import { parseFieldSchema, validateName } from './schema-proto.js';
import { parseStructArrayField } from './struct-schema.js';
import type { CallContext, Handler, ProxyRoles } from './milvus-service.js';

/* eslint-disable @typescript-eslint/no-explicit-any */

/**
 * Schema changes through the SDK: `addCollectionField(s)` and `dropCollectionField` (both sent as
 * AlterCollectionSchema by SDK 3.x; the older AddCollectionField RPC carries the field as encoded bytes)
 * and `truncateCollection`. Validation of the field itself is the one CreateCollection uses
 * (schema-proto.ts); what an added field must satisfy on top is checked by the catalog service.
 */

const fieldSchemaType = root.lookupType('milvus.proto.schema.FieldSchema');
const DECODE = { longs: String, enums: String, bytes: Buffer, defaults: true, oneofs: true } as const;

function dbOf(req: any, ctx: CallContext): string {
  return (typeof req?.db_name === 'string' && req.db_name) || ctx.dbName || DEFAULT_DB;
}

function collectionName(req: any): string {
  const v = req?.collection_name;
  if (typeof v !== 'string' || v === '') throw quiverError('ParameterMissing', 'collection name is required');
  return v;
}

export function createSchemaChangeHandlers(roles: Pick<ProxyRoles, 'coord'>): Record<string, Handler> {
  const addField = async (req: any, ctx: CallContext, raw: any): Promise<void> => {
    if (!raw) throw quiverError('ParameterMissing', 'the schema of the field to add is required');
    if (raw.is_dynamic) throw quiverError('ParameterInvalid', `field ${raw.name} cannot be added as the dynamic field`);
    await roles.coord.addCollectionField(dbOf(req, ctx), collectionName(req), parseFieldSchema(raw, false));
  };

  /**
   * `addFunctionField`: one function (BM25) with its one output field and the output's index (its
   * `index_type` and params in the field info's `extra_params`, as the SDK sends them), validated in full
   * before anything changes, then committed together by the catalog.
   */
  const addFunctionField = async (req: any, ctx: CallContext, rawFns: any[], infos: any[]): Promise<void> => {
    if (rawFns.length !== 1 || infos.length !== 1) {
      throw quiverError('ParameterInvalid', `adding a function field takes one function and one output field, got ${rawFns.length} and ${infos.length}`);
    }
    const coll = roles.coord.catalog.resolveCollection(dbOf(req, ctx), collectionName(req));
    const info = infos[0];
    if (!info.field_schema) throw quiverError('ParameterMissing', 'the schema of the function output field is required');
    const field = parseFieldSchema(info.field_schema, false);
    const [fn] = parseFunctions(rawFns, [...coll.schema.fields, field]);
    const extra: Record<string, string> = {};
    for (const kv of info.extra_params ?? []) if (kv && typeof kv.key === 'string') extra[kv.key] = String(kv.value ?? '');
    if (!extra['index_type']) {
      throw quiverError('ParameterInvalid', `function field ${field.name} needs its index: give index_type (and metric_type BM25) in extra_params`);
    }
    // The definition is validated against the schema as it will be (the function in place).
    const proposed = { ...coll.schema, fields: [...coll.schema.fields, { ...field, fieldId: -1 }], functions: [...(coll.schema.functions ?? []), fn!] };
    const def = indexDefinitionOf(proposed, { ...field, fieldId: -1 }, extra);
    await roles.coord.addFunctionField(dbOf(req, ctx), coll.name, field, fn!, { name: info.index_name || field.name, def });
  };

  return {
    AlterCollectionSchema: async (req, ctx) => {
      const action = req.action ?? {};
      if (action.add_request) {
        const add = action.add_request;
        const infos: any[] = add.field_infos ?? [];
        if (infos.length === 0) throw quiverError('ParameterMissing', 'AlterCollectionSchema add_request names no field');
        if ((add.func_schema ?? []).length > 0) {
          await addFunctionField(req, ctx, add.func_schema, infos);
          return { alter_status: OK };
        }
        for (const info of infos) {
          if (info.index_name || (info.extra_params ?? []).length > 0) {
            throw quiverError(
              'ParameterInvalid',
              `adding field ${info.field_schema?.name} together with an index is not supported by Quiver; add the field, then create the index`,
            );
          }
        }
        for (const info of infos) await addField(req, ctx, info.field_schema);
        return { alter_status: OK };
      }
      if (action.drop_request) {
        const drop = action.drop_request;
        if (drop.function_name) {
          await roles.coord.dropFunctionField(dbOf(req, ctx), collectionName(req), String(drop.function_name));
          return { alter_status: OK };
        }
        const id = drop.identifier === 'field_id' || (!drop.field_name && drop.field_id && drop.field_id !== '0') ? Number(drop.field_id) : undefined;
        const name = id === undefined ? String(drop.field_name ?? '') : undefined;
        if (id === undefined && !name) throw quiverError('ParameterMissing', 'AlterCollectionSchema drop_request names no field');
        checkNotFunctionField(roles.coord.catalog.resolveCollection(dbOf(req, ctx), collectionName(req)).schema, { name, id });
        await roles.coord.dropCollectionField(dbOf(req, ctx), collectionName(req), { name, id });
        return { alter_status: OK };
      }
      throw quiverError('ParameterMissing', 'AlterCollectionSchema needs an add_request or a drop_request');
    },
    AddCollectionField: async (req, ctx) => {
      const bytes: Uint8Array | undefined = req.schema;
      if (!bytes || bytes.length === 0) throw quiverError('ParameterMissing', 'the schema of the field to add is required');
      let raw: any;
      try {
        raw = fieldSchemaType.toObject(fieldSchemaType.decode(bytes), DECODE);
      } catch (e) {
        throw quiverError('ParameterInvalid', `cannot decode the field schema: ${(e as Error).message}`);
      }
      await addField(req, ctx, raw);
      return OK;
    },
    AddCollectionStructField: async (req, ctx) => {
      const raw = req.struct_array_field_schema;
      if (!raw) throw quiverError('ParameterMissing', 'the schema of the struct array field to add is required');
      await roles.coord.addCollectionField(dbOf(req, ctx), collectionName(req), parseStructArrayField(raw, validateName));
      return OK;
    },
    TruncateCollection: async (req, ctx) => {
      await roles.coord.truncateCollection(dbOf(req, ctx), collectionName(req));
      return { status: OK };
    },
  };
}
