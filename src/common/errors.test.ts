import { describe, expect, it } from 'vitest';
import { codeName, ERRORS, legacyCodeOf, quiverError, type ErrorKind } from './errors.js';
import { statusOf } from '../proxy/status.js';

describe('error contract', () => {
  it('derives the deprecated error_code from the code as Milvus does', () => {
    expect(statusOf(quiverError('CollectionNotFound', 'x')).error_code).toBe('CollectionNotExists');
    expect(statusOf(quiverError('ServiceNotReady', 'x')).error_code).toBe('NotReadyServe');
    expect(statusOf(quiverError('PartitionNotFound', 'x')).error_code).toBe('MetaFailed');
    expect(statusOf(quiverError('IndexNotFound', 'x')).error_code).toBe('IndexNotExist');
    expect(statusOf(quiverError('CollectionSchemaMismatch', 'x')).error_code).toBe('SchemaMismatch');
    for (const kind of [
      'ParameterInvalid',
      'ParameterMissing',
      'ParameterTooLarge',
      'DataInvalid',
      'DimensionMismatch',
      'TopKTooLarge',
      'ExprInvalid',
    ] as const) {
      expect(statusOf(quiverError(kind, 'x')).error_code, kind).toBe('IllegalArgument');
    }
    expect(statusOf(quiverError('IoFailed', 'x')).error_code).toBe('UnexpectedError');
    expect(statusOf(quiverError('SnapshotNotFound', 'x')).error_code).toBe('UnexpectedError');
    expect(statusOf(quiverError('PrivilegeNotAuthenticated', 'x'))).toMatchObject({ code: 1400, error_code: 'UnexpectedError' });
    expect(statusOf(quiverError('PrivilegeNotPermitted', 'x'))).toMatchObject({ code: 1401, error_code: 'UnexpectedError' });
    expect(statusOf(new Error('boom')).error_code).toBe('UnexpectedError');
  });

  it('gives every kind with one code one deprecated code', () => {
    for (const [kind, e] of Object.entries(ERRORS)) {
      expect(quiverError(kind as ErrorKind, 'x').legacy).toBe(legacyCodeOf(e.code));
    }
  });

  it('names codes by their Milvus name for metric labels', () => {
    expect(codeName(0)).toBe('Success');
    expect(codeName(100)).toBe('CollectionNotFound');
    expect(codeName(1100)).toBe('ParameterInvalid');
    expect(codeName(5)).toBe('ServiceInternal');
    expect(codeName(1001)).toBe('IoFailed');
  });
});
