/**
 * Server faults (issue 16): the libSQL server stops or restarts under runners and front doors. A statement waits
 * for the server with backoff and says so (engine/store/sql-driver.ts, ServerWait); a runner that cannot renew
 * its leases for a lease period fences itself (engine/node-lease.ts). Proven on a real sqld: a write cut off
 * before its COMMIT runs again once, one whose COMMIT may have landed is never sent again (a runner's claims, run
 * ends, takeovers and idle exits read back what it left instead; one that changed nothing needs no look), a runner rides out a
 * restart without running anything twice, a runner cut off past its lease kills its agent and the task runs again
 * (never two at once), a runner stopped during an outage stops at once, and a front door gives up after a
 * bounded wait with one line, having written nothing.
 */
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
// TaskService validates agent names against the registry, which this file fills (no CLI in this process).
import '../adapters/agents/index.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig } from '../engine/config.js';
import { StoreError } from '../engine/errors.js';
import { openSqlDriver } from '../engine/store/sql-driver.js';
import { EventBus } from '../engine/events.js';
import { createLogger } from '../engine/logger.js';
import { openStore, type Store, type TaskRecord } from '../engine/store/store.js';
import { TaskActors } from '../engine/task-actors.js';
import { ScheduleActors, scheduleEffects } from '../engine/schedule-actors.js';
import { scheduledTask } from '../engine/schedule-input.js';
import { ScheduleService } from '../engine/schedule-service.js';
import { runnerEffects } from '../engine/task-effects.js';
import { TaskService } from '../engine/task-service.js';
import { cli, cliBin, eventually, fakeClaudeEvents, processExists, removeDir, serve, tempDir, testEnv } from './helpers.js';
import { sqldAvailable, startSqld, type SqldServer } from './sqld.js';

let root: string;
let server: SqldServer;
/** What each test started, undone after it (last first). */
const cleanups: Array<() => Promise<void> | void> = [];

beforeEach(async () => {
  if (!sqldAvailable) return;
  root = tempDir('delegate-faults-');
  server = await startSqld();
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  if (!sqldAvailable) return;
  // Agents of a test that failed half-way: none may outlive it.
  for (const event of fakeClaudeEvents(root)) if (processExists(event.pid)) process.kill(event.pid, 'SIGKILL');
  await server.cleanup();
  removeDir(root);
});

/** The environment of a runner or front door of host `host-a`, its data dir under the test's root, on the server. */
function hostEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...testEnv(root, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0', LOG_LEVEL: 'info', ...extra }),
    DELEGATE_DATABASE_URL: server.url,
    DELEGATE_HOST_ID: 'host-a',
  };
}

/** A `delegate serve` child whose output is collected; stopped (SIGTERM, then SIGKILL) after the test. */
function startRunner(env: NodeJS.ProcessEnv): { child: ChildProcess; output: () => string } {
  const child = serve(env);
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  cleanups.push(async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    await exited;
    clearTimeout(timer);
  });
  return { child, output: () => output };
}

/** The test's own store and task service on the server (not used while the server is down). */
async function openEngine(env: NodeJS.ProcessEnv): Promise<{ store: Store; tasks: TaskService }> {
  const config = loadConfig(env);
  const store = await openStore(config.databaseUrl);
  cleanups.push(() => store.close());
  return { store, tasks: new TaskService(store, config, systemClock, root) };
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * A TCP proxy in front of the server that, when told, lets the first request carrying `marker` through to the
 * server and then drops the server's answer: with the connection (`reset`), or keeping it open in silence
 * (`silence`, an answer lost on the way). The request was applied, and the client never hears of it (a network
 * that fails at the worst moment). HTTP only: WebSocket frames from a client are masked.
 */
async function lossyProxy(target: string): Promise<{ url: string; loseAnswerTo(marker: string, how?: 'reset' | 'silence'): void; close(): Promise<void> }> {
  const { port: targetPort } = new URL(target);
  let armed: string | null = null;
  let mode: 'reset' | 'silence' = 'reset';
  const sockets = new Set<net.Socket>();
  const proxy = net.createServer((client) => {
    const upstream = net.connect(Number(targetPort), '127.0.0.1');
    sockets.add(client).add(upstream);
    let dropping: 'reset' | 'silence' | null = null;
    client.on('data', (chunk) => {
      if (armed && chunk.includes(armed)) {
        armed = null;
        dropping = mode;
      }
      upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (!dropping) return void client.write(chunk);
      if (dropping === 'silence') return;
      client.resetAndDestroy();
      upstream.destroy();
    });
    for (const socket of [client, upstream]) {
      socket.on('error', () => undefined);
      socket.on('close', () => {
        sockets.delete(socket);
        client.destroy();
        upstream.destroy();
      });
    }
  });
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
  const { port } = proxy.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    loseAnswerTo: (marker, how = 'reset') => {
      armed = marker;
      mode = how;
    },
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => proxy.close(resolve));
    },
  };
}

