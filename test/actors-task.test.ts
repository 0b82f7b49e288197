import { describe, expect, test } from 'vitest';
import { decideSubmit } from '../engine/task-steps.js';
import { initialTransition, transition } from 'xstate';
import { taskEventsOfEveryKind, taskWalkInputs, walkSnapshots } from './task-walk.js';
import {
  activeTaskStates,
  persistTask,
  taskFailReasons,
  taskMachine,
  taskStateOf,
  taskStepAccepted,
  taskTimerStates,
  terminalTaskStates,
  type TaskEvent,
  type TaskInput,
  type TaskSnapshot,
} from '../actors/task.machine.js';

interface Effect {
  type: string;
  params: unknown;
}

/** A durable timer a step arms (`xstate.raise` with a delay) or cancels (`xstate.cancel`). */
type Timer = { arm: string; event: string; delay: number } | { disarm: string };

/** The engine's view of a step: the next snapshot, the effects to run after committing it, and its timers. */
function stepWithTimers(snapshot: TaskSnapshot, event: TaskEvent): [TaskSnapshot, Effect[], Timer[]] {
  const [next, actions] = transition(taskMachine, snapshot, event);
  const timers: Timer[] = [];
  const effects: Effect[] = [];
  for (const action of actions as ReadonlyArray<{ type: string; params?: unknown }>) {
    const params = action.params as { id?: string; delay?: number; event?: { type: string }; sendId?: string };
    if (action.type === 'xstate.raise') timers.push({ arm: params.id!, event: params.event!.type, delay: params.delay! });
    else if (action.type === 'xstate.cancel') timers.push({ disarm: params.sendId! });
    else effects.push({ type: action.type, params: action.params });
  }
  return [next, effects, timers];
}

function step(snapshot: TaskSnapshot, event: TaskEvent): [TaskSnapshot, Effect[]] {
  const [next, effects] = stepWithTimers(snapshot, event);
  return [next, effects];
}

const limits = { timeoutMs: 60_000, startDelayMs: 0 };

function start(input: TaskInput = { pendingDeps: 0, maxRecoveries: 2, ...limits }): TaskSnapshot {
  const [snapshot, actions] = initialTransition(taskMachine, input);
  expect(actions).toEqual([]);
  return snapshot;
}

/** Drive a sequence of events, each of which must be accepted. */
function drive(snapshot: TaskSnapshot, ...events: TaskEvent[]): TaskSnapshot {
  let current = snapshot;
  for (const event of events) {
    expect(taskStepAccepted(current, event), `${event.type} in ${taskStateOf(current)}`).toBe(true);
    [current] = step(current, event);
  }
  return current;
}

/** What the engine does between steps: persist as JSON, restore from the row. */
function roundTrip(snapshot: TaskSnapshot): TaskSnapshot {
  const row = JSON.parse(JSON.stringify({ value: snapshot.value, context: snapshot.context }));
  return taskMachine.resolveState(row);
}

const ready = (input?: TaskInput) => drive(start(input), { type: 'SUBMIT' });
const running = (input?: TaskInput) => drive(ready(input), { type: 'CLAIM', node: 'node-a' });

