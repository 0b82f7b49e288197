/**
 * The statecharts' actions are the only source of effects (DESIGN §1), so every action a machine can ask for
 * must have a handler in every kind of process that runs that machine. Built-in XState actions (assign, raise,
 * cancel, enqueueActions) are the machine's own; every other action is an effect.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { AnyStateMachine } from 'xstate';
import { scheduleMachine } from '../actors/schedule.machine.js';
import { supervisorMachine } from '../actors/supervisor.machine.js';
import { taskMachine } from '../actors/task.machine.js';
import { workerSlotMachine } from '../actors/worker-slot.machine.js';
import { createLogger } from '../engine/logger.js';
import { scheduleEffects } from '../engine/schedule-actors.js';
import { checkpointLines } from '../engine/checkpoint.js';
import { taskLogPaths } from '../engine/pool/protocol.js';
import type { TaskRecord, TaskStep } from '../engine/store/store.js';
import type { RunReport } from '../engine/task-actors.js';
import { checkpointEffect, frontDoorEffects, liveActorEffects, runnerEffects } from '../engine/task-effects.js';

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

describe('the checkpoint effect', () => {
  const logDir = mkdtempSync(path.join(os.tmpdir(), 'checkpoint-effect-'));
  afterAll(() => rmSync(logDir, { recursive: true, force: true }));
  const before = { id: 'task-0123456789ab', workingDirectory: logDir, sessionId: 'session-1' } as TaskRecord;
  const step = { snapshot: { value: 'completed', context: { error: null } }, set: {} } as unknown as TaskStep;
  const prepare = (runReport?: RunReport) => {
    const handler = checkpointEffect(logDir);
    if (handler.phase !== 'commit') throw new Error('a checkpoint is written with its step');
    return handler.prepare({ attempt: 2 } as never, { taskId: before.id, before, step, now: 1000, runReport });
  };

  it("takes a run's last lines and git state from what its agent host reported, without reading the log", async () => {
    // No log file exists: a read would find nothing, so the lines can only come from the report.
    const lines = Array.from({ length: 60 }, (_, i) => `line ${i + 1}`);
    const { checkpoint } = await prepare({ git: { branch: 'main', sha: 'abc', dirty: ['README.md'] }, lastLines: lines });
    expect(checkpoint?.lastLines).toEqual(lines.slice(-checkpointLines));
    expect(checkpoint).toMatchObject({ gitBranch: 'main', gitSha: 'abc', gitDirty: ['README.md'], attempt: 2, outcome: 'completed', sessionId: 'session-1' });
  });

  it("reads the task's log when the step has no report (a run handed back)", async () => {
    const paths = taskLogPaths(logDir, before.id);
    mkdirSync(path.dirname(paths.text), { recursive: true });
    writeFileSync(paths.text, '── attempt 1 ──\nfirst\nsecond\n');
    const { checkpoint } = await prepare();
    expect(checkpoint?.lastLines).toEqual(['── attempt 1 ──', 'first', 'second']);
  });
});