/** A store on the server through a lossy proxy, with a data dir and its configuration. */
async function lossyStore() {
  const proxy = await lossyProxy(server.httpUrl);
  cleanups.push(() => proxy.close());
  const dataDir = tempDir('delegate-lossy-');
  cleanups.push(async () => removeDir(dataDir));
  const config = loadConfig(testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
  const store = await openStore(proxy.url);
  cleanups.push(() => store.close());
  return { proxy, dataDir, config, store };
}

/**
 * A task queued on a lossy store, and node-t's task actors on it, which note the tasks whose agent they were asked
 * to start. `claim` claims the next ready task for node-t.
 */
async function lossyEngine(prompt: string) {
  const { proxy, dataDir, config, store } = await lossyStore();
  const { taskId } = await new TaskService(store, config, systemClock, dataDir).delegate({ prompt });
  const launched: string[] = [];
  const startRun = async (task: TaskRecord) => {
    launched.push(task.id);
    return { error: 'not launched' };
  };
  const effects = runnerEffects({ nodeId: 'node-t', logDir: dataDir, account: 'test', startRun, revokeRun: () => undefined, wake: () => undefined });
  const actors = new TaskActors(store, systemClock, 'node-t', effects, new EventBus(), createLogger('test', 'error'));
  const claim = () => actors.claim({ nodeId: 'node-t', host: 'h', leaseMs: 30_000, logPath: () => '/dev/null', extra: () => ({}) }, new Set());
  return { proxy, store, taskId, actors, claim, launched };
}

describe('a statement on a server that went away', () => {
  for (const protocol of ['libsql', 'http'] as const) {
    it.skipIf(!sqldAvailable)(`runs a write cut off before its COMMIT again once the server is back, and applies it once (${protocol}://)`, async () => {
      const waits: string[] = [];
      const db = await openSqlDriver(protocol === 'http' ? server.httpUrl : server.url, { onWait: (message) => waits.push(message) });
      cleanups.push(() => db.close());
      await db.run('CREATE TABLE t (x INTEGER)');
      let runs = 0;
      let restarted: Promise<void> | null = null;
      await db.write(async (tx) => {
        runs++;
        await tx.run('INSERT INTO t VALUES (?)', [runs]);
        if (runs === 1) {
          // The server stops mid-transaction, after its first statement ran there, and is back half a second later.
          await server.stop();
          restarted = sleep(500).then(() => server.start());
        }
        await tx.run('INSERT INTO t VALUES (?)', [runs * 10]);
      });
      await restarted;
      // Run again (over HTTP, `fn` itself meets the outage on its first statement, so maybe more than once), and
      // only the last run's rows are there: the first run's insert was rolled back with its lost transaction.
      expect(runs).toBeGreaterThanOrEqual(2);
      expect(await db.all('SELECT x FROM t ORDER BY x')).toEqual([{ x: runs }, { x: runs * 10 }]);
      expect(waits).toHaveLength(2);
      expect(waits[0]).toMatch(/^database server unreachable: \S+127\.0\.0\.1:\d+\S* \(.+\); retrying for up to 10 s…$/);
      expect(waits[1]).toMatch(/^database server reachable again: \S+127\.0\.0\.1:\d+\S* \(unreachable for [\d.]+ s\)$/);
    });
  }

  // The connection dropped with the answer, or kept open with nothing coming back on it (given up after the
  // request timeout): either way the COMMIT may have been applied.
  for (const how of ['reset', 'silence'] as const) {
    it.skipIf(!sqldAvailable)(`never sends a COMMIT again that may have been applied: it fails with commit_unknown (answer lost: ${how})`, async () => {
      const proxy = await lossyProxy(server.httpUrl);
      cleanups.push(() => proxy.close());
      const db = await openSqlDriver(proxy.url, { requestTimeoutMs: 500 });
      cleanups.push(() => db.close());
      await db.run('CREATE TABLE t (x INTEGER)');
      proxy.loseAnswerTo('COMMIT', how);
      let runs = 0;
      const failure = await db
        .write(async (tx) => {
          runs++;
          await tx.run('INSERT INTO t VALUES (1)');
        })
        .catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(StoreError);
      expect((failure as StoreError).code).toBe('commit_unknown');
      expect((failure as StoreError).message).toMatch(
        new RegExp(`^lost the connection to the database server while committing: ${proxy.url} \\(.+\\); the change may or may not have been saved: look \\(delegate status\\) before doing it again$`),
      );
      // The COMMIT reached the server and was applied, once: the transaction was not run again.
      expect(runs).toBe(1);
      expect(await db.all('SELECT x FROM t')).toEqual([{ x: 1 }]);
    });
  }

  it.skipIf(!sqldAvailable)('returns the result of a transaction that changed nothing when its COMMIT answer is lost: there was nothing to save', async () => {
    const proxy = await lossyProxy(server.httpUrl);
    cleanups.push(() => proxy.close());
    const db = await openSqlDriver(proxy.url, { requestTimeoutMs: 500 });
    cleanups.push(() => db.close());
    await db.run('CREATE TABLE t (x INTEGER)');
    await db.run('INSERT INTO t VALUES (1)');
    // A look, and writes that matched no row (as a claim that finds no ready task).
    const unchanged = async () =>
      db.write(async (tx) => {
        const rows = await tx.all('SELECT x FROM t');
        await tx.run('UPDATE t SET x = 2 WHERE x = 5');
        await tx.all('DELETE FROM t WHERE x = 5 RETURNING x');
        return rows;
      });
    proxy.loseAnswerTo('COMMIT');
    expect(await unchanged()).toEqual([{ x: 1 }]);
    // The same with one row changed is a commit_unknown: this is what the one above must tell apart.
    proxy.loseAnswerTo('COMMIT');
    const failure = await db.write((tx) => tx.run('UPDATE t SET x = 2 WHERE x = 1')).catch((error: unknown) => error);
    expect((failure as StoreError).code).toBe('commit_unknown');
    // An UPDATE read through `all` without RETURNING says nothing of its changes: counted as one.
    proxy.loseAnswerTo('COMMIT');
    const unsure = await db.write((tx) => tx.all('UPDATE t SET x = 3 WHERE x = 2')).catch((error: unknown) => error);
    expect((unsure as StoreError).code).toBe('commit_unknown');
  });
});

describe('a run whose end was committed but not heard of', () => {
  it.skipIf(!sqldAvailable)('is read again, found applied, and not run a second time', async () => {
    const { proxy, store, taskId, actors, claim } = await lossyEngine('ends once');
    expect((await claim())?.committed).toBe(true);
    // The run's end is committed by the server, and the answer is lost with the connection.
    proxy.loseAnswerTo('COMMIT');
    const owned = (task: TaskRecord) => task.state === 'running' && task.owner === 'node-t' && task.attempt === 1;
    const result = await actors.send(taskId, { type: 'AGENT_EXITED', exitCode: 0, sawResult: true, isError: false }, { expect: owned });
    // Read again: applied once, so this step has nothing left to do (before, commit_unknown, and the sweep ran it again).
    expect(result).toMatchObject({ committed: false, reason: 'moved-on' });
    expect(await store.getTask(taskId)).toMatchObject({ state: 'completed', attempt: 1 });
    expect((await store.taskEvents(taskId)).map((event) => event.to)).toEqual(['ready', 'running', 'completed']);
  });
});

describe('a claim that was committed but not heard of', () => {
  it.skipIf(!sqldAvailable)('is read again and found claimed: its agent starts now, not after its lease lapses as a second attempt', async () => {
    const { proxy, store, taskId, claim, launched } = await lossyEngine('claimed once');
    proxy.loseAnswerTo('COMMIT');
    const claimed = await claim();
    expect(claimed).toMatchObject({ committed: true, task: { id: taskId, state: 'running', owner: 'node-t', attempt: 1 } });
    expect(claimed?.committed && claimed.events.map((event) => event.type)).toEqual(['task:running']);
    if (claimed?.committed) await claimed.results.get('startAgent');
    expect(launched).toEqual([taskId]);
    expect((await store.taskEvents(taskId)).map((event) => event.to)).toEqual(['ready', 'running']);
  });
});

describe('a runner write whose answer was lost, read back', () => {
  it.skipIf(!sqldAvailable)('a takeover of a run says whether the run is the taker’s now', async () => {
    const { proxy, store, taskId, claim } = await lossyEngine('taken over once');
    expect((await claim())?.committed).toBe(true);
    proxy.loseAnswerTo('COMMIT');
    expect(await store.takeOverRun({ taskId, attempt: 1, from: 'node-t', to: 'node-u', leaseMs: 30_000, requireLapsed: false })).toBe(true);
    expect(await store.getTask(taskId)).toMatchObject({ state: 'running', owner: 'node-u', attempt: 1 });
    expect((await store.taskRuns(taskId))[0]).toMatchObject({ nodeId: 'node-u' });
  });

  it.skipIf(!sqldAvailable)('a claim of due timers returns the timers it locked, not leaving them for its lock to lapse', async () => {
    const proxy = await lossyProxy(server.httpUrl);
    cleanups.push(() => proxy.close());
    const store = await openStore(proxy.url);
    cleanups.push(() => store.close());
    const db = await openSqlDriver(server.url);
    cleanups.push(() => db.close());
    const now = Date.now();
    await db.run(`INSERT INTO timers (actor_id, key, event, due_at, created_at) VALUES ('task-000000000001', 'timeout', '{"type":"TIMEOUT"}', ?, ?)`, [now - 10, now - 10]);
    proxy.loseAnswerTo('COMMIT');
    expect((await store.claimDueTimers('node-t', now, 30_000, 10)).map((timer) => timer.key)).toEqual(['timeout']);
    expect(await db.all('SELECT locked_by, locked_until FROM timers')).toEqual([{ locked_by: 'node-t', locked_until: now + 30_000 }]);
  });

  it.skipIf(!sqldAvailable)('a schedule step whose timer is gone was saved: it fires once, and its actions run', async () => {
    const { proxy, dataDir, config, store } = await lossyStore();
    const schedules = new ScheduleService(store, config, systemClock, dataDir, new TaskService(store, config, systemClock, dataDir));
    const { scheduleId } = await schedules.create({ prompt: 'fired once', scheduledAt: new Date(Date.now() + 1000).toISOString() });
    const [timer] = await eventually(async () => {
      const due = await store.claimDueTimers('node-t', Date.now(), 30_000, 10);
      return due.length > 0 ? due : null;
    }, 10_000, 100);
    const wakes: number[] = [];
    const effects = scheduleEffects({ wake: () => wakes.push(1), cancelTask: async () => undefined, unfinishedTasks: async () => [] });
    const actors = new ScheduleActors(store, systemClock, 'node-t', effects, new EventBus(), createLogger('test', 'error'), { newTask: (schedule) => scheduledTask(schedule, config) });
    proxy.loseAnswerTo('COMMIT');
    const fired = await actors.send(scheduleId, { type: 'DUE' }, timer!.id);
    expect(fired).toMatchObject({ committed: true, schedule: { id: scheduleId, runs: 1 } });
    expect(wakes).toEqual([1]);
    expect(await store.timerExists(timer!.id)).toBe(false);
    expect((await store.listTasks({})).map((task) => task.prompt)).toEqual(['fired once']);
  });

  it.skipIf(!sqldAvailable)('a heartbeat says whether its node is registered, and the removal of an idle node whether it is gone', async () => {
    const proxy = await lossyProxy(server.httpUrl);
    cleanups.push(() => proxy.close());
    const store = await openStore(proxy.url);
    cleanups.push(() => store.close());
    const now = Date.now();
    await store.registerNode({ id: 'node-idle', host: 'h', pid: 1, pidStart: null, dataDir: root, version: '0', autostarted: false, startedAt: now, heartbeatAt: now });
    proxy.loseAnswerTo('COMMIT');
    expect(await store.heartbeatNode('node-idle')).toBe(true);
    proxy.loseAnswerTo('COMMIT');
    expect(await store.removeNodeIfIdle('node-idle')).toBe(true);
    expect(await store.listNodes()).toEqual([]);
    // A removal means the same done twice: done again.
    await store.registerNode({ id: 'node-gone', host: 'h', pid: 1, pidStart: null, dataDir: root, version: '0', autostarted: false, startedAt: now, heartbeatAt: now });
    proxy.loseAnswerTo('COMMIT');
    await store.removeNode('node-gone');
    expect(await store.listNodes()).toEqual([]);
  });
});

describe('an answer that never comes', () => {
  it.skipIf(!sqldAvailable)('gives up a request after the request timeout and sends it again on a new connection', async () => {
    const proxy = await lossyProxy(server.httpUrl);
    cleanups.push(() => proxy.close());
    const waits: string[] = [];
    const db = await openSqlDriver(proxy.url, { requestTimeoutMs: 500, onWait: (message) => waits.push(message) });
    cleanups.push(() => db.close());
    await db.run('CREATE TABLE t (x INTEGER)');
    await db.run('INSERT INTO t VALUES (7)');
    proxy.loseAnswerTo('lost_answer', 'silence');
    // Without the timeout this waits for ever: the connection is open, and nothing comes back on it.
    expect(await db.all('SELECT x AS lost_answer FROM t')).toEqual([{ lost_answer: 7 }]);
    expect(waits[0]).toMatch(/^database server unreachable: \S+ \(no answer from the database server in 0\.5 s\); retrying for up to 10 s…$/);
    expect(waits[1]).toMatch(/^database server reachable again: /);
  });
});

describe('a runner on a server that stops', () => {
  it.skipIf(!sqldAvailable)('rides out a server restart mid-run: every task completes, each agent ran once, and its log says what happened', async () => {
    // A lease long enough that a 1.5 s outage (plus up to a second until the next try) does not fence the node:
    // the last renewal was at most a third of a lease before the server stopped.
    const env = hostEnv({ DELEGATE_LEASE_MS: '6000', DELEGATE_MAX_WORKERS: '3' });
    const { store, tasks } = await openEngine(env);
    // Two agents end while the server is down (their ends wait to be committed), one after it is back.
    const prompts = ['[sleep 300] restart 1', '[sleep 900] restart 2', '[sleep 2500] restart 3'];
    const ids: string[] = [];
    for (const prompt of prompts) ids.push((await tasks.delegate({ prompt })).taskId);
    const runner = startRunner(env);
    await eventually(() => fakeClaudeEvents(root).filter((event) => event.event === 'start').length === prompts.length, 30_000);
    await server.stop();
    await sleep(1500);
    await server.start();

    const finished = await eventually(async () => {
      const rows = await Promise.all(ids.map((id) => store.getTask(id)));
      return rows.every((row) => row?.state === 'completed') ? rows : null;
    }, 30_000, 100);
    expect(finished.map((row) => row!.attempt), runner.output()).toEqual([1, 1, 1]);
    const starts = fakeClaudeEvents(root).filter((event) => event.event === 'start');
    expect(starts.map((event) => event.prompt).sort()).toEqual([...prompts].sort());
    const output = runner.output();
    // The reason is the first failure's: a refused connection, or a connection the stopping server dropped (over
    // HTTP, undici's "other side closed" or a reset).
    const said = output.split('\n').filter((line) => line.includes('database server')).join('\n');
    expect(said).toMatch(/^\S+ warn +\[runner\] database server unreachable: libsql:\/\/127\.0\.0\.1:\d+\?tls=0 \((connect ECONNREFUSED|other side closed|socket hang up|read ECONNRESET|WebSocket was closed)[^)]*\); retrying for up to 30 s…\n\S+ warn +\[runner\] database server reachable again: libsql:\/\/127\.0\.0\.1:\d+\?tls=0 \(unreachable for [\d.]+ s\)$/);
    const events = await store.eventsAfter(0, {}, 100_000);
    expect(events.filter((event) => event.type === 'node:fenced')).toEqual([]);
  }, 60_000);

  it.skipIf(!sqldAvailable)('fences itself when the server is gone past its lease: its agent is killed, and the task runs again, never twice at once', async () => {
    const env = hostEnv({ DELEGATE_LEASE_MS: '3000' });
    const { store, tasks } = await openEngine(env);
    const prompt = '[sleep 6000] outlives the lease';
    const { taskId } = await tasks.delegate({ prompt });
    const runner = startRunner(env);
    const first = await eventually(() => fakeClaudeEvents(root).find((event) => event.event === 'start'), 30_000);
    // Its pid recorded, so the run is as far along as a real one before the server goes.
    await eventually(async () => (await store.taskRuns(taskId))[0]?.pid);
    await server.stop();
    // No renewal for a lease period: the node kills its agent on its own, with the server still down.
    await eventually(() => !processExists(first.pid), 15_000);
    expect(runner.output()).toContain('could not renew leases for a whole lease period');
    const firstEnd = fakeClaudeEvents(root).find((event) => event.event === 'end' && event.pid === first.pid);
    expect(firstEnd).toBeDefined();
    const restartedAt = Date.now();
    await server.start();

    const done = await eventually(async () => {
      const row = await store.getTask(taskId);
      return row?.state === 'completed' ? row : null;
    }, 40_000, 100);
    expect(done.attempt).toBe(2);
    const runs = await store.taskRuns(taskId);
    expect(runs.map((run) => [run.attempt, run.outcome])).toEqual([
      [1, 'lost'],
      [2, 'exited'],
    ]);
    // The first agent ended before the server was back, and the second started after it: never two at once.
    const starts = fakeClaudeEvents(root).filter((event) => event.event === 'start');
    expect(starts).toHaveLength(2);
    expect(firstEnd!.at).toBeLessThan(restartedAt);
    expect(starts[1]!.at).toBeGreaterThanOrEqual(firstEnd!.at);
    const events = await store.eventsAfter(0, {}, 100_000);
    const types = events.map((event) => event.type);
    expect(types).toContain('node:fenced');
    expect(types).toContain('node:unfenced');
    expect(types.indexOf('node:fenced')).toBeLessThan(types.indexOf('node:unfenced'));
  }, 90_000);

  it.skipIf(!sqldAvailable)('stops at once when told to while the server is down, and the next runner runs its task again', async () => {
    const env = hostEnv({ DELEGATE_LEASE_MS: '3000' });
    const { store, tasks } = await openEngine(env);
    const { taskId } = await tasks.delegate({ prompt: '[sleep 3000] stopped in an outage' });
    const first = startRunner(env);
    const agent = await eventually(() => fakeClaudeEvents(root).find((event) => event.event === 'start'), 30_000);
    await server.stop();
    const stopped = new Promise((resolve) => first.child.once('exit', resolve));
    const stopAt = Date.now();
    first.child.kill('SIGTERM');
    await stopped;
    // Without waiting out the runner's 30 s for each write of its shutdown (the agent's kill grace is 5 s).
    expect(Date.now() - stopAt).toBeLessThan(10_000);
    expect(processExists(agent.pid)).toBe(false);
    await server.start();
    startRunner(env);
    const done = await eventually(async () => {
      const row = await store.getTask(taskId);
      return row?.state === 'completed' ? row : null;
    }, 40_000, 100);
    expect(done.attempt).toBe(2);
    const [firstRun, secondRun] = fakeClaudeEvents(root).filter((event) => event.event === 'start');
    const firstEnd = fakeClaudeEvents(root).find((event) => event.event === 'end' && event.pid === firstRun!.pid);
    expect(secondRun!.at).toBeGreaterThanOrEqual(firstEnd!.at);
  }, 90_000);
});

