/**
 * The statecharts' actions are the only source of effects (DESIGN §1), so every action a machine can ask for
 * must have a handler in every kind of process that runs that machine. Built-in XState actions (assign, raise,
 * cancel, enqueueActions) are the machine's own; every other action is an effect.
 */
import { describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { scheduleMachine } from '../actors/schedule.machine.js';
import { supervisorMachine } from '../actors/supervisor.machine.js';
import { taskMachine } from '../actors/task.machine.js';
import { workerSlotMachine } from '../actors/worker-slot.machine.js';
import { createLogger } from '../engine/logger.js';
import { scheduleEffects } from '../engine/schedule-actors.js';
import { frontDoorEffects, liveActorEffects, runnerEffects } from '../engine/task-effects.js';

/** The names of a machine's actions that are effects, not XState built-ins. */
function effectActions(machine: AnyStateMachine): string[] {
  return Object.entries(machine.implementations.actions as Record<string, unknown>)
    .filter(([, action]) => !String((action as { type?: unknown }).type ?? '').startsWith('xstate.'))
    .map(([name]) => name)
    .sort();
}

const never = (): never => {
  throw new Error('not called');
};

describe('effect tables', () => {
  it('handle every effect action of the task machine, in runners and in front doors', () => {
    const actions = effectActions(taskMachine);
    expect(actions).toEqual(['holdAgent', 'killAgent', 'notifyDependants', 'recordCheckpoint', 'startAgent']);
    const runner = runnerEffects({ nodeId: 'n', logDir: '/tmp', account: 'a', startRun: never, revokeRun: never, wake: never });
    expect(Object.keys(runner).sort()).toEqual(actions);
    expect(Object.keys(frontDoorEffects('/tmp', { stopAgent: never }, 'a')).sort()).toEqual(actions);
  });

  it('handle every effect action of the supervisor and the worker slot', () => {
    const live = liveActorEffects(createLogger('test', 'error'));
    expect(Object.keys(live.supervisor).sort()).toEqual(effectActions(supervisorMachine));
    expect(Object.keys(live.slot).sort()).toEqual(effectActions(workerSlotMachine));
  });

  it('handle every effect action of the schedule machine (one table, runners and front doors differ in targets)', () => {
    const actions = effectActions(scheduleMachine);
    expect(actions).toEqual(['cancelTasks', 'fired']);
    expect(Object.keys(scheduleEffects({ wake: never, cancelTask: never, unfinishedTasks: never })).sort()).toEqual(actions);
  });
});
