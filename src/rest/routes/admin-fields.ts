import { z } from 'zod';

/**
 * Body fields shared by the users, roles, import and snapshot routes. The gRPC handlers validate names
 * again (one set of rules for both doors); these schemas refuse early what can never be a name, above all
 * anything with a path character, so no such value reaches a handler, a meta key or an object key.
 */

const NAME_MAX = 255;

/** A Milvus object name (collection, snapshot, database, privilege group): a letter or `_`, then letters, digits, `_`. */
export function objectName(what: string): z.ZodString {
  return z
    .string({ required_error: `${what} is required`, invalid_type_error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(NAME_MAX, `${what} must be at most ${NAME_MAX} characters`)
    .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, `${what} may contain only letters, digits and underscores, and must not start with a digit`);
}

/**
 * A user or role name. Milvus allows a little more than object names here (`-` and `.`), never a path
 * separator, whitespace, or `..`.
 */
export function principalName(what: string): z.ZodEffects<z.ZodString> {
  return z
    .string({ required_error: `${what} is required`, invalid_type_error: `${what} must be a string` })
    .min(1, `${what} must not be empty`)
    .max(NAME_MAX, `${what} must be at most ${NAME_MAX} characters`)
    .regex(/^[A-Za-z_][A-Za-z0-9_.-]*$/, `${what} may contain only letters, digits, '_', '-' and '.', and must start with a letter or '_'`)
    .refine((s) => !s.includes('..'), `${what} must not contain '..'`);
}

/** An object name in a grant: a name or the wildcard `*`. */
export function grantTarget(what: string): z.ZodUnion<[z.ZodLiteral<'*'>, z.ZodString]> {
  return z.union([z.literal('*'), objectName(what)]);
}

/** `dbName` is optional everywhere: the REST door defaults it to `default` (RestCallContext.dbName). */
export const dbNameField = objectName('dbName').optional();

/**
 * A positive int64 id (job id, pin id). JSON numbers lose precision above 2^53, so Milvus's REST takes
 * them as decimal strings; a safe integer number is accepted too. `String(id)` is the decimal string the
 * gRPC request carries (int64 fields are strings in our proto decoding).
 */
export function int64Id(what: string): z.ZodUnion<[z.ZodEffects<z.ZodString>, z.ZodNumber]> {
  const message = `${what} must be a positive decimal int64`;
  return z.union([
    z
      .string({ required_error: `${what} is required` })
      .regex(/^[1-9][0-9]{0,18}$/, message)
      // zod runs refinements after a failed regex too: only a string of digits may reach BigInt.
      .refine((s) => !/^[0-9]+$/.test(s) || BigInt(s) <= 9223372036854775807n, message),
    z
      .number({ required_error: `${what} is required` })
      .int(message)
      .positive(message)
      .max(Number.MAX_SAFE_INTEGER, message),
  ]);
}

/** A non-negative whole number of seconds (TTLs, protection windows), bounded so it fits an int64 of milliseconds. */
export function seconds(what: string): z.ZodNumber {
  return z
    .number({ invalid_type_error: `${what} must be a number` })
    .int(`${what} must be whole seconds`)
    .min(0, `${what} must not be negative`)
    .max(1e12);
}
