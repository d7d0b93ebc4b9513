import { describe, expect, it } from 'vitest';
import { jobProgress, RestoreProgress } from './progress.js';
import {
  assertJobTransition,
  assertTaskTransition,
  COPY_JOB_STATES,
  isTerminalJobState,
  isTerminalTaskState,
  publicJobState,
  JOB_TRANSITIONS,
  TASK_TRANSITIONS,
  type CopyJob,
  type CopyJobState,
  type CopyTaskState,
} from './types.js';

const JOB_STATES: readonly CopyJobState[] = COPY_JOB_STATES;
const TASK_STATES: readonly CopyTaskState[] = ['Pending', 'InProgress', 'Completed', 'Failed'];

describe('copy job transitions', () => {
  const legal = new Set([
    'Pending>Executing', // (1)
    'Pending>RollingBack', // (2)
    'Executing>Publishing', // (3)
    'Executing>RollingBack', // (4)
    'Publishing>Completed', // (5)
    'Publishing>RollingBack', // (6)
    'RollingBack>Failed', // (7)
  ]);
  for (const from of JOB_STATES) {
    for (const to of JOB_STATES) {
      const key = `${from}>${to}`;
      it(`${from} → ${to} is ${legal.has(key) ? 'legal' : 'illegal'}`, () => {
        if (legal.has(key)) expect(() => assertJobTransition(from, to)).not.toThrow();
        else expect(() => assertJobTransition(from, to)).toThrow(`illegal copy job transition ${from} → ${to}`);
      });
    }
  }
  it('terminal states are exactly Completed and Failed', () => {
    expect(JOB_STATES.filter(isTerminalJobState)).toEqual(['Completed', 'Failed']);
    expect(Object.keys(JOB_TRANSITIONS).sort()).toEqual([...JOB_STATES].sort());
  });
  it('maps to the public RPC states: Publishing and RollingBack are still Executing', () => {
    expect(JOB_STATES.map(publicJobState)).toEqual([
      'RestoreSnapshotPending',
      'RestoreSnapshotExecuting',
      'RestoreSnapshotExecuting',
      'RestoreSnapshotCompleted',
      'RestoreSnapshotExecuting',
      'RestoreSnapshotFailed',
    ]);
  });
});

describe('copy task transitions', () => {
  const legal = new Set(['Pending>InProgress', 'Pending>Failed', 'InProgress>Completed', 'InProgress>Failed', 'InProgress>Pending']);
  for (const from of TASK_STATES) {
    for (const to of TASK_STATES) {
      const key = `${from}>${to}`;
      it(`${from} → ${to} is ${legal.has(key) ? 'legal' : 'illegal'}`, () => {
        if (legal.has(key)) expect(() => assertTaskTransition(from, to)).not.toThrow();
        else expect(() => assertTaskTransition(from, to)).toThrow(`illegal copy task transition ${from} → ${to}`);
      });
    }
  }
  it('terminal states are exactly Completed and Failed', () => {
    expect(TASK_STATES.filter(isTerminalTaskState)).toEqual(['Completed', 'Failed']);
    expect(Object.keys(TASK_TRANSITIONS).sort()).toEqual([...TASK_STATES].sort());
  });
});

describe('jobProgress', () => {
  const job = (state: CopyJobState, copiedSegments: number, totalSegments: number): CopyJob => ({ state, copiedSegments, totalSegments }) as CopyJob;

  it('is copied / total as a whole percentage, rounded down', () => {
    expect(jobProgress(job('Executing', 0, 3))).toBe(0);
    expect(jobProgress(job('Executing', 1, 3))).toBe(33);
    expect(jobProgress(job('Executing', 2, 3))).toBe(66);
    expect(RestoreProgress.jobProgress(job('Executing', 50, 200))).toBe(25);
  });
  it('is 100 only when Completed (an empty job included)', () => {
    expect(jobProgress(job('Completed', 0, 0))).toBe(100);
    expect(jobProgress(job('Completed', 3, 3))).toBe(100);
    expect(jobProgress(job('Pending', 0, 0))).toBe(0);
    // Everything copied but not yet published: not done.
    expect(jobProgress(job('Executing', 3, 3))).toBe(99);
  });
  it('a failed job keeps the progress it had', () => {
    expect(jobProgress(job('Failed', 1, 4))).toBe(25);
  });
});
