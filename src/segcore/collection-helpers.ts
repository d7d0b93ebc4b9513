import { quiverError } from '../common/errors.js';
import type { CollectionRecord, PartitionRecord } from '../coord/records.js';
import type { ExprSchema } from '../expr/index.js';
import { analyzerOf, matchEnabled } from '../text/functions.js';

/** Small pure helpers over a collection record that every role needs. */

export const DEFAULT_PARTITION = '_default';

/** A partition of a collection by name (`_default` when empty). */
export function partitionOf(coll: CollectionRecord, name: string | undefined): PartitionRecord {
  const n = name || DEFAULT_PARTITION;
  const p = coll.partitions.find((x) => x.name === n);
  if (!p) throw quiverError('PartitionNotFound', `partition not found[partition=${n}][collection=${coll.name}]`);
  return p;
}

/** The schema the expression compiler sees (the dynamic field is addressed through `$meta`). */
export function exprSchema(coll: CollectionRecord): ExprSchema {
  return {
    fields: coll.schema.fields
      .filter((f) => !f.isDynamic)
      .map((f) => ({
        name: f.name,
        dataType: f.dataType,
        elementType: f.elementType,
        nullable: f.nullable,
        isPrimaryKey: f.isPrimaryKey,
        textMatch: matchEnabled(f) ? analyzerOf(f) : undefined,
      })),
    dynamicField: coll.schema.enableDynamicField,
    // Timestamptz literals without an offset are read in the collection's zone (proxy/timezone-output.ts).
    timezone: coll.properties['collection.timezone'] || undefined,
  };
}

/** exprSchema with the zone of one read (the request's `timezone`, resolved by the proxy) when given. */
export function exprSchemaAt(coll: CollectionRecord, timezone: string | undefined): ExprSchema {
  const s = exprSchema(coll);
  return timezone ? { ...s, timezone } : s;
}
