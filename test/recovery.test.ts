/**
 * Crash recovery (issue 6): runs of dead or stalled runners are taken over, their agents killed first, and a
 * stale runner's late writes are rejected. Real `delegate serve` processes and real signals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { usageLimitMarginMs } from '../engine/run-outcome.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { eventually, fakeClaudeEvents, processExists, removeDir, serve, sqlOn, stopRunners, tempDir, testEnv } from './helpers.js';
import { decideTaskEvent } from '../engine/task-steps.js';
import { killProcessGroup, localHostIdentity, processStartTime } from '../engine/process-info.js';
import { runDirOf, runFiles, type ShimStarted } from '../engine/pool/run-files.js';
import { logDirOf } from '../engine/task-service.js';

let dataDir: string;
let env: NodeJS.ProcessEnv;
const children: ChildProcess[] = [];

beforeEach(() => {
  dataDir = tempDir();
  env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0', DELEGATE_LEASE_MS: '2000', LOG_LEVEL: 'info' });
});

afterEach(async () => {
  for (const child of children.splice(0)) {
    try {
      process.kill(child.pid!, 'SIGCONT');
      child.kill('SIGKILL');
    } catch {
      // Already gone.
    }
  }
  await stopRunners(env);
  removeDir(dataDir);
});

function startServe(): ChildProcess {
  const child = serve(env);
  children.push(child);
  return child;
}

/**
 * Submit `prompt`, let a `delegate serve` child start its agent, wait for `ready` (what the test needs recorded
 * first), then kill -9 the runner — and with `agentToo`, the run's agent host and the agent's process group, as
 * when the OOM killer takes them: then the run is lost, not adopted. Returns the task and its agent's start event.
 */
async function killRunnerMidRun(engine: EngineHarness, prompt: string, ready: (taskId: string) => Promise<unknown>, agentToo = false) {
  const { taskId } = await engine.tasks.delegate({ prompt });
  const runner = startServe();
  const agent = await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start'));
  await eventually(() => ready(taskId));
  runner.kill('SIGKILL');
  await eventually(() => runner.exitCode !== null || runner.signalCode !== null);
  if (agentToo) {
    const group = (await eventually(async () => (await engine.store.taskRuns(taskId))[0]?.pid))!;
    const started = JSON.parse(readFileSync(runFiles(runDirOf(logDirOf(dataDir), taskId, 1)).started, 'utf8')) as ShimStarted;
    process.kill(started.host!.pid, 'SIGKILL');
    process.kill(-group, 'SIGKILL');
    await eventually(() => !processExists(agent.pid));
  }
  return { taskId, agent };
}

describe('killProcessGroup', () => {
  it('never kills a process whose pid was reused (start time differs)', async () => {
    const victim = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const start = processStartTime(victim.pid!)!;
      expect(await killProcessGroup(victim.pid!, start + 1, 200)).toBe(true);
      expect(processExists(victim.pid!)).toBe(true);
      expect(await killProcessGroup(victim.pid!, start, 200)).toBe(true);
      await eventually(() => !processExists(victim.pid!));
    } finally {
      victim.kill('SIGKILL');
    }
  });
});

