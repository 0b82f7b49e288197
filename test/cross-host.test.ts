/**
 * Logs from any host (issue 16): a runner on host A runs a task; front doors on host B — another data dir, no
 * log files of A's — read its output, follow it while it runs, and read its stderr, all from the chunks A ships
 * to a real libSQL server.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { taskLogPaths } from '../engine/pool/protocol.js';
import { openStore, type Store } from '../engine/store/store.js';
import { cli, cliBin, eventually, fakeClaudeEvents, removeDir, serve, stopRunners, tempDir, testEnv } from './helpers.js';
import { sqldAvailable, startSqld, type SqldServer } from './sqld.js';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

describe('logs from another host', () => {
  it.skipIf(!sqldAvailable)('reads, follows and filters the output of a task that ran on another host', async () => {
    const root = tempDir('delegate-hosts-');
    cleanups.push(() => removeDir(root));
    const server: SqldServer = await startSqld();
    cleanups.push(() => server.cleanup());
    const envOf = (host: string): NodeJS.ProcessEnv => {
      mkdirSync(path.join(root, host), { recursive: true });
      return { ...testEnv(path.join(root, host), { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0' }), DELEGATE_DATABASE_URL: server.url, DELEGATE_HOST_ID: host };
    };
    const hostA = envOf('host-a');
    const hostB = envOf('host-b');
    const store: Store = await openStore(server.url);
    cleanups.push(() => store.close());

    // Queued from host B, run on host A: its lines come out at once, then the agent works for a while.
    const submitted = await cli(['delegate', '[lines 3] [stderr oops] [sleep 2500] far away'], hostB);
    expect(submitted.code, submitted.stderr).toBe(0);
    const taskId = submitted.stdout.trim();
    const runner = serve(hostA);
    cleanups.push(async () => {
      await stopRunners(hostA);
      runner.kill('SIGKILL');
    });

    // Followed from host B while it runs: the lines arrive before the task ends, and the follow ends with it.
    const follow = spawn(process.execPath, [cliBin, 'logs', taskId, '--follow'], { env: hostB, stdio: ['ignore', 'pipe', 'pipe'] });
    let followed = '';
    follow.stdout.on('data', (chunk: Buffer) => (followed += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => follow.once('exit', resolve));
    await eventually(() => followed.includes('line 3'), 20_000);
    expect((await store.getTask(taskId))?.state).toBe('running');
    expect(await exited).toBe(0);
    expect((await store.getTask(taskId))?.state).toBe('completed');
    expect(followed.split('\n').filter((line) => /^line \d$/.test(line))).toEqual(['line 1', 'line 2', 'line 3']);

    // Read again from B once it ended: the same output, the result last; stderr alone is its own stream.
    const logs = await cli(['logs', taskId], hostB);
    expect(logs.code, logs.stderr).toBe(0);
    expect(logs.stdout).toBe(followed);
    expect(logs.stdout).not.toContain('oops');
    const stderr = await cli(['logs', taskId, '--stream', 'stderr'], hostB);
    expect(stderr.stdout.trim()).toBe('oops');
    // It all came from the database: host B has no log of the task, host A has the file it shipped from.
    expect(existsSync(taskLogPaths(path.join(root, 'host-b', 'logs'), taskId).text)).toBe(false);
    expect(existsSync(taskLogPaths(path.join(root, 'host-a', 'logs'), taskId).text)).toBe(true);

    // Resumed on host B: the agent session of the first run is on host A, so the new run starts its own session
    // with the checkpoint as context instead of failing to fork a session this host has never seen.
    await stopRunners(hostA);
    const runnerB = serve(hostB);
    cleanups.push(async () => {
      await stopRunners(hostB);
      runnerB.kill('SIGKILL');
    });
    const resumed = await cli(['resume', taskId, '--context', 'go on'], hostB);
    expect(resumed.code, resumed.stderr).toBe(0);
    const resumedId = resumed.stdout.trim();
    const done = await eventually(async () => {
      const task = await store.getTask(resumedId);
      return task && ['completed', 'failed'].includes(task.state) ? task : null;
    }, 20_000);
    expect(done.state, `${done.failReason} ${done.error}`).toBe('completed');
    const [start] = fakeClaudeEvents(path.join(root, 'host-b')).filter((event) => event.event === 'start');
    expect(start!.argv).not.toContain('--fork-session');
    expect(start!.prompt).toContain('far away');
    expect(start!.prompt).toContain('go on');
  }, 60_000);
});
