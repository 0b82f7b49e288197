/**
 * Durable timers (DESIGN §2): a run's timeout, a pipeline step's start delay and a usage-limit reset are rows of
 * the timers table, delivered by the runner's timer loop on its injected clock. Here that clock is XState's
 * SimulatedClock, so the tests jump minutes of time while the agents are real processes; and across a kill -9,
 * a delay that runs out while no runner is up fires once on the next start.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { loadConfig } from '../engine/config.js';
import { usageLimitMarginMs } from '../engine/run-outcome.js';
import { openStore } from '../engine/store/store.js';
import { openEngine } from './engine-harness.js';
import { cli, eventually, fakeClaudeEvents, processExists, removeDir, serve, stopRunners, tempDir, testEnv } from './helpers.js';

let dataDir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dataDir = tempDir('delegate-timers-');
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await stopRunners(testEnv(dataDir));
  removeDir(dataDir);
});

/**
 * Move simulated time forward in steps, letting the runner's I/O (database, agents) run between them, as real
 * time would. Leases are long here (10 minutes of the runner's clock), so renewals keep up.
 */
async function advance(clock: SimulatedClock, ms: number, stepMs = 1000): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.increment(Math.min(stepMs, ms - done));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** A simulated clock set to now, so epoch times from agents (usage-limit resets) mean what they say. */
function simulatedNow(): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(Date.now());
  return clock;
}

const longLease = { DELEGATE_LEASE_MS: '600000' };

describe('durable timers on a simulated clock', () => {
  it('fails a run that outlives its timeout and kills its agent, when the clock says so', async () => {
    const clock = simulatedNow();
    const engine = await openEngine(dataDir, { clock, env: longLease });
    try {
      const { taskId } = await engine.tasks.delegate({ prompt: 'slow [sleep 60000]', timeout: 5000 });
      const agent = await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start'));
      await advance(clock, 4900, 100);
      expect((await engine.tasks.get(taskId)).status).toBe('running');
      const failed = engine.nextEvent((event) => event.actorId === taskId && event.type === 'task:failed');
      await advance(clock, 200, 100);
      expect(await failed).toMatchObject({ cause: 'TIMEOUT', from: 'running', attempt: 1 });
      expect(await engine.tasks.get(taskId)).toMatchObject({ status: 'failed', failReason: 'timeout', error: 'timed out after 5000 ms' });
      await eventually(() => !processExists(agent.pid));
      expect(await engine.tasks.checkpoint(taskId)).toMatchObject({ attempt: 1, outcome: 'failed', error: 'timed out after 5000 ms' });
      await eventually(async () => (await engine.store.taskRuns(taskId))[0]?.endedAt !== null);
      // The timer fired once and is gone.
      expect(await engine.store.nextTimerDueAt()).toBeNull();
    } finally {
      await engine.close();
    }
  });

  it('starts a pipeline step when its delay after the previous step has passed, not before', async () => {
    const clock = simulatedNow();
    const engine = await openEngine(dataDir, { clock, env: longLease });
    try {
      const [first, second] = await engine.tasks.pipeline([{ prompt: 'one' }, { prompt: 'two', delayMs: 600_000 }]);
      await eventually(async () => (await engine.tasks.get(first!.taskId)).status === 'completed');
      expect((await engine.tasks.get(second!.taskId)).status).toBe('waiting');
      await advance(clock, 595_000, 5000);
      expect((await engine.tasks.get(second!.taskId)).status).toBe('waiting');
      expect(fakeClaudeEvents(dataDir).filter((event) => event.event === 'start')).toHaveLength(1);
      await advance(clock, 10_000, 1000);
      const [done] = await engine.settled([second!.taskId]);
      expect(done).toMatchObject({ status: 'completed', attempt: 1 });
      expect((await engine.store.taskEvents(second!.taskId)).map((event) => event.event)).toEqual(['SUBMIT', 'DEPENDENCY_COMPLETED', 'START_DUE', 'CLAIM', 'AGENT_EXITED']);
    } finally {
      await engine.close();
    }
  });

  it('pauses on a usage limit and resumes at the reset on the clock; a reset already past pauses a minute', async () => {
    const clock = simulatedNow();
    const engine = await openEngine(dataDir, { clock, env: longLease });
    try {
      const resetAt = Math.floor((clock.now() + 3_600_000) / 1000) * 1000;
      const { taskId } = await engine.tasks.delegate({ prompt: `limited [usage_limit ${resetAt / 1000}]` });
      await eventually(async () => (await engine.tasks.get(taskId)).status === 'paused');
      // The reset plus a margin, so the run does not start a moment before the provider's reset.
      expect((await engine.tasks.get(taskId)).resumeAt).toBe(new Date(resetAt + usageLimitMarginMs).toISOString());
      await advance(clock, resetAt + usageLimitMarginMs - clock.now() - 10_000, 10_000);
      expect((await engine.tasks.get(taskId)).status).toBe('paused');
      await advance(clock, 20_000, 1000);
      // At the reset it runs again, hits the same (now past) limit, and pauses for a minute from now.
      await eventually(async () => (await engine.store.taskEvents(taskId)).filter((event) => event.event === 'USAGE_LIMIT').length === 2);
      const again = await engine.tasks.get(taskId);
      expect(again).toMatchObject({ status: 'paused', attempt: 2 });
      expect(Date.parse(again.resumeAt!)).toBeGreaterThanOrEqual(clock.now() + 50_000);
      expect((await engine.store.taskEvents(taskId)).map((event) => event.event)).toEqual(['SUBMIT', 'CLAIM', 'USAGE_LIMIT', 'RESUME_DUE', 'CLAIM', 'USAGE_LIMIT']);
      await engine.tasks.cancel(taskId);
      expect(await engine.store.nextTimerDueAt()).toBeNull();
    } finally {
      await engine.close();
    }
  });
});

describe('durable timers across a kill -9', () => {
  it('fires a pipeline delay that ran out while no runner was up once, on the next start', async () => {
    const env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0' });
    const queued = await cli(['pipeline', 'first', 'second', '--delay', '3s', '--json'], env);
    expect(queued.code, queued.stderr).toBe(0);
    const [first, second] = (JSON.parse(queued.stdout) as Array<{ taskId: string }>).map((task) => task.taskId);
    const store = await openStore(loadConfig(env).databaseUrl);
    try {
      const runner = serve(env);
      children.push(runner);
      await eventually(async () => (await store.getTask(first!))?.state === 'completed');
      expect((await store.getTask(second!))?.state).toBe('waiting');
      runner.kill('SIGKILL');
      await eventually(() => runner.exitCode !== null || runner.signalCode !== null);
      // The delay runs out with no runner up: nothing happens, and nothing is lost.
      await eventually(async () => {
        const next = await store.nextTimerDueAt();
        return next !== null && next + 500 < Date.now();
      }, 10_000);
      expect((await store.getTask(second!))?.state).toBe('waiting');
      children.push(serve(env), serve(env));
      await eventually(async () => (await store.getTask(second!))?.state === 'completed', 20_000);
      const starts = fakeClaudeEvents(dataDir).filter((event) => event.event === 'start' && event.prompt.endsWith('second'));
      expect(starts).toHaveLength(1);
      expect((await store.taskEvents(second!)).filter((event) => event.event === 'START_DUE')).toHaveLength(1);
      expect(await store.nextTimerDueAt()).toBeNull();
    } finally {
      await store.close();
    }
  });
});