describe('a front door on a server that stops', () => {
  it.skipIf(!sqldAvailable)('delegate gives up after 10 s with one line naming the database, and writes nothing', async () => {
    const env = hostEnv();
    const { store } = await openEngine(env);
    await server.stop();
    const started = Date.now();
    const result = await cli(['delegate', 'written during the outage', '--json'], env);
    const tookMs = Date.now() - started;
    expect(result.code).toBe(1);
    // It waited for the server, and not much longer than the bound (a CLI start is ~1 s here).
    expect(tookMs).toBeGreaterThanOrEqual(10_000);
    expect(tookMs).toBeLessThan(20_000);
    const lines = result.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toMatch(/^delegate: database server unreachable: libsql:\/\/127\.0\.0\.1:\d+\?tls=0 \(connect ECONNREFUSED .+\); retrying for up to 10 s…$/);
    expect(lines[1]).toMatch(
      /^delegate: database server unreachable: libsql:\/\/127\.0\.0\.1:\d+\?tls=0 \(connect ECONNREFUSED [^)]+; gave up after 10 s\); check that the server is running and that DELEGATE_DATABASE_URL points at it, then retry$/,
    );
    expect(JSON.parse(result.stdout)).toMatchObject({ error: { code: 'unreachable' } });
    await server.start();
    expect(await store.listTasks({})).toEqual([]);
  }, 60_000);

  it.skipIf(!sqldAvailable)('delegate waits for a server that is back within 10 s, and queues the task once', async () => {
    const env = hostEnv();
    const { store } = await openEngine(env);
    await server.stop();
    // The server comes back once the CLI has said it waits for it (a CLI start can take seconds under load).
    let sawWait!: () => void;
    const waiting = new Promise<void>((resolve) => (sawWait = resolve));
    let said = '';
    const submitted = cli(['delegate', 'written across a restart', '--json'], env, undefined, undefined, (chunk) => {
      said += chunk;
      if (said.includes('retrying for up to 10 s')) sawWait();
    });
    await Promise.race([waiting, submitted]);
    await server.start();
    const result = await submitted;
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/^delegate: database server unreachable: libsql:\/\/127\.0\.0\.1:\d+\?tls=0 \(connect ECONNREFUSED .+\); retrying for up to 10 s…$/m);
    const { taskId } = JSON.parse(result.stdout) as { taskId: string };
    expect((await store.listTasks({})).map((task) => task.id)).toEqual([taskId]);
  }, 60_000);

  it.skipIf(!sqldAvailable)('DelegateTask fails after 10 s with one line naming the database, and writes nothing', async () => {
    const env = hostEnv();
    const { store } = await openEngine(env);
    const transport = new StdioClientTransport({ command: process.execPath, args: [cliBin, 'mcp', 'start'], env: env as Record<string, string>, cwd: root, stderr: 'pipe' });
    let stderr = '';
    transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const client = new Client({ name: 'delegate-test', version: '0.0.0' });
    await client.connect(transport);
    cleanups.push(() => client.close());
    // The server goes away after the MCP server opened its store (it answers initialize while it opens it, and
    // logs this line once it has): the task's insert is what meets the outage.
    await eventually(() => stderr.includes('serving MCP on stdio'));
    await server.stop();
    const started = Date.now();
    const result = (await client.callTool({ name: 'DelegateTask', arguments: { prompt: 'written during the outage' } })) as CallToolResult;
    const tookMs = Date.now() - started;
    expect(result.isError).toBe(true);
    const text = result.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
    expect(text).toMatch(
      /^database server unreachable: libsql:\/\/127\.0\.0\.1:\d+\?tls=0 \(.+; gave up after 10 s\), nothing was saved; check that the server is running and that DELEGATE_DATABASE_URL points at it, then retry$/,
    );
    expect(tookMs).toBeGreaterThanOrEqual(10_000);
    expect(tookMs).toBeLessThan(15_000);
    expect(stderr).toContain('database server unreachable');
    await server.start();
    expect(await store.listTasks({})).toEqual([]);
    // Back to normal once the server is: the same MCP server queues a task.
    const queued = (await client.callTool({ name: 'DelegateTask', arguments: { prompt: 'written after the outage' } })) as CallToolResult;
    expect(queued.isError).toBeFalsy();
    expect((await store.listTasks({})).map((task) => task.prompt)).toEqual(['written after the outage']);
  }, 60_000);
});