describe('task machine', () => {
  test('exports its vocabulary', () => {
    expect(taskFailReasons).toEqual([
      'exit_code',
      'timeout',
      'output_limit',
      'dependency_failed',
      'spawn_error',
      'budget_exceeded',
      'crashed',
    ]);
    expect(terminalTaskStates).toEqual(['completed', 'failed', 'cancelled']);
    expect(activeTaskStates).toEqual(['waiting', 'ready', 'running', 'paused']);
  });

  test('starts queued with a fresh context', () => {
    const snapshot = start({ pendingDeps: 2, maxRecoveries: 3, ...limits });
    expect(snapshot.value).toBe('queued');
    expect(snapshot.context).toEqual({
      pendingDeps: 2,
      attempt: 0,
      recoveries: 0,
      maxRecoveries: 3,
      timeoutMs: 60_000,
      startDelayMs: 0,
      owner: null,
      failReason: null,
      error: null,
      exitCode: null,
      resumeAt: null,
      cancelReason: null,
      interrupted: false,
      limitPauses: 0,
      failedDependency: null,
    });
  });

  test('SUBMIT without dependencies goes to ready', () => {
    expect(ready().value).toBe('ready');
  });

  test('waits for every dependency, surviving a restore in between', () => {
    let snapshot = drive(start({ pendingDeps: 2, maxRecoveries: 1, ...limits }), { type: 'SUBMIT' });
    expect(snapshot.value).toBe('waiting');
    expect(taskStepAccepted(snapshot, { type: 'CLAIM', node: 'n' })).toBe(false);

    let effects: Effect[];
    [snapshot, effects] = step(snapshot, { type: 'DEPENDENCY_COMPLETED', dependencyId: 'task-a' });
    expect(snapshot.value).toBe('waiting');
    expect(snapshot.context.pendingDeps).toBe(1);
    expect(effects).toEqual([]);

    snapshot = roundTrip(snapshot);
    [snapshot] = step(snapshot, { type: 'DEPENDENCY_COMPLETED', dependencyId: 'task-b' });
    expect(snapshot.value).toBe('ready');
    expect(snapshot.context.pendingDeps).toBe(0);
  });

  test.each(['queued', 'waiting', 'ready', 'paused'] as const)('DEPENDENCY_FAILED in %s fails the task', (state) => {
    const reach: Record<typeof state, () => TaskSnapshot> = {
      queued: () => start({ pendingDeps: 1, maxRecoveries: 1, ...limits }),
      waiting: () => drive(start({ pendingDeps: 1, maxRecoveries: 1, ...limits }), { type: 'SUBMIT' }),
      ready: () => ready(),
      paused: () => drive(running(), { type: 'USAGE_LIMIT', resetAt: 5_000, at: 1_000 }),
    };
    const before = reach[state]();
    expect(before.value).toBe(state);
    const [after, effects] = step(before, { type: 'DEPENDENCY_FAILED', dependencyId: 'task-dep' });
    expect(after.value).toBe('failed');
    expect(after.status).toBe('done');
    expect(after.context).toMatchObject({
      failReason: 'dependency_failed',
      failedDependency: 'task-dep',
      error: 'dependency task-dep did not complete',
    });
    // No attempt ran, so there is nothing to checkpoint.
    expect(effects).toEqual([{ type: 'notifyDependants', params: { outcome: 'failed' } }]);
  });

  test('DEPENDENCY_FAILED is not accepted while running', () => {
    expect(taskStepAccepted(running(), { type: 'DEPENDENCY_FAILED', dependencyId: 'x' })).toBe(false);
  });

  test('CLAIM starts attempt 1 on the claiming node and arms its timeout', () => {
    const [snapshot, effects, timers] = stepWithTimers(ready(), { type: 'CLAIM', node: 'node-a' });
    expect(snapshot.value).toBe('running');
    expect(snapshot.context).toMatchObject({ attempt: 1, owner: 'node-a', interrupted: false });
    expect(effects).toEqual([{ type: 'startAgent', params: { attempt: 1, node: 'node-a', interrupted: false } }]);
    expect(timers).toEqual([{ arm: 'timeout', event: 'TIMEOUT', delay: 60_000 }]);
    expect(taskStepAccepted(snapshot, { type: 'CLAIM', node: 'node-b' })).toBe(false);
  });

  test('a clean exit with a result completes the task', () => {
    const [snapshot, effects, timers] = stepWithTimers(running(), { type: 'AGENT_EXITED', exitCode: 0, sawResult: true, isError: false });
    expect(snapshot.value).toBe('completed');
    expect(snapshot.status).toBe('done');
    expect(snapshot.context.owner).toBeNull();
    expect(effects).toEqual([
      { type: 'recordCheckpoint', params: { attempt: 1 } },
      { type: 'notifyDependants', params: { outcome: 'completed' } },
    ]);
    expect(timers).toEqual([{ disarm: 'timeout' }]);
  });

  test.each([
    [{ exitCode: 1, sawResult: true, isError: false }, 'agent exited with code 1'],
    [{ exitCode: 0, sawResult: false, isError: false }, 'agent exited without a result'],
    [{ exitCode: 0, sawResult: true, isError: true }, 'agent reported an error (is_error)'],
    [{ exitCode: null, sawResult: false, isError: false }, 'killed by a signal'],
  ])('exit %o fails with exit_code and a clear error', (exit, message) => {
    const [snapshot, effects] = step(running(), { type: 'AGENT_EXITED', ...exit });
    expect(snapshot.value).toBe('failed');
    expect(snapshot.context.failReason).toBe('exit_code');
    expect(snapshot.context.exitCode).toBe(exit.exitCode);
    expect(snapshot.context.owner).toBeNull();
    expect(snapshot.context.error).toContain(message);
    expect(effects.map((e) => e.type)).toEqual(['recordCheckpoint', 'notifyDependants']);
  });

  test('an exit error given by the agent is kept as is', () => {
    const [snapshot] = step(running(), {
      type: 'AGENT_EXITED',
      exitCode: 2,
      sawResult: true,
      isError: true,
      error: 'Credit balance is too low',
    });
    expect(snapshot.context.error).toBe('Credit balance is too low');
  });

  test.each(['output_limit', 'spawn_error', 'budget_exceeded'] as const)(
    'AGENT_FAILED %s fails with that reason',
    (reason) => {
      const [snapshot, effects] = step(running(), { type: 'AGENT_FAILED', reason, error: `it was ${reason}`, exitCode: 143 });
      expect(snapshot.value).toBe('failed');
      expect(snapshot.context).toMatchObject({ failReason: reason, error: `it was ${reason}`, exitCode: 143, owner: null });
      expect(effects.map((e) => e.type)).toEqual(['recordCheckpoint', 'notifyDependants']);
    },
  );

  test('AGENT_FAILED without an exit code records null', () => {
    const [snapshot] = step(running(), { type: 'AGENT_FAILED', reason: 'spawn_error', error: 'ENOENT' });
    expect(snapshot.context.exitCode).toBeNull();
  });

  test('a usage limit pauses until the reset (a durable timer) and holds the agent, across a restore', () => {
    let [snapshot, effects, timers] = stepWithTimers(running(), { type: 'USAGE_LIMIT', resetAt: 1_700_000_000_000, at: 1_699_999_000_000, limitType: 'five_hour' });
    expect(snapshot.value).toBe('paused');
    // Not a failure and not a recovery: only the count of limit pauses moves, and the next run resumes the session.
    expect(snapshot.context).toMatchObject({ resumeAt: 1_700_000_000_000, owner: null, limitPauses: 1, recoveries: 0, failReason: null });
    expect(effects).toEqual([{ type: 'holdAgent', params: { until: 1_700_000_000_000, limitType: 'five_hour' } }]);
    expect(timers).toEqual([{ disarm: 'timeout' }, { arm: 'resume', event: 'RESUME_DUE', delay: 1_000_000 }]);
    expect(taskStepAccepted(snapshot, { type: 'CLAIM', node: 'n' })).toBe(false);

    snapshot = roundTrip(snapshot);
    [snapshot, effects, timers] = stepWithTimers(snapshot, { type: 'RESUME_DUE' });
    expect(snapshot.value).toBe('ready');
    expect(snapshot.context.resumeAt).toBeNull();
    expect(effects).toEqual([]);
    expect(timers).toEqual([{ disarm: 'resume' }]);

    [snapshot, effects] = step(snapshot, { type: 'CLAIM', node: 'node-b' });
    expect(effects).toEqual([{ type: 'startAgent', params: { attempt: 2, node: 'node-b', interrupted: false } }]);
  });

  test.each(['queued', 'waiting', 'ready', 'paused'] as const)('CANCEL in %s cancels without a kill', (state) => {
    const reach: Record<typeof state, () => TaskSnapshot> = {
      queued: () => start(),
      waiting: () => drive(start({ pendingDeps: 1, maxRecoveries: 1, ...limits }), { type: 'SUBMIT' }),
      ready: () => ready(),
      paused: () => drive(running(), { type: 'USAGE_LIMIT', resetAt: 5_000, at: 1_000 }),
    };
    const [snapshot, effects] = step(reach[state](), { type: 'CANCEL', reason: 'not needed' });
    expect(snapshot.value).toBe('cancelled');
    expect(snapshot.status).toBe('done');
    expect(snapshot.context.cancelReason).toBe('not needed');
    expect(effects).toEqual([{ type: 'notifyDependants', params: { outcome: 'failed' } }]);
  });

  test('CANCEL while running kills the live attempt first', () => {
    const [snapshot, effects] = step(running(), { type: 'CANCEL' });
    expect(snapshot.value).toBe('cancelled');
    expect(snapshot.context).toMatchObject({ cancelReason: null, owner: null });
    expect(effects).toEqual([
      { type: 'killAgent', params: { attempt: 1, owner: 'node-a' } },
      { type: 'notifyDependants', params: { outcome: 'failed' } },
    ]);
  });

  test('TIMEOUT (the durable timer CLAIM armed) kills the live attempt and fails it with timeout', () => {
    const [snapshot, effects, timers] = stepWithTimers(running(), { type: 'TIMEOUT' });
    expect(snapshot.value).toBe('failed');
    expect(snapshot.context).toMatchObject({ failReason: 'timeout', error: 'timed out after 60000 ms', owner: null });
    expect(effects).toEqual([
      { type: 'killAgent', params: { attempt: 1, owner: 'node-a' } },
      { type: 'recordCheckpoint', params: { attempt: 1 } },
      { type: 'notifyDependants', params: { outcome: 'failed' } },
    ]);
    expect(timers).toEqual([{ disarm: 'timeout' }]);
    expect(taskStepAccepted(ready(), { type: 'TIMEOUT' })).toBe(false);
  });

  test('a pipeline step waits its start delay after its last dependency, on a timer', () => {
    const delayed = { pendingDeps: 1, maxRecoveries: 1, timeoutMs: 60_000, startDelayMs: 300_000 };
    let snapshot = drive(start(delayed), { type: 'SUBMIT' });
    let timers: Timer[];
    [snapshot, , timers] = stepWithTimers(snapshot, { type: 'DEPENDENCY_COMPLETED', dependencyId: 'a' });
    expect(snapshot.value).toBe('waiting');
    expect(snapshot.context.pendingDeps).toBe(0);
    expect(timers).toEqual([{ arm: 'start', event: 'START_DUE', delay: 300_000 }]);
    expect(taskStepAccepted(snapshot, { type: 'CLAIM', node: 'n' })).toBe(false);
    [snapshot, , timers] = stepWithTimers(roundTrip(snapshot), { type: 'START_DUE' });
    expect(snapshot.value).toBe('ready');
    expect(timers).toEqual([{ disarm: 'start' }]);
  });

  test('START_DUE before the last dependency is refused, and a cancel while delayed drops the timer', () => {
    const delayed = { pendingDeps: 2, maxRecoveries: 1, timeoutMs: 60_000, startDelayMs: 1_000 };
    const waiting = drive(start(delayed), { type: 'SUBMIT' }, { type: 'DEPENDENCY_COMPLETED', dependencyId: 'a' });
    expect(taskStepAccepted(waiting, { type: 'START_DUE' })).toBe(false);
    const delaying = drive(waiting, { type: 'DEPENDENCY_COMPLETED', dependencyId: 'b' });
    const [, , timers] = stepWithTimers(delaying, { type: 'CANCEL' });
    expect(timers).toEqual([{ disarm: 'start' }]);
  });

  test('RELEASE hands the run back without counting a recovery', () => {
    const [snapshot, effects] = step(running(), { type: 'RELEASE' });
    expect(snapshot.value).toBe('ready');
    expect(snapshot.context).toMatchObject({ owner: null, interrupted: true, recoveries: 0, attempt: 1 });
    expect(effects).toEqual([]);
    const [, next] = step(snapshot, { type: 'CLAIM', node: 'node-b' });
    expect(next).toEqual([{ type: 'startAgent', params: { attempt: 2, node: 'node-b', interrupted: true } }]);
  });

  test('a lost lease requeues until maxRecoveries, then fails as crashed; restores continue the count', () => {
    let snapshot = running({ pendingDeps: 0, maxRecoveries: 2, ...limits });
    let effects: Effect[];

    [snapshot, effects] = step(snapshot, { type: 'LEASE_LOST' });
    expect(snapshot.value).toBe('ready');
    expect(snapshot.context).toMatchObject({ recoveries: 1, owner: null, interrupted: true });
    expect(effects).toEqual([]);

    snapshot = roundTrip(drive(snapshot, { type: 'CLAIM', node: 'node-b' }));
    expect(snapshot.context).toMatchObject({ attempt: 2, owner: 'node-b' });
    [snapshot] = step(snapshot, { type: 'LEASE_LOST' });
    expect(snapshot.context.recoveries).toBe(2);

    snapshot = drive(snapshot, { type: 'CLAIM', node: 'node-c' });
    [snapshot, effects] = step(snapshot, { type: 'LEASE_LOST' });
    expect(snapshot.value).toBe('failed');
    expect(snapshot.context).toMatchObject({
      failReason: 'crashed',
      error: 'the runner died 3 times while running this task',
      attempt: 3,
      owner: null,
    });
    expect(effects.map((e) => e.type)).toEqual(['recordCheckpoint', 'notifyDependants']);
  });

  test('with maxRecoveries 0 the first lost lease is fatal', () => {
    const [snapshot] = step(running({ pendingDeps: 0, maxRecoveries: 0, ...limits }), { type: 'LEASE_LOST' });
    expect(snapshot.value).toBe('failed');
    expect(snapshot.context.error).toBe('the runner died once while running this task');
  });

  test('a full life persisted after every step ends where an unpersisted one does', () => {
    const events: TaskEvent[] = [
      { type: 'SUBMIT' },
      { type: 'DEPENDENCY_COMPLETED', dependencyId: 'a' },
      { type: 'CLAIM', node: 'n1' },
      { type: 'USAGE_LIMIT', resetAt: 10, at: 1 },
      { type: 'RESUME_DUE' },
      { type: 'CLAIM', node: 'n2' },
      { type: 'RELEASE' },
      { type: 'CLAIM', node: 'n3' },
      { type: 'AGENT_EXITED', exitCode: 0, sawResult: true, isError: false },
    ];
    let live = start({ pendingDeps: 1, maxRecoveries: 1, ...limits });
    let persisted = roundTrip(live);
    for (const event of events) {
      [live] = step(live, event);
      [persisted] = step(persisted, event);
      persisted = roundTrip(persisted);
    }
    expect(persistTask(persisted)).toEqual(persistTask(live));
    expect(persistTask(live)).toMatchObject({ value: 'completed', context: { attempt: 3, interrupted: true } });
  });

  test('events a state does not handle are rejected', () => {
    const cases: Array<[TaskSnapshot, TaskEvent]> = [
      [start(), { type: 'CLAIM', node: 'n' }],
      [start(), { type: 'DEPENDENCY_COMPLETED', dependencyId: 'a' }],
      [ready(), { type: 'AGENT_EXITED', exitCode: 0, sawResult: true, isError: false }],
      [ready(), { type: 'LEASE_LOST' }],
      [ready(), { type: 'RELEASE' }],
      [ready(), { type: 'RESUME_DUE' }],
      [ready(), { type: 'USAGE_LIMIT', resetAt: 1, at: 0 }],
      [running(), { type: 'SUBMIT' }],
      [running(), { type: 'RESUME_DUE' }],
      [drive(running(), { type: 'USAGE_LIMIT', resetAt: 1, at: 0 }), { type: 'AGENT_FAILED', reason: 'output_limit', error: 'x' }],
    ];
    for (const [snapshot, event] of cases) {
      expect(taskStepAccepted(snapshot, event), `${event.type} in ${taskStateOf(snapshot)}`).toBe(false);
    }
  });

  test('final states accept nothing, also after a restore', () => {
    const done = drive(running(), { type: 'AGENT_EXITED', exitCode: 0, sawResult: true, isError: false });
    const restored = roundTrip(done);
    expect(restored.status).toBe('done');
    const all: TaskEvent[] = [
      { type: 'SUBMIT' },
      { type: 'CANCEL' },
      { type: 'CLAIM', node: 'n' },
      { type: 'DEPENDENCY_FAILED', dependencyId: 'x' },
      { type: 'LEASE_LOST' },
    ];
    for (const event of all) expect(taskStepAccepted(restored, event)).toBe(false);
    const [same, effects] = step(restored, { type: 'CANCEL' });
    expect(same.value).toBe('completed');
    expect(effects).toEqual([]);
  });
});

