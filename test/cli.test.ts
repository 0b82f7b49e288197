/**
 * The CLI and the runner end to end: real `delegate` processes, a real database file, the fake claude.
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, cliBin, eventually, fakeClaudeEvents, processExists, removeDir, repoRoot, serve, sqlOn, stopRunners, tempDir, testEnv, type CliResult } from './helpers.js';
import { openStore } from '../engine/store/store.js';

interface TaskJson {
  taskId: string;
  status: string;
  failReason: string | null;
  error: string | null;
  exitCode: number | null;
  costUsd: number | null;
  sessionId: string | null;
  priority: string;
  attempt: number;
}

let dataDir: string;
let env: NodeJS.ProcessEnv;

beforeEach(() => {
  dataDir = tempDir();
  env = testEnv(dataDir);
});

afterEach(async () => {
  await stopRunners(env);
  removeDir(dataDir);
});

function json<T>(result: CliResult): T {
  expect(result.stderr === '' || result.code === 0 ? result.code : result.stderr).toBe(0);
  return JSON.parse(result.stdout) as T;
}

async function submit(args: string[], extraEnv: NodeJS.ProcessEnv = env): Promise<string> {
  const result = await cli(['delegate', ...args], extraEnv);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

async function status(taskId: string, extraEnv: NodeJS.ProcessEnv = env): Promise<TaskJson> {
  return json<TaskJson>(await cli(['status', taskId, '--json'], extraEnv));
}

/** Wait for tasks to finish, reading the database directly (spawning a CLI per poll would dominate the test). */
async function finishedStates(taskIds: string[]): Promise<string[]> {
  const store = await openStore(`file:${path.join(dataDir, 'delegate.db')}`);
  try {
    return await eventually(async () => {
      const tasks = await Promise.all(taskIds.map((id) => store.getTask(id)));
      const states = tasks.map((task) => task?.state ?? 'missing');
      return states.every((state) => ['completed', 'failed', 'cancelled'].includes(state)) ? states : null;
    }, 30_000, 50);
  } finally {
    await store.close();
  }
}

/** The most fake-claude processes that ran at the same time. */
function maxConcurrency(): number {
  const points = fakeClaudeEvents(dataDir).map((event) => ({ at: event.at, delta: event.event === 'start' ? 1 : -1 }));
  points.sort((a, b) => a.at - b.at || a.delta - b.delta);
  let running = 0;
  let max = 0;
  for (const point of points) {
    running += point.delta;
    max = Math.max(max, running);
  }
  return max;
}

