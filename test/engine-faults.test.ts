/**
 * Faults inside one runner: a database it cannot write to (it must fence itself), a corrupt task row at the head
 * of the queue (it must not stop the queue), and a pool thread that dies under a run (the task goes back to the
 * queue; it did nothing wrong).
 */
import path from 'node:path';
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { agentsModuleUrl } from '../adapters/agents/index.js';
import { AgentRuns, type RunReport } from '../engine/agent-runs.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig } from '../engine/config.js';
import { EventBus } from '../engine/events.js';
import { createLogger } from '../engine/logger.js';
import type { AgentPool } from '../engine/pool/agent-pool.js';
import { openStore } from '../engine/store/store.js';
import { TaskActors } from '../engine/task-actors.js';
import { runnerEffects } from '../engine/task-effects.js';
import { TaskService } from '../engine/task-service.js';
import { openEngine } from './engine-harness.js';
import { eventually, fakeClaudeEvents, processExists, removeDir, sqlOn, stopRunners, tempDir, testEnv } from './helpers.js';

let dataDir: string;

beforeEach(() => {
  dataDir = tempDir('delegate-faults-');
});

afterEach(async () => {
  await stopRunners(testEnv(dataDir));
  removeDir(dataDir);
});

describe('self-fencing', () => {
  it('kills its agent when it cannot renew its lease for a lease period, then renews, and the task runs again', async () => {
    const engine = await openEngine(dataDir, { env: { DELEGATE_LEASE_MS: '1500' } });
    try {
      const { taskId } = await engine.tasks.delegate({ prompt: 'held [sleep 60000]' });
      const agent = await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start'));
      const fenced = engine.nextEvent((event) => event.type === 'node:fenced', 10_000);
      // Another process holds the database's write lock: this runner cannot renew its leases.
      const locker = new Database(path.join(dataDir, 'delegate.db'));
      locker.exec('BEGIN IMMEDIATE');
      try {
        await fenced;
        // Killed while the lock is still held: by the node itself, not on anyone's word.
        await eventually(() => !processExists(agent.pid), 10_000);
      } finally {
        locker.exec('COMMIT');
        locker.close();
      }
      await engine.nextEvent((event) => event.type === 'node:unfenced', 10_000);
      // The run it gave up is taken back once its lease lapses and runs again, resuming its session.
      await eventually(() => fakeClaudeEvents(dataDir).filter((event) => event.event === 'start').length === 2, 20_000);
      const runs = await engine.store.taskRuns(taskId);
      expect(runs[0]).toMatchObject({ attempt: 1, outcome: 'lost' });
      expect((await engine.tasks.get(taskId)).attempt).toBe(2);
      await engine.tasks.cancel(taskId);
    } finally {
      await engine.close();
    }
  });
});

describe('a poisoned task', () => {
  it('whose snapshot cannot be restored is skipped at the head of the queue, and the rest still run', async () => {
    const engine = await openEngine(dataDir, { startRunner: false });
    try {
      const poisoned = await engine.tasks.delegate({ prompt: 'first in line', priority: 'P0' });
      await sqlOn(dataDir, `UPDATE tasks SET snapshot = '{"value":"no-such-state","context":{}}' WHERE id = ?`, poisoned.taskId);
      const healthy = await engine.tasks.delegate({ prompt: 'behind it', priority: 'P2' });
      await engine.startRunner();
      const [done] = await engine.settled([healthy.taskId]);
      expect(done!.status).toBe('completed');
      // Never claimed, so never half-started: it waits, visibly, for someone to look at it.
      expect(await engine.tasks.get(poisoned.taskId)).toMatchObject({ status: 'ready', attempt: 0 });
    } finally {
      await engine.close();
    }
  });
});

describe('a pool thread that dies under a run', () => {
  it('hands the task back as an interrupted run instead of failing it', async () => {
    const env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0' });
    const config = loadConfig(env);
    const store = await openStore(config.databaseUrl);
    try {
      await import(agentsModuleUrl());
      const { taskId } = await new TaskService(store, config, systemClock, dataDir).delegate({ prompt: 'unlucky' });
      const log = createLogger('test', 'error');
      let runs!: AgentRuns;
      const actors = new TaskActors(
        store,
        systemClock,
        'node-t',
        runnerEffects({
          nodeId: 'node-t',
          logDir: dataDir,
          account: 'test',
          startRun: async (task, attempt) => {
            runs.register(task.id, attempt);
            return { error: 'not launched' };
          },
          revokeRun: () => undefined,
          wake: () => undefined,
        }),
        new EventBus(),
        log,
      );
      // A pool whose worker thread dies under the launch: its `done` rejects, as piscina's does.
      const crashingPool = { launch: () => ({ cancel: () => undefined, done: Promise.reject(new Error('worker thread exited with code 1')) }) } as unknown as AgentPool;
      runs = new AgentRuns({ store, actors, pool: crashingPool, clock: systemClock, nodeId: 'node-t', logDir: dataDir, log });
      const claimed = await actors.claim({ nodeId: 'node-t', host: 'h', leaseMs: 30_000, logPath: () => '/dev/null', extra: () => ({}) }, new Set());
      expect(claimed?.committed).toBe(true);
      const report = await new Promise<RunReport>((resolve) => {
        runs.runAgent({ taskId, attempt: 1, launch: { request: {} } }, (event) => event.type === 'AGENT_EXITED' && resolve(event.outcome as RunReport), () => undefined);
      });
      expect(report).toEqual({ threadFailed: 'Error: worker thread exited with code 1' });
      await runs.settle({ taskId, attempt: 1, outcome: { kind: 'exited', detail: report } });
      const task = (await store.getTask(taskId))!;
      expect(task).toMatchObject({ state: 'ready', failReason: null, owner: null });
      expect(task.snapshot.context.interrupted).toBe(true);
      const history = await store.taskEvents(taskId);
      expect(history.at(-1)).toMatchObject({ event: 'RELEASE', detail: 'pool thread failed: Error: worker thread exited with code 1' });
      expect((await store.taskRuns(taskId))[0]).toMatchObject({ outcome: 'lost' });
    } finally {
      await store.close();
    }
  });
});
