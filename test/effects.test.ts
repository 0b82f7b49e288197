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
  const step = { snapshot: { value: 'completed', context: { error: null } }, set: {} } as unknown as TaskStep;
  let tasks = 0;
  /** A task of its own per test, whose log holds `log` when given. */
  const taskWithLog = (log?: string): TaskRecord => {
    const task = { id: `task-${String(++tasks).padStart(12, '0')}`, workingDirectory: logDir, sessionId: 'session-1' } as TaskRecord;
    if (log !== undefined) {
      const file = taskLogPaths(logDir, task.id).text;
      mkdirSync(path.dirname(file), { recursive: true });
      writeFileSync(file, log);
    }
    return task;
  };
  const prepare = (before: TaskRecord, attempt: number, runReport?: RunReport) => {
    const handler = checkpointEffect(logDir);
    if (handler.phase !== 'commit') throw new Error('a checkpoint is written with its step');
    return handler.prepare({ attempt } as never, { taskId: before.id, before, step, now: 1000, runReport });
  };
  const lines = (from: number, count: number) => Array.from({ length: count }, (_, i) => `line ${from + i}`);

  it("takes a run's last lines and git state from what its agent host reported, without reading the log", async () => {
    // No log file exists: a read would find nothing, so the lines can only come from the report.
    const sixty = lines(1, 60);
    const { checkpoint } = await prepare(taskWithLog(), 2, { git: { branch: 'main', sha: 'abc', dirty: ['README.md'] }, lastLines: sixty });
    expect(checkpoint?.lastLines).toEqual(sixty.slice(-checkpointLines));
    expect(checkpoint).toMatchObject({ gitBranch: 'main', gitSha: 'abc', gitDirty: ['README.md'], attempt: 2, outcome: 'completed', sessionId: 'session-1' });
    // A first attempt's few lines are its whole log.
    expect((await prepare(taskWithLog(), 1, { lastLines: ['only'] })).checkpoint?.lastLines).toEqual(['only']);
  });

  it('reads the log for a later attempt that printed fewer lines than a checkpoint keeps, and for none at all', async () => {
    // The log holds the attempt before it and the header; the report only this attempt's lines.
    const log = `${lines(1, 30).join('\n')}\n── attempt 2 ──\nretried\n`;
    const expected = [...lines(1, 30), '── attempt 2 ──', 'retried'];
    expect((await prepare(taskWithLog(log), 2, { lastLines: ['retried'] })).checkpoint?.lastLines).toEqual(expected);
    // A spawn error reports no lines at all.
    expect((await prepare(taskWithLog(log), 2, { lastLines: [] })).checkpoint?.lastLines).toEqual(expected);
  });

  it("reads the task's log when the step has no report (a run handed back)", async () => {
    const { checkpoint } = await prepare(taskWithLog('first\nsecond\n'), 1);
    expect(checkpoint?.lastLines).toEqual(['first', 'second']);
  });
});