describe('delegate delegate --wait, status, logs', () => {
  it('runs a task to completion and records cost, session id and output', async () => {
    const waited = await cli(['delegate', 'hi [lines 3]', '--wait'], env);
    expect(waited.code, waited.stderr).toBe(0);
    expect(waited.stdout).toMatch(/^task-[0-9a-f]{12}\n {2}status:\s+completed\n/);
    const [list] = json<TaskJson[]>(await cli(['status', '--json'], env));
    expect(list).toMatchObject({ status: 'completed', exitCode: 0, costUsd: 0.0123, attempt: 1 });
    expect(list!.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    // The session id the agent reported is the one the engine pre-assigned.
    const [start] = fakeClaudeEvents(dataDir);
    expect(start!.argv).toContain('--session-id');
    expect(start!.sessionId).toBe(list!.sessionId);
    expect(start!.prompt).toBe('hi [lines 3]');
    expect(start!.argv).toEqual(expect.arrayContaining(['-p', '--output-format', 'stream-json', '--verbose', '--permission-mode', 'bypassPermissions']));

    const logs = await cli(['logs', list!.taskId], env);
    expect(logs.code).toBe(0);
    expect(logs.stdout).toContain('line 1\nline 2\nline 3\n');
    const tail = await cli(['logs', list!.taskId, '--tail', '1'], env);
    expect(tail.stdout.trim().split('\n')).toHaveLength(1);
    const logsJson = json<{ lines: string[] }>(await cli(['logs', list!.taskId, '--json'], env));
    expect(logsJson.lines).toEqual(expect.arrayContaining(['line 1', 'line 2', 'line 3']));

    const table = await cli(['status'], env);
    expect(table.stdout).toMatch(/^ID\s+STATUS\s+PRI\s+TIME\s+COST\s+PROMPT\n/);
    expect(table.stdout).toContain(list!.taskId);
  });

  it('logs --follow prints a running task\'s lines as they come, each once, and exits when the task ends', async () => {
    const taskId = await submit(['slow [stderr oops] [lines 3] [sleep 5000]']);
    const follow = spawn(process.execPath, [cliBin, 'logs', taskId, '--follow'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    follow.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => follow.once('close', (code) => resolve(code)));
    let tailed: CliResult;
    try {
      // The lines show up while the agent still runs, not only once it has ended.
      await eventually(() => out.includes('line 3\n'), 20_000, 25);
      expect(fakeClaudeEvents(dataDir).filter((event) => event.event === 'end')).toEqual([]);
      // Started mid-run (the agent sleeps long enough for a CLI to start), --tail shows only the end so far, then
      // follows from there.
      tailed = await cli(['logs', taskId, '--follow', '--tail', '1'], env);
      expect(await exited).toBe(0);
    } finally {
      // A failed check must not leave a follower polling after the test.
      follow.kill();
    }
    expect((await status(taskId)).status).toBe('completed');
    // The same output as plain logs, stderr left out, no line twice.
    const all = await cli(['logs', taskId], env);
    expect(all.stdout).toBe('line 1\nline 2\nline 3\ndone: slow\n');
    expect(out).toBe(all.stdout);
    expect(tailed).toMatchObject({ code: 0, stdout: 'line 3\ndone: slow\n' });
  });

  it('exits 1 and records why when the task fails', async () => {
    const exit3 = await cli(['delegate', 'boom [exit 3]', '--wait', '--json'], env);
    expect(exit3.code).toBe(1);
    expect(JSON.parse(exit3.stdout)).toMatchObject({ status: 'failed', failReason: 'exit_code', exitCode: 3 });

    // is_error with exit code 0 is a failure, not a success.
    const isError = await cli(['delegate', 'oops [is_error]', '--wait', '--json'], env);
    expect(isError.code).toBe(1);
    const failed = JSON.parse(isError.stdout) as TaskJson;
    expect(failed).toMatchObject({ status: 'failed', failReason: 'exit_code', exitCode: 0 });
    expect(failed.error).toContain('agent reported an error');
  });

  it('fails a task that runs past its timeout, and kills it', async () => {
    const result = await cli(['delegate', 'slow [sleep 30000]', '--timeout', '1000', '--wait', '--json'], env);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({ status: 'failed', failReason: 'timeout' });
    const [start] = fakeClaudeEvents(dataDir).filter((event) => event.event === 'start');
    await eventually(() => !processExists(start!.pid));
  });

  it('fails a task whose output exceeds maxOutputBuffer', async () => {
    const result = await cli(['delegate', 'loud [bytes 200000] [sleep 5000]', '--max-output-buffer', '4096', '--wait', '--json'], env);
    expect(result.code).toBe(1);
    const task = JSON.parse(result.stdout) as TaskJson;
    expect(task).toMatchObject({ status: 'failed', failReason: 'output_limit' });
    expect(task.error).toContain('4096');
  });

  it('fails with spawn_error and says how to fix a missing claude', async () => {
    const noClaude = { ...env, PATH: path.dirname(process.execPath) + path.delimiter + '/usr/bin:/bin' };
    const result = await cli(['delegate', 'hi', '--wait', '--json'], noClaude);
    expect(result.code).toBe(1);
    const task = JSON.parse(result.stdout) as TaskJson;
    expect(task).toMatchObject({ status: 'failed', failReason: 'spawn_error' });
    expect(task.error).toContain('DELEGATE_CLAUDE_BIN');
    const badBin = await cli(['delegate', 'hi', '--wait', '--json'], { ...env, DELEGATE_CLAUDE_BIN: '/nonexistent/claude' });
    expect(JSON.parse(badBin.stdout)).toMatchObject({ status: 'failed', failReason: 'spawn_error' });
  });
});

describe('cancel', () => {
  it('kills the whole process tree of a running task', async () => {
    const taskId = await submit(['busy [child] [sleep 60000]']);
    const logLine = await eventually(async () => {
      const logs = await cli(['logs', taskId], env);
      return logs.stdout.match(/child-pid: (\d+)/);
    });
    const childPid = Number(logLine[1]);
    const agentPid = fakeClaudeEvents(dataDir).find((event) => event.event === 'start')!.pid;
    expect(processExists(agentPid)).toBe(true);
    expect(processExists(childPid)).toBe(true);
    const cancelled = await cli(['cancel', taskId, '--reason', 'not needed', '--json'], env);
    expect(cancelled.code, cancelled.stderr).toBe(0);
    expect(JSON.parse(cancelled.stdout)).toMatchObject({ status: 'cancelled' });
    await eventually(() => !processExists(agentPid) && !processExists(childPid));
    // Cancelling again is a valid command that cannot be done: exit 1 (not a usage error), one clear line.
    const again = await cli(['cancel', taskId], env);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(`delegate: task ${taskId} is already cancelled; only unfinished tasks can be cancelled\n`);
    // With --json the error is the one JSON document on stdout, with the same exit code.
    const againJson = await cli(['cancel', taskId, '--json'], env);
    expect(againJson.code).toBe(1);
    expect(JSON.parse(againJson.stdout)).toEqual({
      error: { code: 'conflict', message: `task ${taskId} is already cancelled; only unfinished tasks can be cancelled` },
    });
  });

  it('keeps the reason and names the dependants it failed', async () => {
    const queued = { ...env, DELEGATE_AUTOSTART: '0' };
    const root = await submit(['root'], queued);
    const child = await submit(['child', '--depends-on', root], queued);
    const grandchild = await submit(['grandchild', '--depends-on', child], queued);
    const cancelled = await cli(['cancel', root, '--reason', 'wrong branch'], queued);
    expect(cancelled).toMatchObject({ code: 0, stdout: `cancelled ${root}; 2 dependants failed: ${child}, ${grandchild}\n` });
    const shown = await status(root, queued);
    expect(shown).toMatchObject({ status: 'cancelled', cancelReason: 'wrong branch' });
    const detail = await cli(['status', root], queued);
    expect(detail.stdout).toMatch(/\n {2}reason: +wrong branch\n/);
    // A lone task: nothing failed with it; --json carries the list as a field.
    const lone = await submit(['lone'], queued);
    const loneText = await cli(['cancel', lone], queued);
    expect(loneText.stdout).toBe(`cancelled ${lone}\n`);
    const other = await submit(['other'], queued);
    const dependant = await submit(['dependant', '--depends-on', other], queued);
    const asJson = json<TaskJson & { failedDependants: string[]; cancelReason: string | null }>(await cli(['cancel', other, '--json'], queued));
    expect(asJson).toMatchObject({ taskId: other, status: 'cancelled', cancelReason: null, failedDependants: [dependant] });
  });

  it('retry and resume of an unfinished task exit 1 (a conflict, not a usage error)', async () => {
    const queued = { ...env, DELEGATE_AUTOSTART: '0' };
    const taskId = await submit(['still queued'], queued);
    for (const command of ['retry', 'resume']) {
      const result = await cli([command, taskId], queued);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^delegate: task ${taskId} is ready; only failed, completed or cancelled tasks can be \\w+\n$`));
      expect(result.stdout).toBe('');
    }
  });
});

describe('scheduling', () => {
  it('runs the highest priority first, then the oldest', async () => {
    const queued = { ...env, DELEGATE_AUTOSTART: '0', DELEGATE_MAX_WORKERS: '1' };
    const first = await cli(['delegate', 'p2-old'], queued);
    expect(first.stderr).toContain('DELEGATE_AUTOSTART=0');
    const p2old = first.stdout.trim();
    const p0 = await submit(['p0', '--priority', 'P0'], queued);
    const p2new = await submit(['p2-new'], queued);
    const p1 = await submit(['p1', '-p', 'P1'], queued);
    expect((await status(p2old, queued)).status).toBe('ready');
    const runner = serve(queued);
    try {
      expect(await finishedStates([p0, p1, p2old, p2new])).toEqual(Array(4).fill('completed'));
    } finally {
      runner.kill('SIGTERM');
    }
    const order = fakeClaudeEvents(dataDir)
      .filter((event) => event.event === 'start')
      .map((event) => event.prompt);
    expect(order).toEqual(['p0', 'p1', 'p2-old', 'p2-new']);
  });

  it('never runs more than DELEGATE_MAX_WORKERS at once, and completes them all', async () => {
    const four = { ...env, DELEGATE_MAX_WORKERS: '4' };
    // Long enough that four runs overlap even on a loaded 2-core machine, where starting one takes a while.
    const ids = await Promise.all(Array.from({ length: 20 }, (_, i) => submit([`task ${i} [sleep 1000]`], four)));
    expect(await finishedStates(ids)).toEqual(Array(20).fill('completed'));
    expect(fakeClaudeEvents(dataDir).filter((event) => event.event === 'start')).toHaveLength(20);
    expect(maxConcurrency()).toBe(4);
  });
});

describe('runner lifecycle', () => {
  it('starts exactly one runner when ten front doors race, and it exits when idle', async () => {
    const quick = { ...env, DELEGATE_IDLE_EXIT: '1500' };
    const ids = await Promise.all(Array.from({ length: 10 }, (_, i) => submit([`race ${i}`], quick)));
    expect(await finishedStates(ids)).toEqual(Array(10).fill('completed'));
    const log = readFileSync(path.join(dataDir, 'runner.log'), 'utf8');
    const started = log.match(/runner started/g) ?? [];
    const steppedAside = log.match(/another runner already serves this data dir/g) ?? [];
    expect(started).toHaveLength(1);
    const store = await openStore(`file:${path.join(dataDir, 'delegate.db')}`);
    try {
      const runs = await Promise.all(ids.map((id) => store.taskRuns(id)));
      // Every task ran once, all on the one runner.
      expect(new Set(runs.flat().map((run) => run.nodeId)).size).toBe(1);
      expect(runs.every((r) => r.length === 1)).toBe(true);
      // Once idle, the runner exits by itself and removes its node row.
      await eventually(async () => (await store.listNodes()).length === 0, 15_000);
    } finally {
      await store.close();
    }
    expect(steppedAside.length).toBeLessThanOrEqual(9);
    expect(fakeClaudeEvents(dataDir).filter((event) => event.event === 'start')).toHaveLength(10);
  });

  it('serve --detach starts a runner, stop ends it and hands running tasks back', async () => {
    const manual = { ...env, DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0' };
    const detached = await cli(['serve', '--detach'], manual);
    expect(detached.code, detached.stderr).toBe(0);
    const pid = Number(detached.stdout.match(/pid (\d+)/)![1]);
    expect(processExists(pid)).toBe(true);
    // A second --detach finds it and says so instead of starting another.
    const again = await cli(['serve', '--detach'], manual);
    expect(again).toMatchObject({ code: 0, stdout: `a runner is already running for ${dataDir} (pid ${pid})\n` });
    const nodes = await openStore(`file:${path.join(dataDir, 'delegate.db')}`);
    try {
      expect((await nodes.listNodes()).map((node) => node.pid)).toEqual([pid]);
    } finally {
      await nodes.close();
    }
    const taskId = await submit(['long [sleep 60000]'], manual);
    await eventually(async () => (await status(taskId, manual)).status === 'running');
    const agentPid = await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start')?.pid);
    const stopped = await cli(['stop'], manual);
    expect(stopped.stdout).toBe(`stopped 1 runner (pid ${pid})\n`);
    expect(processExists(pid)).toBe(false);
    await eventually(() => !processExists(agentPid));
    // Not lost: back in the queue for the next runner.
    expect((await status(taskId, manual)).status).toBe('ready');
    expect((await cli(['stop'], manual)).stdout).toBe('no runner is running for this data dir\n');
  });
});

describe('the reference README examples', () => {
  it('build → test → deploy, continue-from, resume with context, retry and a pipeline', async () => {
    const build = await submit(['npm run build [lines 2]', '--priority', 'P1']);
    const test = await submit(['npm test [exit 1]', '--depends-on', build, '--continue-from', build]);
    const deploy = await submit(['npm run deploy', '--depends-on', test]);
    expect(await finishedStates([build, test, deploy])).toEqual(['completed', 'failed', 'failed']);
    const deployed = await status(deploy);
    expect(deployed).toMatchObject({ failReason: 'dependency_failed' });
    const detail = await cli(['status', test], env);
    expect(detail.stdout).toMatch(new RegExp(`depends on: +${build}`));
    expect(detail.stdout).toMatch(new RegExp(`dependants: +${deploy}`));
    expect(detail.stdout).toMatch(new RegExp(`continues: +${build}`));

    const resumed = (await cli(['resume', test, '--context', 'Try a different approach this time', '--json'], env));
    expect(resumed.code, resumed.stderr).toBe(0);
    const resumedTask = JSON.parse(resumed.stdout) as TaskJson & { parentTaskId: string };
    expect(resumedTask.parentTaskId).toBe(test);
    const retried = await cli(['retry', build], env);
    expect(retried.code, retried.stderr).toBe(0);
    const retryId = retried.stdout.trim();
    const pipeline = await cli(['pipeline', 'first step', 'second step', '--delay', '1s'], env);
    expect(pipeline.code, pipeline.stderr).toBe(0);
    const [first, second] = pipeline.stdout.trim().split('\n') as [string, string];
    expect(await finishedStates([resumedTask.taskId, retryId, first, second])).toEqual(['failed', 'completed', 'completed', 'completed']);
    const starts = fakeClaudeEvents(dataDir).filter((event) => event.event === 'start');
    const resumedStart = starts.find((event) => event.prompt.includes('Try a different approach this time'))!;
    expect(resumedStart.argv).toEqual(expect.arrayContaining(['--resume', '--fork-session']));
    expect(starts.find((event) => event.prompt.endsWith('second step'))!.prompt).toContain(`continues, ${first}`);
    expect((await status(retryId)) as TaskJson & { retryOf: string }).toMatchObject({ retryOf: build });
    const bad = await cli(['pipeline', 'a', 'b', '--delay', 'soon'], env);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toBe("delegate: --delay 'soon': expected a duration such as 30s, 5m or 2h (or milliseconds), at most 24h\n");
  });
});

describe('usage errors', () => {
  it.each([
    [['delegate', 'x', '--priority', 'P9'], "delegate: priority 'P9': expected P0, P1 or P2\n"],
    [['delegate', '   '], 'delegate: prompt: expected a non-empty string (got an empty one)\n'],
    [['delegate', 'x', '--timeout', '5'], 'delegate: timeout 5: expected a whole number of milliseconds from 1000 to 86400000\n'],
    [['delegate', 'x', '--timeout', 'soon'], "delegate: timeout 'soon': expected a whole number of milliseconds from 1000 to 86400000\n"],
    // Relative to the CLI's directory (the tests run it in the repo's root); the message names both.
    [['delegate', 'x', '--working-directory', 'rel/dir'], `delegate: --working-directory 'rel/dir' (${path.join(repoRoot, 'rel/dir')}): no such directory\n`],
    [['delegate', 'x', '--working-directory', '/no/such/dir'], "delegate: --working-directory '/no/such/dir': no such directory\n"],
    [['pipeline', 'a', 'b', '-w', 'rel/dir'], `delegate: --working-directory 'rel/dir' (${path.join(repoRoot, 'rel/dir')}): no such directory\n`],
    [['pipeline', 'a', 'b', '--timeout', 'soon'], "delegate: steps[0].timeout 'soon': expected a whole number of milliseconds from 1000 to 86400000\n"],
    [['delegate', 'x', '--depends-on', 'task-000000000000'], 'delegate: dependsOn: task task-000000000000 does not exist\n'],
    [['delegate', 'x', '--agent', 'gpt'], "delegate: agent 'gpt': expected one of claude, demo, codex, shell\n"],
    [['status', 'task-000000000000'], 'delegate: taskId task-000000000000: no such task (see delegate status for the list)\n'],
    [['logs', 'task-000000000000'], 'delegate: taskId task-000000000000: no such task (see delegate status for the list)\n'],
    [['cancel', 'task-000000000000'], 'delegate: taskId task-000000000000: no such task (see delegate status for the list)\n'],
    [['status', '--status', 'done'], "delegate: status 'done': expected one of queued, waiting, ready, running, paused, completed, failed, cancelled\n"],
    [['logs', 'task-000000000000', '--tail=-3'], "delegate: --tail '-3': expected a whole number of lines >= 0\n"],
  ])('%j exits 2 with one line and writes nothing', async (args, message) => {
    const result = await cli(args, env);
    expect(result.stderr).toBe(message);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(json<unknown[]>(await cli(['status', '--json'], env))).toEqual([]);
  });

  it('refuses control characters in every text flag, names the field and what is allowed, and writes nothing', async () => {
    // argv cannot carry NUL (the MCP tests cover it); ESC starts a terminal sequence, DEL, and C1 CSI (U+009B).
    const controls = [
      ['a\u001b[2J', 'U+001B', 'a\\x1b[2J'],
      ['a\u007f', 'U+007F', 'a\\x7f'],
      ['a\u009b31m', 'U+009B', 'a\\x9b31m'],
    ] as const;
    const multi = 'only newline, tab and carriage return are allowed';
    const single = 'no control characters are allowed';
    const fields: Array<[(value: string) => string[], (code: string, escaped: string) => string]> = [
      [(v) => ['delegate', v], (code) => `prompt: contains a control character (${code}) at index 1; ${multi}`],
      [(v) => ['delegate', 'x', '--model', v], (code) => `model: contains a control character (${code}) at index 1; ${single}`],
      [(v) => ['delegate', 'x', '--agent', v], (code) => `agent: contains a control character (${code}) at index 1; ${single}`],
      [(v) => ['delegate', 'x', '--working-directory', v], (code) => `workingDirectory: contains a control character (${code}) at index 1; ${single}`],
      [(v) => ['delegate', 'x', '--allowed-tools', `Read,${v}`], (code) => `allowedTools[1]: contains a control character (${code}) at index 1; ${single}`],
      [(v) => ['delegate', 'x', '--disallowed-tools', v], (code) => `disallowedTools[0]: contains a control character (${code}) at index 1; ${single}`],
      [(v) => ['delegate', 'x', '--depends-on', v], (code) => `dependsOn[0]: contains a control character (${code}) at index 1; ${single}`],
      [(v) => ['delegate', 'x', '--continue-from', v], (code) => `continueFrom: contains a control character (${code}) at index 1; ${single}`],
      [(v) => ['delegate', 'x', '--permission-mode', v], (_, escaped) => `permissionMode '${escaped}': expected one of acceptEdits, bypassPermissions, default, plan, dontAsk`],
      [(v) => ['delegate', 'x', '--priority', v], (_, escaped) => `priority '${escaped}': expected P0, P1 or P2`],
      [(v) => ['pipeline', 'ok', v], (code) => `steps[1].prompt: contains a control character (${code}) at index 1; ${multi}`],
      [(v) => ['cancel', 'task-000000000000', '--reason', v], (code) => `reason: contains a control character (${code}) at index 1; ${multi}`],
      [(v) => ['resume', 'task-000000000000', '--context', v], (code) => `additionalContext: contains a control character (${code}) at index 1; ${multi}`],
      [(v) => ['status', v], (_, escaped) => `taskId ${escaped}: no such task (see delegate status for the list)`],
    ];
    // ESC for every flag; DEL and C1 for a multi-line and a single-line one (the MCP table crosses them all, each CLI run costs a Node start-up).
    const cases = fields.flatMap(([args, message], index) =>
      controls.filter((_, which) => which === 0 || index < 2).map(([value, code, escaped]) => ({ args: args(value), stderr: `delegate: ${message(code, escaped)}\n` })),
    );
    // A few CLI processes at a time.
    for (let at = 0; at < cases.length; at += 4) {
      await Promise.all(
        cases.slice(at, at + 4).map(async ({ args, stderr }) => {
          const result = await cli(args, env);
          expect({ args, code: result.code, stdout: result.stdout, stderr: result.stderr }).toEqual({ args, code: 2, stdout: '', stderr });
        }),
      );
    }
    expect(json<unknown[]>(await cli(['status', '--json'], env))).toEqual([]);
  }, 180_000);

  it('rejects an unknown command and bad configuration with exit 2', async () => {
    const unknown = await cli(['frobnicate'], env);
    expect(unknown.code).toBe(2);
    expect(unknown.stdout).toBe('');
    const [first, ...list] = unknown.stderr.trimEnd().split('\n');
    expect(first).toBe("delegate: unknown command 'frobnicate'");
    // Then the commands, one a line.
    for (const command of ['delegate', 'status', 'logs', 'wait', 'cancel', 'retry', 'resume', 'pipeline', 'events', 'serve', 'stop', 'demo', 'mcp start']) {
      expect(list.some((line) => line.trimStart().startsWith(`${command} `)), command).toBe(true);
    }
    const fileDir = path.join(dataDir, 'not-a-dir');
    writeFileSync(fileDir, 'x');
    const dataDirFile = await cli(['status'], { ...env, DELEGATE_DATA_DIR: fileDir });
    expect(dataDirFile).toMatchObject({ code: 2, stdout: '', stderr: `delegate: DELEGATE_DATA_DIR ${fileDir} is a file, not a directory\n` });
    const dataDirJson = await cli(['status', '--json'], { ...env, DELEGATE_DATA_DIR: fileDir });
    expect(dataDirJson.code).toBe(2);
    expect(JSON.parse(dataDirJson.stdout)).toEqual({ error: { code: 'invalid_config', message: `DELEGATE_DATA_DIR ${fileDir} is a file, not a directory` } });
    const unknownSub = await cli(['mcp', 'stat'], env);
    expect(unknownSub.code).toBe(2);
    expect(unknownSub.stderr.split('\n')[0]).toBe("delegate: unknown command 'mcp stat'");
    const badConfig = await cli(['status'], { ...env, TASK_TIMEOUT: '5' });
    expect(badConfig.code).toBe(2);
    expect(badConfig.stderr).toBe('delegate: TASK_TIMEOUT="5": expected an integer from 1000 to 86400000 (milliseconds)\n');
  });

  it('names an option a command does not have, or one given without its value, and takes negative numbers as values', async () => {
    const before = json<unknown[]>(await cli(['status', '--json', '--limit', '10000'], env)).length;
    const cases: Array<[string[], string, string]> = [
      [['delegate', 'hi', '--bogus'], "unknown option '--bogus' for `delegate delegate`", 'delegate delegate'],
      [['schedule', 'create', 'hi', '--cron', '* * * * *', '--bogus', 'x'], "unknown option '--bogus' for `delegate schedule create`", 'delegate schedule create'],
      [['status', '-wq'], "unknown option '-wq' for `delegate status`", 'delegate status'],
      [['delegate', 'hi', '--timeout'], "option '--timeout' of `delegate delegate` needs a value: --timeout MS", 'delegate delegate'],
      [['delegate', 'hi', '-p', '--wait'], "option '-p' of `delegate delegate` needs a value: -p,--priority P0|P1|P2", 'delegate delegate'],
    ];
    // Clipanion alone called each of these "unknown command 'delegate hi'" and listed every command.
    await Promise.all(
      cases.map(async ([args, message, command]) => {
        const result = await cli(args, env);
        expect({ args, ...result }).toEqual({ args, code: 2, stdout: '', stderr: `delegate: ${message}\n  run \`${command} -h\` for its options\n` });
      }),
    );
    const asJson = await cli(['status', '--json', '--nope'], env);
    expect(asJson.code).toBe(2);
    expect(JSON.parse(asJson.stdout)).toEqual({ error: { code: 'invalid_input', message: "unknown option '--nope' for `delegate status`" } });
    // A negative number after an option is its value, which the command's own check then names.
    const negative = await Promise.all([cli(['delegate', 'hi', '--timeout', '-5'], env), cli(['status', '--limit', '-3'], env)]);
    expect(negative.map(({ code, stderr }) => ({ code, stderr }))).toEqual([
      { code: 2, stderr: 'delegate: timeout -5: expected a whole number of milliseconds from 1000 to 86400000\n' },
      { code: 2, stderr: "delegate: --limit '-3': expected a whole number from 1 to 10000\n" },
    ]);
    expect(json<unknown[]>(await cli(['status', '--json', '--limit', '10000'], env))).toHaveLength(before);
  });

  it('prints help with exit 0', async () => {
    for (const args of [['help'], [], ['--help']]) {
      const result = await cli(args, env);
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('delegate delegate');
      expect(result.stdout).toContain('[-p,--priority P0|P1|P2]');
      expect(result.stdout).not.toContain('#0');
    }
    const one = await cli(['delegate', '-h'], env);
    expect(one.stdout).toMatch(/\n {2}-p,--priority P0\|P1\|P2 +\S/);
    expect(one.stdout).toMatch(/\n {2}-w,--working-directory DIR +\S/);
    expect(one.stdout).not.toContain('#0');
  });

  it('with --json, a usage error is a JSON document on stdout too', async () => {
    const missing = await cli(['status', 'task-000000000000', '--json'], env);
    expect(missing.code).toBe(2);
    expect(JSON.parse(missing.stdout)).toEqual({ error: { code: 'not_found', message: 'taskId task-000000000000: no such task (see delegate status for the list)' } });
    expect(missing.stderr).toBe('delegate: taskId task-000000000000: no such task (see delegate status for the list)\n');
    const badTail = await cli(['logs', 'task-000000000000', '--tail=-3', '--json'], env);
    expect(badTail.code).toBe(2);
    expect(JSON.parse(badTail.stdout)).toEqual({ error: { code: 'invalid_input', message: "--tail '-3': expected a whole number of lines >= 0" } });
    const badConfig = await cli(['status', '--json'], { ...env, TASK_TIMEOUT: '5' });
    expect(badConfig.code).toBe(2);
    expect(JSON.parse(badConfig.stdout)).toEqual({ error: { code: 'invalid_config', message: 'TASK_TIMEOUT="5": expected an integer from 1000 to 86400000 (milliseconds)' } });
    const unparsed = await cli(['status', '--json', '--frobnicate'], env);
    expect(unparsed.code).toBe(2);
    expect(JSON.parse(unparsed.stdout)).toMatchObject({ error: { code: 'invalid_input' } });
  });
});