describe('recovery sweep', () => {
  it('takes over a run whose runner and agent were killed with -9 and resumes the same agent session', async () => {
    const engine = await openEngine(dataDir, { env: { DELEGATE_LEASE_MS: '2000' }, startRunner: false });
    let takeover: EngineHarness | undefined;
    try {
      // Killed once the agent reported its session, so the next run can resume it.
      const { taskId, agent: firstAgent } = await killRunnerMidRun(engine, 'long job [sleep 60000]', async (id) => (await engine.store.taskRuns(id))[0]?.sessionId, true);
      const killedAt = Date.now();
      // A new runner on this host sees the owner is dead at once (no need to wait for the lease).
      takeover = await openEngine(dataDir, { env: { DELEGATE_LEASE_MS: '60000' }, startRunner: true });
      const second = await eventually(() => fakeClaudeEvents(dataDir).filter((event) => event.event === 'start')[1], 20_000);
      expect(second.at - killedAt).toBeLessThan(10_000);
      expect(processExists(firstAgent.pid)).toBe(false);
      expect(second.argv).toEqual(expect.arrayContaining(['--resume', firstAgent.sessionId!]));
      expect(second.argv).not.toContain('--session-id');
      expect(second.history).toEqual(['long job [sleep 60000]']);
      expect(second.prompt).toContain('An earlier run of this task was interrupted');
      const task = await engine.store.getTask(taskId);
      expect(task).toMatchObject({ state: 'running', attempt: 2 });
      const runs = await engine.store.taskRuns(taskId);
      expect(runs[0]).toMatchObject({ attempt: 1, outcome: 'lost' });
      const events = await engine.store.taskEvents(taskId);
      expect(events.map((event) => event.event)).toEqual(['SUBMIT', 'CLAIM', 'LEASE_LOST', 'CLAIM']);
      expect(events[2]!.detail).toMatch(/^runner node-\w+ \(pid \d+\) died$/);
      await engine.tasks.cancel(taskId);
    } finally {
      await takeover?.close();
      await engine.close();
    }
  });

  it('takes over a lapsed lease without killing an unrelated process that reuses the pid', async () => {
    const victim = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    try {
      const engine = await openEngine(dataDir, { startRunner: false });
      try {
        const { taskId } = await engine.tasks.delegate({ prompt: 'orphaned' });
        const now = Date.now();
        // A node on another host (so only its lease can tell) claimed it and then went silent.
        await engine.store.registerNode({ id: 'node-gone', host: 'elsewhere', pid: 1, pidStart: null, dataDir, version: '0', autostarted: false, startedAt: now - 600_000, heartbeatAt: now - 600_000 });
        await engine.store.claimNextTask({ nodeId: 'node-gone', host: os.hostname(), now: now - 60_000, leaseMs: 2000, logPath: () => '/dev/null' }, (task) => decideTaskEvent(task, { type: 'CLAIM', node: 'node-gone' }, now - 60_000)!.step);
        // Ten minutes of silence, on the database's clock.
        await sqlOn(dataDir, `UPDATE nodes SET heartbeat_at = heartbeat_at - 600000 WHERE id = 'node-gone'`);
        await sqlOn(dataDir, `UPDATE tasks SET lease_until = lease_until - 60000 WHERE id = ?`, taskId);
        // Its run's pid now belongs to an unrelated process that started at another time.
        await engine.store.recordRunProcess(taskId, 1, { pid: victim.pid!, pidStart: processStartTime(victim.pid!)! - 100, sessionId: null });
        await engine.startRunner();
        await engine.settled([taskId]);
        expect(processExists(victim.pid!)).toBe(true);
        expect(await engine.store.getTask(taskId)).toMatchObject({ state: 'completed', attempt: 2 });
        expect((await engine.store.taskRuns(taskId))[0]).toMatchObject({ outcome: 'lost' });
        // The silent node, owning nothing now, is forgotten.
        await eventually(async () => !(await engine.store.listNodes()).some((node) => node.id === 'node-gone'));
      } finally {
        await engine.close();
      }
    } finally {
      victim.kill('SIGKILL');
    }
  });

  it('fails a task as crashed after it lost its runner too many times', async () => {
    const engine = await openEngine(dataDir, { startRunner: false });
    try {
      const { taskId } = await engine.tasks.delegate({ prompt: 'cursed' });
      const now = Date.now() - 60_000;
      for (let i = 0; i < 4; i++) {
        await engine.store.claimNextTask({ nodeId: `node-${i}`, host: 'elsewhere', now, leaseMs: 1000, logPath: () => '/dev/null' }, (task) => decideTaskEvent(task, { type: 'CLAIM', node: `node-${i}` }, now)!.step);
        await sqlOn(dataDir, `UPDATE tasks SET lease_until = lease_until - 60000 WHERE id = ?`, taskId);
        const runner = await engine.startRunner();
        await eventually(async () => (await engine.store.getTask(taskId))!.owner !== `node-${i}`);
        await runner.shutdown('next round');
      }
      const task = (await engine.store.getTask(taskId))!;
      // Between the lost runs the test's own runner claimed it and handed it back on shutdown (no penalty):
      // attempts 1, 3, 5, 7 were lost, 2, 4, 6 handed back; the fourth loss ends it.
      expect(task).toMatchObject({ state: 'failed', failReason: 'crashed', attempt: 7 });
      const lost = (await engine.store.taskEvents(taskId)).filter((event) => event.event === 'LEASE_LOST');
      expect(lost.map((event) => [event.attempt, event.to])).toEqual([
        [1, 'ready'],
        [3, 'ready'],
        [5, 'ready'],
        [7, 'failed'],
      ]);
      expect(task.error).toBe('the runner died 4 times while running this task');
    } finally {
      engine.runner = null;
      await engine.close();
    }
  });

  it('fences a stalled runner: its run is taken over and its late writes are rejected', async () => {
    const stalled = startServe();
    const engine = await openEngine(dataDir, { env: { DELEGATE_LEASE_MS: '2000' }, startRunner: false });
    try {
      const { taskId } = await engine.tasks.delegate({ prompt: 'slow [sleep 4000]' });
      const firstAgent = await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start'));
      const stalledOwner = (await engine.store.getTask(taskId))!.owner;
      stalled.kill('SIGSTOP');
      await engine.startRunner();
      // The lease lapses; the other runner kills the stalled node's agent and runs the task again.
      await eventually(async () => (await engine.store.getTask(taskId))!.attempt === 2, 20_000);
      expect(processExists(firstAgent.pid)).toBe(false);
      stalled.kill('SIGCONT');
      const [done] = await engine.settled([taskId]);
      expect(done).toMatchObject({ status: 'completed', attempt: 2 });
      const runs = await engine.store.taskRuns(taskId);
      expect(runs.map((run) => [run.attempt, run.outcome])).toEqual([
        [1, 'lost'],
        [2, 'exited'],
      ]);
      expect(runs[1]!.nodeId).not.toBe(stalledOwner);
      // The stalled runner woke up, found the run was no longer its own, and wrote nothing over it.
      const history = await engine.store.taskEvents(taskId);
      expect(history.filter((event) => event.nodeId === stalledOwner).map((event) => event.event)).toEqual(['CLAIM']);
      // And it is still a working node: it registers again and keeps serving.
      await eventually(async () => (await engine.store.listNodes()).some((node) => node.pid === stalled.pid));
    } finally {
      await engine.close();
    }
  });
});