describe('decideSubmit', () => {
  test('decides each submit from its own inputs and places its timers at its own time, however often the same inputs come', () => {
    const delayed = { timeoutMs: 60_000, startDelayMs: 5_000 };
    const first = decideSubmit(delayed, 0, null, 1_000);
    const second = decideSubmit(delayed, 0, null, 9_000);
    expect(first.snapshot.value).toBe('waiting');
    expect(first.timers).toEqual([expect.objectContaining({ kind: 'arm', dueAt: 6_000 })]);
    expect(second.timers).toEqual([expect.objectContaining({ kind: 'arm', dueAt: 14_000 })]);
    expect(decideSubmit({ timeoutMs: 60_000, startDelayMs: 0 }, 0, null, 1_000).snapshot.value).toBe('ready');
    expect(decideSubmit({ timeoutMs: 60_000, startDelayMs: 0 }, 2, null, 1_000)).toMatchObject({ snapshot: { value: 'waiting' }, set: { pendingDeps: 2 } });
    const failed = decideSubmit({ timeoutMs: 60_000, startDelayMs: 0 }, 1, 'task-upstream', 2_000);
    expect(failed).toMatchObject({ snapshot: { value: 'failed' }, set: { endedAt: 2_000, failReason: 'dependency_failed' } });
    expect(decideSubmit({ timeoutMs: 60_000, startDelayMs: 0 }, 1, 'task-other', 3_000).set.error).toContain('task-other');
    // Each submit has a context of its own: a step that changed one could not change another task's.
    expect(first.snapshot.context).not.toBe(second.snapshot.context);
    expect(first.snapshot.context).toEqual(second.snapshot.context);
  });
});

describe('taskTimerStates', () => {
  test('every step that arms a timer enters one of them, and each of them is entered by one', () => {
    const arming = new Set<string>();
    for (const input of taskWalkInputs) {
      walkSnapshots(initialTransition(taskMachine, input)[0], taskEventsOfEveryKind, (snapshot, event) => {
        const [after, actions] = transition(taskMachine, snapshot, event);
        const arms = actions.some((action) => action.type === 'xstate.raise' && (action.params as { delay?: unknown }).delay !== undefined);
        if (arms) {
          expect(taskTimerStates.has(String(after.value)), `${String(snapshot.value)} + ${event.type} arms a timer entering ${String(after.value)}`).toBe(true);
          arming.add(String(after.value));
        }
        return after;
      });
    }
    expect([...arming].sort()).toEqual([...taskTimerStates].sort());
  });
});
