/**
 * Agents outlive their runner (DESIGN §10): a runner killed with -9 costs no agent work. Its agents run on in
 * their shims, their output goes on to the task's files, and the next runner on the host adopts the live ones
 * or collects the results of those that ended — no task runs twice.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../engine/config.js';
import { openStore, type Store } from '../engine/store/store.js';
import { cli, eventually, fakeClaudeEvents, processExists, removeDir, serve, stopRunners, tempDir, testEnv } from './helpers.js';

let dataDir: string;
let env: NodeJS.ProcessEnv;
let store: Store;
const children: ChildProcess[] = [];

beforeEach(async () => {
  dataDir = tempDir('delegate-outlive-');
  env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0', DELEGATE_MAX_WORKERS: '3' });
  store = await openStore(loadConfig(env).databaseUrl);
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await stopRunners(env);
  await store.close();
  removeDir(dataDir);
});

async function queue(prompts: string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const prompt of prompts) {
    const result = await cli(['delegate', prompt, '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    ids.push((JSON.parse(result.stdout) as { taskId: string }).taskId);
  }
  return ids;
}

/** Start a runner, wait until `count` agents started, and kill the runner with -9. */
async function killRunnerWhileAgentsRun(count: number): Promise<void> {
  const runner = serve(env);
  children.push(runner);
  await eventually(() => fakeClaudeEvents(dataDir).filter((event) => event.event === 'start').length === count, 20_000);
  runner.kill('SIGKILL');
  await eventually(() => runner.exitCode !== null || runner.signalCode !== null);
}

const starts = () => fakeClaudeEvents(dataDir).filter((event) => event.event === 'start');

describe('a runner killed with -9', () => {
  it('loses nothing when no runner comes for a while: the agents finish, the next runner collects their results', async () => {
    const ids = await queue(['[lines 3] [sleep 1500] first', '[lines 3] [sleep 1500] second', '[lines 3] [sleep 1500] third']);
    await killRunnerWhileAgentsRun(3);
    // No runner at all while the agents finish.
    await eventually(() => fakeClaudeEvents(dataDir).filter((event) => event.event === 'end').length === 3, 20_000);
    children.push(serve(env));
    await eventually(async () => (await Promise.all(ids.map((id) => store.getTask(id)))).every((task) => task?.state === 'completed'), 20_000);
    // Each ran once, on its first attempt, and its output is whole.
    expect(starts()).toHaveLength(3);
    for (const id of ids) {
      expect((await store.getTask(id))!.attempt).toBe(1);
      const runs = await store.taskRuns(id);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ outcome: 'exited', exitCode: 0 });
      const logs = await cli(['logs', id], env);
      expect(logs.stdout).toContain('line 3');
      expect((await store.latestCheckpoint(id))?.lastLines).toContain('line 3');
    }
    const collected = await cli(['events', '--json'], env);
    expect(collected.stdout.split('\n').filter((line) => line.includes('"node:collected"'))).toHaveLength(3);
  });

  it('has its live agents adopted by the next runner, which follows them to the end', async () => {
    const ids = await queue(['[sleep 4000] [lines 2] slow one', '[sleep 4000] [lines 2] slow two']);
    await killRunnerWhileAgentsRun(2);
    children.push(serve(env));
    await eventually(async () => (await Promise.all(ids.map((id) => store.getTask(id)))).every((task) => task?.state === 'completed'), 30_000);
    expect(starts()).toHaveLength(2);
    for (const id of ids) {
      expect((await store.getTask(id))!.attempt).toBe(1);
      expect((await cli(['logs', id], env)).stdout).toContain('line 2');
    }
    const events = (await cli(['events', '--json'], env)).stdout;
    expect(events.split('\n').filter((line) => line.includes('"node:adopted"'))).toHaveLength(2);
  });

  it('is not hidden by status: a live agent is shown as such and a front door calls a runner to adopt it', async () => {
    const [id] = await queue(['[sleep 3000] [lines 1] watched']);
    await killRunnerWhileAgentsRun(1);
    // No runner may start: the view itself must tell the truth.
    const still = JSON.parse((await cli(['status', id!, '--json'], env)).stdout) as { status: string; note: string | null };
    expect(still.status).toBe('running');
    expect(still.note).toContain('runner died; the agent is still running');
    // Once the agent ended, a front door commits what it left: no runner needed to stop the view from lying.
    await eventually(() => fakeClaudeEvents(dataDir).some((event) => event.event === 'end'), 20_000);
    const done = JSON.parse((await cli(['status', id!, '--json'], env)).stdout) as { status: string; attempt: number };
    expect(done).toMatchObject({ status: 'completed', attempt: 1 });
    expect(starts()).toHaveLength(1);
  });

  it('with autostart, a status call brings a runner that adopts the live agent', async () => {
    const [id] = await queue(['[sleep 8000] adopted on demand']);
    await killRunnerWhileAgentsRun(1);
    const withAutostart = { ...env, DELEGATE_AUTOSTART: '1' };
    const shown = await cli(['status', id!], withAutostart);
    expect(shown.stdout).toContain('the agent is still running');
    expect(shown.stderr).toContain('started a runner');
    await eventually(async () => (await store.getTask(id!))?.state === 'completed', 20_000);
    expect((await store.getTask(id!))!.attempt).toBe(1);
    expect((await cli(['events', '--task', id!, '--json'], env)).stdout).toContain('"task:completed"');
    expect((await cli(['events', '--json'], env)).stdout).toContain('"node:adopted"');
    expect(starts()).toHaveLength(1);
  });

  it('can be cancelled while no runner is up: the front door kills the agent and its children itself', async () => {
    const [id] = await queue(['[sleep 60000] never finishes']);
    await killRunnerWhileAgentsRun(1);
    const agent = starts()[0]!;
    const cancelled = await cli(['cancel', id!, '--json'], env);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ status: 'cancelled', agentStop: 'here' });
    expect(processExists(agent.pid)).toBe(false);
    const run = (await store.taskRuns(id!))[0]!;
    expect(run.pid === null || !processExists(run.pid)).toBe(true);
    expect(run).toMatchObject({ outcome: 'cancelled' });
    const plain = await cli(['cancel', id!], env);
    expect(plain.code).not.toBe(0);
  });

  it('once adopted, is cancelled through the runner that follows it now, not as if its runner were still dead', async () => {
    const [id] = await queue(['[sleep 60000] adopted, then cancelled']);
    await killRunnerWhileAgentsRun(1);
    const agent = starts()[0]!;
    children.push(serve(env));
    await eventually(async () => (await cli(['events', '--json'], env)).stdout.includes('"node:adopted"'), 20_000);
    const cancelled = await cli(['cancel', id!, '--json'], env);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    // The statechart still names the runner that claimed it, and died; the run row names the one that adopted it.
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ status: 'cancelled', agentStop: 'runner' });
    await eventually(() => !processExists(agent.pid), 20_000);
    expect(starts()).toHaveLength(1);
  });
});