describe('usage limits', () => {
  it('pauses a task until the limit resets, then runs it again; a reset in the past still pauses a minute', async () => {
    // The reset (plus its margin) passes on a simulated clock, not in real seconds.
    const clock = new SimulatedClock();
    clock.set(Date.now());
    const engine = await openEngine(dataDir, { clock, env: { DELEGATE_LEASE_MS: '600000' } });
    try {
      const resetSeconds = Math.ceil(clock.now() / 1000) + 2;
      const { taskId } = await engine.tasks.delegate({ prompt: `limited [usage_limit ${resetSeconds}]` });
      const paused = await eventually(async () => {
        const view = await engine.tasks.get(taskId);
        return view.status === 'paused' ? view : null;
      });
      expect(paused.resumeAt).toBe(new Date(resetSeconds * 1000 + usageLimitMarginMs).toISOString());
      expect(paused.failReason).toBeNull();
      // At the reset the task goes back to the queue and runs again (here it hits the same, now past, limit).
      await eventually(async () => {
        clock.increment(1000);
        return fakeClaudeEvents(dataDir).filter((event) => event.event === 'start').length === 2;
      }, 20_000);
      const again = await eventually(async () => {
        const view = await engine.tasks.get(taskId);
        return view.status === 'paused' && view.attempt === 2 ? view : null;
      });
      expect(Date.parse(again.resumeAt!)).toBeGreaterThan(clock.now() + 50_000);
      const events = (await engine.store.taskEvents(taskId)).map((event) => event.event);
      expect(events).toEqual(['SUBMIT', 'CLAIM', 'USAGE_LIMIT', 'RESUME_DUE', 'CLAIM', 'USAGE_LIMIT']);
      await engine.tasks.cancel(taskId, 'done testing');
    } finally {
      await engine.close();
    }
  });
});

