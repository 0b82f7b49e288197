/** Events and inputs that walk the task machine through every state it has (shared by the tests that walk it). */
import type { TaskEvent } from '../actors/task.machine.js';

/** One event of each kind the task machine takes, failures and successes both. */
export const taskEventsOfEveryKind: readonly TaskEvent[] = [
  { type: 'SUBMIT' },
  { type: 'DEPENDENCY_COMPLETED', dependencyId: 'a' },
  { type: 'DEPENDENCY_FAILED', dependencyId: 'a', rootTaskId: 'r' },
  { type: 'START_DUE' },
  { type: 'CLAIM', node: 'n1' },
  { type: 'AGENT_EXITED', exitCode: 0, sawResult: true, isError: false },
  { type: 'AGENT_EXITED', exitCode: 1, sawResult: false, isError: false },
  { type: 'AGENT_FAILED', reason: 'spawn_error', error: 'no such file' },
  { type: 'USAGE_LIMIT', resetAt: 5_000, at: 1_000, limitType: 'five_hour' },
  { type: 'RESUME_DUE' },
  { type: 'TIMEOUT' },
  { type: 'RELEASE' },
  { type: 'LEASE_LOST' },
  { type: 'CANCEL', reason: 'stop' },
];

/** Task inputs with and without dependencies, retries and a start delay. */
export const taskWalkInputs = [
  { pendingDeps: 0, maxRecoveries: 2, timeoutMs: 60_000, startDelayMs: 0 },
  { pendingDeps: 1, maxRecoveries: 0, timeoutMs: 1_000, startDelayMs: 500 },
  { pendingDeps: 0, maxRecoveries: 0, timeoutMs: 1_000, startDelayMs: 500 },
] as const;
