/**
 * engine/pure-transition.ts shares one inert actor scope per machine; XState's own `transition()` builds one per
 * call. Both must decide alike: the same snapshots and the same actions, step after step, for the task and the
 * schedule machine, through every event in every state a walk reaches.
 */
import { describe, expect, it } from 'vitest';
import { initialTransition, transition, type AnyStateMachine } from 'xstate';
import { scheduleMachine, type ScheduleEvent } from '../actors/schedule.machine.js';
import { taskMachine } from '../actors/task.machine.js';
import { pureTransitions } from '../engine/pure-transition.js';
import { taskEventsOfEveryKind, taskWalkInputs, walkSnapshots } from './task-walk.js';

/** What a step decided, without the actor each action names (XState's fresh one, or the shared one). */
function decided([snapshot, actions]: [{ value: unknown; context: unknown; status: string }, ReadonlyArray<{ type: string; params?: unknown }>]) {
  return { value: snapshot.value, context: snapshot.context, status: snapshot.status, actions: actions.map((action) => ({ type: action.type, params: action.params })) };
}

/** Breadth-first over the states `events` reach from the initial snapshot, comparing every step on the way. */
function walkBoth<T extends { type: string }>(machine: AnyStateMachine, input: unknown, events: readonly T[]): number {
  const pure = pureTransitions(machine);
  const ours = pure.initialTransition(input);
  expect(decided(ours)).toEqual(decided(initialTransition(machine, input)));
  let steps = 0;
  walkSnapshots(ours[0], events, (snapshot, event) => {
    const mine = pure.transition(snapshot, event);
    expect(decided(mine), `${JSON.stringify(snapshot.value)} + ${event.type}`).toEqual(decided(transition(machine, snapshot, event)));
    steps++;
    return mine[0];
  });
  return steps;
}

describe('pureTransitions', () => {
  it('decides every task step as XState’s transition() does', () => {
    for (const input of taskWalkInputs) {
      expect(walkBoth(taskMachine, input, taskEventsOfEveryKind)).toBeGreaterThan(20);
    }
  });

  it('decides every schedule step as XState’s transition() does', () => {
    const events: ScheduleEvent[] = [
      { type: 'FIRE', at: 60_000, started: true, nextRunAt: 120_000 },
      { type: 'FIRE', at: 60_000, started: false, nextRunAt: null },
      { type: 'EXPIRE' },
      { type: 'PAUSE' },
      { type: 'RESUME', at: 90_000 },
    ];
    for (const input of [
      { at: 0, nextRunAt: 60_000, oneTime: false, maxRuns: 3, expiresAt: 500_000 },
      { at: 0, nextRunAt: null, oneTime: true, maxRuns: null, expiresAt: null },
    ]) {
      expect(walkBoth(scheduleMachine, input, events)).toBeGreaterThan(5);
    }
  });
});