describe('findings of the second read', () => {
  it('kills an agent whose pid was never recorded, found by its run marker, before requeueing', async () => {
    const engine = await openEngine(dataDir, { startRunner: false });
    try {
      const { taskId } = await engine.tasks.delegate({ prompt: 'unrecorded' });
      const now = Date.now();
      await engine.store.claimNextTask({ nodeId: 'node-gone', host: 'elsewhere', now: now - 60_000, leaseMs: 1000, logPath: () => '/dev/null' }, (task) => decideTaskEvent(task, { type: 'CLAIM', node: 'node-gone' }, now - 60_000)!.step);
      // The dead runner's agent: it carries the run marker, but its pid never reached the database.
      const orphan = spawn('sleep', ['60'], { detached: true, stdio: 'ignore', env: { ...process.env, DELEGATE_RUN: `${taskId}#1` } });
      // Its run row says it ran here, so this host's sweep is the one to look for it.
      const { localHostIdentity } = await import('../engine/process-info.js');
      const db = (await import('libsql')).default;
      const raw = new db(path.join(dataDir, 'delegate.db'));
      raw.prepare('UPDATE task_runs SET host = ? WHERE task_id = ?').run(localHostIdentity(), taskId);
      raw.close();
      await engine.startRunner();
      await engine.settled([taskId]);
      expect(processExists(orphan.pid!)).toBe(false);
      expect(await engine.store.getTask(taskId)).toMatchObject({ state: 'completed', attempt: 2 });
    } finally {
      await engine.close();
    }
  });

  it('cleans up after a task cancelled while its runner was dead: its agent is killed and its run ended', async () => {
    const engine = await openEngine(dataDir, { env: { DELEGATE_LEASE_MS: '60000' }, startRunner: false });
    try {
      const { taskId, agent } = await killRunnerMidRun(engine, 'cancel me [sleep 60000]', async (id) => (await engine.store.taskRuns(id))[0]?.pid);
      // Its runner died on this host, so the front door kills the agent itself, and says so.
      expect(await engine.tasks.cancel(taskId, 'never mind')).toMatchObject({ status: 'cancelled', agentStop: 'here' });
      expect(processExists(agent.pid)).toBe(false);
      expect((await engine.store.taskRuns(taskId))[0]).toMatchObject({ outcome: 'cancelled' });
      await engine.startRunner();
      expect((await engine.store.getTask(taskId))!.state).toBe('cancelled');
    } finally {
      await engine.close();
    }
  });

  it('hands a task back at shutdown only once its agent is gone', async () => {
    const engine = await openEngine(dataDir);
    const { taskId } = await engine.tasks.delegate({ prompt: 'interrupted [sleep 60000]' });
    await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start'));
    await engine.runner!.shutdown('test');
    const end = fakeClaudeEvents(dataDir).find((event) => event.event === 'end')!;
    const release = (await engine.store.taskEvents(taskId)).find((event) => event.event === 'RELEASE')!;
    expect(release.at).toBeGreaterThanOrEqual(end.at);
    expect((await engine.store.getTask(taskId))!.state).toBe('ready');
    expect((await engine.store.taskRuns(taskId))[0]).toMatchObject({ outcome: 'cancelled' });
    engine.runner = null;
    await engine.close();
  });

  it('finishes a takeover an earlier sweep of this runner could not complete, once the lease it took lapses', async () => {
    // A short lease: the run was on another host, so it is waited for a third of a lease more.
    const engine = await openEngine(dataDir, { env: { DELEGATE_LEASE_MS: '2000' } });
    try {
      const runner = engine.runner!;
      await runner.shutdown('set up');
      const restarted = await engine.startRunner();
      await restarted.shutdown('claim behind its back');
      const { taskId } = await engine.tasks.delegate({ prompt: 'half taken over' });
      const now = Date.now();
      await engine.store.claimNextTask({ nodeId: 'node-remote', host: 'elsewhere', now, leaseMs: 60_000, logPath: () => '/dev/null' }, (task) => decideTaskEvent(task, { type: 'CLAIM', node: 'node-remote' }, now)!.step);
      const next = await engine.startRunner();
      // As if this runner's sweep had taken the run over and then failed to kill its agent.
      expect(await engine.store.takeOverRun({ taskId, attempt: 1, from: 'node-remote', to: next.nodeId, leaseMs: 500, requireLapsed: false })).toBe(true);
      const [done] = await engine.settled([taskId]);
      expect(done).toMatchObject({ status: 'completed', attempt: 2 });
      expect((await engine.store.taskRuns(taskId))[0]).toMatchObject({ outcome: 'lost' });
    } finally {
      await engine.close();
    }
  });

  it('recovers a run whose taker died before it requeued the task (chaos on three hosts found this stuck)', async () => {
    const engine = await openEngine(dataDir);
    try {
      await engine.runner!.shutdown('claim behind its back');
      const { taskId } = await engine.tasks.delegate({ prompt: 'taken over, then orphaned' });
      const now = Date.now();
      const host = localHostIdentity();
      await engine.store.claimNextTask({ nodeId: 'node-first', host, now, leaseMs: 60_000, logPath: () => '/dev/null' }, (task) => decideTaskEvent(task, { type: 'CLAIM', node: 'node-first' }, now)!.step);
      // A second node took the run over, then was killed before its LEASE_LOST step; neither node is registered.
      expect(await engine.store.takeOverRun({ taskId, attempt: 1, from: 'node-first', to: 'node-taker', leaseMs: 300, requireLapsed: false })).toBe(true);
      expect((await engine.store.openRuns()).runs[0]).toMatchObject({ taskId, nodeId: 'node-taker', taskOwner: 'node-taker' });
      await engine.startRunner();
      const [done] = await engine.settled([taskId]);
      expect(done).toMatchObject({ status: 'completed', attempt: 2 });
      expect((await engine.store.taskRuns(taskId))[0]).toMatchObject({ outcome: 'lost' });
    } finally {
      await engine.close();
    }
  });

  it('takes back a run this runner owns but no slot runs, once its lease lapses', async () => {
    const engine = await openEngine(dataDir, { env: { DELEGATE_LEASE_MS: '1500' } });
    try {
      // Claim the task as this runner's node, behind its back: it has no slot for it, so it never renews it.
      await engine.runner!.shutdown('swap');
      const runner = await engine.startRunner();
      const now = Date.now();
      await engine.store.registerNode({ id: 'node-x', host: 'h', pid: 1, pidStart: null, dataDir, version: '0', autostarted: false, startedAt: now, heartbeatAt: now });
      await runner.shutdown('no claims');
      // Queued while no runner is up (one in this process would claim it at once through the shared bus).
      const { taskId } = await engine.tasks.delegate({ prompt: 'orphaned in process [sleep 100]' });
      await engine.store.claimNextTask({ nodeId: runner.nodeId, host: 'h', now, leaseMs: 1500, logPath: () => '/dev/null' }, (task) => decideTaskEvent(task, { type: 'CLAIM', node: runner.nodeId }, now)!.step);
      await engine.startRunner();
      const [done] = await engine.settled([taskId]);
      expect(done).toMatchObject({ status: 'completed', attempt: 2 });
    } finally {
      await engine.close();
    }
  });
});
