/** Walking a statechart through every state it reaches: the walk, and the task machine's events and inputs for it. */
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

/** A snapshot as the walk needs it. */
interface Walkable<E> {
  value: unknown;
  context: unknown;
  status: string;
  can(event: E): boolean;
}

/**
 * Breadth-first over the snapshots `events` reach from `initial` (at most ~200 distinct ones): `step` takes one
 * event a snapshot accepts and returns the snapshot after it.
 */
export function walkSnapshots<S extends Walkable<E>, E>(initial: S, events: readonly E[], step: (snapshot: S, event: E) => S): void {
  const seen = new Set<string>();
  let frontier = [initial];
  while (frontier.length > 0 && seen.size <= 200) {
    const next: S[] = [];
    for (const snapshot of frontier) {
      const key = JSON.stringify([snapshot.value, snapshot.context]);
      if (seen.has(key) || snapshot.status !== 'active') continue;
      seen.add(key);
      for (const event of events) if (snapshot.can(event)) next.push(step(snapshot, event));
    }
    frontier = next;
  }
}