describe('where a task comes from', () => {
  it('resolves a relative --working-directory against the current directory', async () => {
    const queued = { ...env, DELEGATE_AUTOSTART: '0' };
    const project = tempDir('delegate-cwd-');
    try {
      mkdirSync(path.join(project, 'sub', 'dir'), { recursive: true });
      const result = await cli(['delegate', 'x', '--working-directory', 'sub/dir', '--json'], queued, project);
      expect(result.code, result.stderr).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({ workingDirectory: path.join(project, 'sub', 'dir') });
      const pipeline = await cli(['pipeline', 'a', 'b', '-w', '..', '--json'], queued, path.join(project, 'sub', 'dir'));
      expect(pipeline.code, pipeline.stderr).toBe(0);
      expect((JSON.parse(pipeline.stdout) as Array<{ workingDirectory: string }>).map((task) => task.workingDirectory)).toEqual([path.join(project, 'sub'), path.join(project, 'sub')]);
    } finally {
      removeDir(project);
    }
  });

  it('reads the prompt from stdin with - and from a file with --prompt-file', async () => {
    const queued = { ...env, DELEGATE_AUTOSTART: '0' };
    const fromStdin = await cli(['delegate', '-', '--json'], queued, repoRoot, 'fix the build\nthen run the tests\n');
    expect(fromStdin.code, fromStdin.stderr).toBe(0);
    expect(JSON.parse(fromStdin.stdout)).toMatchObject({ prompt: 'fix the build\nthen run the tests' });
    const file = path.join(dataDir, 'prompt.md');
    writeFileSync(file, '# Task\n\nsummarise README.md\n');
    const fromFile = await cli(['delegate', '--prompt-file', 'prompt.md', '--json'], queued, dataDir);
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(JSON.parse(fromFile.stdout)).toMatchObject({ prompt: '# Task\n\nsummarise README.md' });

    const emptyStdin = await cli(['delegate', '-'], queued, repoRoot, '  \n');
    expect(emptyStdin).toMatchObject({ code: 2, stdout: '', stderr: 'delegate: prompt: expected a non-empty string (got an empty one)\n' });
    writeFileSync(path.join(dataDir, 'empty.md'), '');
    const emptyFile = await cli(['delegate', '--prompt-file', path.join(dataDir, 'empty.md')], queued);
    expect(emptyFile).toMatchObject({ code: 2, stderr: 'delegate: prompt: expected a non-empty string (got an empty one)\n' });
    const missingFile = await cli(['delegate', '--prompt-file', 'nope.md'], queued);
    expect(missingFile).toMatchObject({ code: 2, stderr: `delegate: --prompt-file 'nope.md' (${path.join(repoRoot, 'nope.md')}): no such file\n` });
    const both = await cli(['delegate', 'words', '--prompt-file', file], queued);
    expect(both).toMatchObject({ code: 2, stderr: 'delegate: prompt: give it as arguments, - (stdin) or --prompt-file, not more than one\n' });
    const none = await cli(['delegate'], queued);
    expect(none).toMatchObject({ code: 2, stderr: 'delegate: prompt: missing; give it as arguments, - to read stdin, or --prompt-file FILE\n' });
    expect(json<TaskJson[]>(await cli(['status', '--json'], queued))).toHaveLength(2);
  });

  it('pipeline takes the task options delegate takes', async () => {
    const queued = { ...env, DELEGATE_AUTOSTART: '0' };
    const result = await cli(
      ['pipeline', 'one', 'two', '--priority', 'P1', '--timeout', '5000', '--max-output-buffer', '4096', '--agent', 'demo', '--model', 'sonnet',
        '--permission-mode', 'plan', '--allowed-tools', 'Read,Grep', '--disallowed-tools', 'Bash', '--max-budget-usd', '0.5', '--json'],
      queued,
    );
    expect(result.code, result.stderr).toBe(0);
    const ids = (JSON.parse(result.stdout) as TaskJson[]).map((task) => task.taskId);
    expect(ids).toHaveLength(2);
    const store = await openStore(`file:${path.join(dataDir, 'delegate.db')}`);
    try {
      for (const id of ids) {
        expect(await store.getTask(id)).toMatchObject({
          priority: 'P1', timeoutMs: 5000, maxOutputBuffer: 4096, agent: 'demo', model: 'sonnet', permissionMode: 'plan',
          allowedTools: ['Read', 'Grep'], disallowedTools: ['Bash'], maxBudgetUsd: 0.5,
        });
      }
    } finally {
      await store.close();
    }
    const help = await cli(['pipeline', '-h'], queued);
    for (const flag of ['--timeout MS', '--model NAME', '--permission-mode MODE', '--max-budget-usd USD', '--allowed-tools TOOLS']) expect(help.stdout).toContain(flag);
  });
});

