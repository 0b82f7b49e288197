/**
 * `delegate events`: the event stream of every runner, read by any process from the database. The runner here
 * is a detached one a front door started, so every event crossed a process boundary.
 */
import { spawn } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import path from 'node:path';
import { systemClock } from '../engine/clock.js';
import { EventFollower, type EngineEvent } from '../engine/events.js';
import { openStore, type NewEngineEvent } from '../engine/store/store.js';
import { cli, cliBin, eventually, removeDir, stopRunners, tempDir, testEnv } from './helpers.js';

let dataDir: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  dataDir = tempDir('delegate-events-');
  env = testEnv(dataDir, { DELEGATE_IDLE_EXIT: '60000' });
});

afterEach(async () => {
  await stopRunners(env);
  removeDir(dataDir);
});

const parse = (stdout: string): EngineEvent[] =>
  stdout
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as EngineEvent);

describe('delegate events', () => {
  it('prints the events of a 3-task DAG in order, as JSON lines, from a detached runner', async () => {
    // Followed from before the work exists: --follow must deliver what other processes commit later.
    const follower = spawn(process.execPath, [cliBin, 'events', '--follow', '--json'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follower.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    try {
      // Queued before any runner is up, so the order of events does not depend on how fast the CLI is.
      const queue = { ...env, DELEGATE_AUTOSTART: '0' };
      const a = JSON.parse((await cli(['delegate', 'build', '--json'], queue)).stdout).taskId as string;
      const b = JSON.parse((await cli(['delegate', 'test', '--depends-on', a, '--json'], queue)).stdout).taskId as string;
      const c = JSON.parse((await cli(['delegate', 'deploy', '--depends-on', `${a},${b}`, '--json'], queue)).stdout).taskId as string;
      expect((await cli(['serve', '--detach'], env)).code).toBe(0);
      await eventually(async () => JSON.parse((await cli(['status', c, '--json'], env)).stdout).status === 'completed', 30_000, 200);

      const result = await cli(['events', '--json'], env);
      expect(result.code, result.stderr).toBe(0);
      const events = parse(result.stdout);
      const ids = events.map((event) => event.id);
      expect(ids).toEqual([...ids].sort((x, y) => x - y));
      const taskEvents = (id: string) => events.filter((event) => event.actorId === id).map((event) => event.type);
      expect(taskEvents(a)).toEqual(['task:ready', 'task:running', 'task:completed']);
      expect(taskEvents(b)).toEqual(['task:waiting', 'task:ready', 'task:running', 'task:completed']);
      expect(taskEvents(c)).toEqual(['task:waiting', 'task:waiting', 'task:ready', 'task:running', 'task:completed']);
      // Across tasks, in dependency order: b starts only after a completed, c only after b completed.
      const at = (id: string, type: string) => events.find((event) => event.actorId === id && event.type === type)!.id;
      expect(at(b, 'task:running')).toBeGreaterThan(at(a, 'task:completed'));
      expect(at(c, 'task:running')).toBeGreaterThan(at(b, 'task:completed'));
      // The runner's own actors are in the stream too.
      const running = events.find((event) => event.actorId === a && event.type === 'task:running')!;
      expect(running).toMatchObject({ kind: 'task', from: 'ready', to: 'running', cause: 'CLAIM', attempt: 1 });
      expect(running.nodeId).toMatch(/^node-/);
      expect(events.some((event) => event.type === 'node:started' && event.nodeId === running.nodeId)).toBe(true);
      await eventually(async () => parse((await cli(['events', '--json'], env)).stdout).some((event) => event.kind === 'slot' && event.type === 'slot:busy' && event.detail === a));

      // --task narrows to one task; the follower saw the same task events as the table holds.
      expect(parse((await cli(['events', '--task', b, '--json'], env)).stdout).map((event) => event.type)).toEqual(taskEvents(b));
      await eventually(() => parse(followed).some((event) => event.actorId === c && event.type === 'task:completed'), 10_000);
      expect(parse(followed).filter((event) => event.kind === 'task').map((event) => `${event.actorId} ${event.type}`)).toEqual(
        events.filter((event) => event.kind === 'task').map((event) => `${event.actorId} ${event.type}`),
      );
    } finally {
      follower.kill('SIGTERM');
    }
  });

  it('prints plain lines, and rejects a bad --since or unknown task with one line and exit 2', async () => {
    const queued = await cli(['delegate', 'hello', '--json'], { ...env, DELEGATE_AUTOSTART: '0' });
    const taskId = JSON.parse(queued.stdout).taskId as string;
    const plain = await cli(['events', '--since', '10m'], env);
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z task:ready +${taskId} queued→ready \\(SUBMIT\\) attempt=0$`, 'm'));
    expect((await cli(['events', '--since', '2999-01-01T00:00:00Z'], env)).stdout).toBe('');
    const bad = await cli(['events', '--since', 'yesterday'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split('\n')).toHaveLength(1);
    expect(bad.stderr).toContain("--since 'yesterday'");
    const unknown = await cli(['events', '--task', 'task-000000000000'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('task-000000000000');
  });
});

describe('EventFollower', () => {
  it("reads its own connection's commits once woken, which data_version alone never shows", async () => {
    const store = await openStore(`file:${path.join(dataDir, 'delegate.db')}`);
    const event = (type: string): NewEngineEvent => ({ at: 1, actorId: 'node-a/slot-0', kind: 'slot', type, from: null, to: type.slice(5), cause: 'TEST', nodeId: 'node-a', attempt: 1, detail: null });
    const start = await store.lastEventId();
    await store.recordNodeActors([event('slot:starting')], []);
    const follower = new EventFollower(store, systemClock, {}, start, 20);
    const seen: EngineEvent[] = [];
    follower.start((events) => void seen.push(...events));
    try {
      // The first round always reads: once it has, the follower waits for data_version to move.
      await eventually(() => seen.length === 1);
      await store.recordNodeActors([event('slot:busy')], []);
      // A window of several rounds, for a negative check: a slow machine only makes it shorter, never flaky.
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(seen.map((e) => e.type)).toEqual(['slot:starting']);
      follower.wake();
      await eventually(() => seen.length === 2);
      expect(seen.map((e) => e.type)).toEqual(['slot:starting', 'slot:busy']);
    } finally {
      await follower.stop();
      await store.close();
    }
  });
});