describe('a runner killed with -9 where other hosts share the database (DELEGATE_HOST_ID)', () => {
  it('its agent stops a lease after no runner follows it, and only then does a runner of another host take the task over', async () => {
    const hostA = { ...env, DELEGATE_HOST_ID: 'host-a', DELEGATE_LEASE_MS: '3000' };
    const hostB = { ...env, DELEGATE_HOST_ID: 'host-b', DELEGATE_LEASE_MS: '3000' };
    const [id] = await queue(['[sleep 60000] [lines 2] moves host']);
    const runnerA = serve(hostA);
    children.push(runnerA);
    await eventually(() => starts().length === 1, 20_000);
    runnerA.kill('SIGKILL');
    // Host B comes up at once, but cannot see host A's processes: it must wait for the lease, and the agent must
    // be gone before B runs the task again.
    children.push(serve(hostB));
    const first = starts()[0]!;
    const ended = await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'end' && event.pid === first.pid) ?? null, 30_000);
    await eventually(() => (starts().length === 2 ? true : null), 30_000);
    const second = starts()[1]!;
    expect(second.at).toBeGreaterThanOrEqual(ended.at);
    expect(processExists(first.pid)).toBe(false);
    const runs = await eventually(async () => {
      const rows = await store.taskRuns(id!);
      return rows.length === 2 ? rows : null;
    });
    expect(runs[0]).toMatchObject({ attempt: 1, host: 'host-a', outcome: 'lost' });
    expect(runs[1]).toMatchObject({ attempt: 2, host: 'host-b' });
    expect((await store.getTask(id!))!.owner).toMatch(/^node-/);
    await cli(['cancel', id!], hostB);
  });
});