describe('interrupting --wait', () => {
  it('says the task keeps running and how to follow it, exits 130, and the task completes', async () => {
    const waiter = spawn(process.execPath, [cliBin, 'delegate', 'slow [sleep 2000]', '--wait'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    let out = '';
    waiter.stderr.setEncoding('utf8').on('data', (chunk: string) => (err += chunk));
    waiter.stdout.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    const exited = new Promise<number | null>((resolve) => waiter.once('close', (code) => resolve(code)));
    try {
      const taskId = (await eventually(() => /(task-[0-9a-f]{12}) queued\n/.exec(err), 20_000, 25))[1]!;
      waiter.kill('SIGINT');
      expect(await exited).toBe(130);
      expect(err).toContain(`${taskId} keeps running in the background; follow it with: delegate logs ${taskId} --follow\n`);
      expect(out).toBe('');
      expect(await finishedStates([taskId])).toEqual(['completed']);
    } finally {
      waiter.kill();
    }
  });
});

describe('views escape control characters', () => {
  // Written straight into the database, as rows from before the input check (or an agent's result) would be.
  // No NUL: the driver cuts a bound string there, which is why input refuses it.
  const prompt = 'wipe \u001b[2J\u009b31m\u0001 red';
  const result = 'done \u001b]0;pwned\u0007 \u2028';
  const error = 'first line\nsecond \u007f line';

  it('status and status <id> print stored escape sequences visibly; --json keeps them exact', async () => {
    const taskId = await submit(['clean'], { ...env, DELEGATE_AUTOSTART: '0' });
    await sqlOn(dataDir, 'UPDATE tasks SET prompt = ?, result = ?, error = ? WHERE id = ?', prompt, result, error, taskId);
    const raw = /[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/;

    const table = await cli(['status'], env);
    expect(table.code, table.stderr).toBe(0);
    expect(table.stdout).not.toMatch(raw);
    expect(table.stdout).toContain('wipe \\x1b[2J\\x9b31m\\x01 red');

    const detail = await cli(['status', taskId], env);
    expect(detail.code, detail.stderr).toBe(0);
    expect(detail.stdout).not.toMatch(raw);
    expect(detail.stdout).toMatch(/ {2}prompt: +wipe \\x1b\[2J\\x9b31m\\x01 red\n/);
    expect(detail.stdout).toMatch(/ {2}result: +done \\x1b\]0;pwned\\x07/);
    // A multi-line field keeps its lines, not its control characters.
    expect(detail.stdout).toMatch(/ {2}error: +first line\nsecond \\x7f line\n/);

    const asJson = await cli(['status', taskId, '--json'], env);
    // Exact JSON, and not even C1, DEL or U+2028 go out raw.
    expect(asJson.stdout).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(JSON.parse(asJson.stdout)).toMatchObject({ taskId, prompt, result, error });
    const list = json<Array<{ prompt: string }>>(await cli(['status', '--json'], env));
    expect(list[0]!.prompt).toBe(prompt);
  });

  it('logs prints the escape sequences an agent wrote visibly; --json keeps them exact', async () => {
    // The prompt holds no control characters: the fake claude decodes its [say] text as JSON.
    const waited = await cli(['delegate', 'shout [say "\\u001b[2Jcleared\\u009b\\tand a tab"]', '--wait', '--json'], env);
    expect(waited.code, waited.stderr).toBe(0);
    const { taskId } = JSON.parse(waited.stdout) as TaskJson;
    const said = '\u001b[2Jcleared\u009b\tand a tab';
    const shown = '\\x1b[2Jcleared\\x9b\tand a tab\ndone: shout\n';
    for (const args of [['logs', taskId], ['logs', taskId, '--follow'], ['logs', taskId, '--stream', 'both']]) {
      const logs = await cli(args, env);
      expect(logs.code, logs.stderr).toBe(0);
      expect(logs.stdout).toBe(shown);
      expect(logs.stdout).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/);
    }
    const asJson = await cli(['logs', taskId, '--json'], env);
    expect(asJson.stdout).not.toMatch(/[\u007f-\u009f]/);
    expect(json<{ lines: string[] }>(asJson).lines).toEqual([said, 'done: shout']);
  });
});

// Fail loudly if the tests would ever reach a real claude.
it('uses the fake claude', () => {
  expect(testEnv(os.tmpdir()).PATH!.split(path.delimiter)[0]).toMatch(/test\/fixtures\/bin$/);
});
