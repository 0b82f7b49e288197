import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { agentsModuleUrl } from '../adapters/agents/index.js';
import { agentByName, type AgentRunSpec } from '../engine/agent.js';
import { AgentPool } from '../engine/pool/agent-pool.js';
import { taskLogPaths, type LaunchRequest, type LauncherMessage, type RunOutcome } from '../engine/pool/protocol.js';
import { isProcessAlive } from '../engine/process-info.js';
import { agentHostSocketOf, runDirOf, runFiles, runsDirOf, writeJsonAtomic, type ShimStarted } from '../engine/pool/run-files.js';

const FAKE = fileURLToPath(new URL('./fixtures/bin/claude', import.meta.url));

let dir: string;
let pool: AgentPool;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'delegate-pool-'));
  pool = new AgentPool({ maxThreads: 2, concurrentTasksPerWorker: 4 });
});
afterAll(async () => {
  await pool.close();
  await rm(dir, { recursive: true, force: true });
});

interface Opts {
  agent?: string;
  env?: NodeJS.ProcessEnv;
  spec?: Partial<AgentRunSpec>;
  req?: Partial<LaunchRequest>;
}

function request(prompt: string, opts: Opts = {}): LaunchRequest {
  const taskId = `t-${randomUUID().slice(0, 8)}`;
  const agent = opts.agent ?? 'claude';
  const spec: AgentRunSpec = {
    taskId,
    attempt: 1,
    prompt,
    workingDirectory: dir,
    permissionMode: 'bypassPermissions',
    allowedTools: [],
    disallowedTools: [],
    sessionId: randomUUID(),
    ...opts.spec,
  };
  const command = agentByName(agent).buildCommand(spec, opts.env ?? { DELEGATE_CLAUDE_BIN: FAKE, PATH: process.env.PATH });
  command.env.FAKE_CLAUDE_LOG = join(dir, 'fake-claude.jsonl');
  return {
    taskId,
    attempt: spec.attempt,
    agent,
    command,
    cwd: dir,
    logDir: join(dir, 'logs'),
    maxOutputBuffer: 10_000_000,
    killGraceMs: 1000,
    agentModules: [agentsModuleUrl()],
    ...opts.req,
  };
}

function launch(req: LaunchRequest) {
  const messages: LauncherMessage[] = [];
  const handle = pool.launch(req, (m) => messages.push(m));
  return { ...handle, messages };
}

async function waitFor<T>(probe: () => T | undefined | false, what: string, timeoutMs = 15_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

function isGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function startedPid(messages: LauncherMessage[]): number | undefined {
  const started = messages.find((m) => m.cmd === 'started');
  return started?.cmd === 'started' ? started.value.pid : undefined;
}

async function textLog(req: LaunchRequest): Promise<string> {
  return readFile(taskLogPaths(req.logDir, req.taskId).text, 'utf8');
}

describe('AgentPool with the fake claude', () => {
  it('runs a task to success, parses the result and writes the logs', async () => {
    const req = request('hello [lines 3] [cost 0.25]');
    const run = launch(req);
    const outcome = await run.done;
    expect(outcome).toMatchObject({ end: 'exited', exitCode: 0, signal: null });
    expect(outcome.error).toBeUndefined();
    expect(outcome.result).toMatchObject({ sawResult: true, isError: false, costUsd: 0.25, resultText: 'done: hello' });
    const sessionId = req.command.args[req.command.args.indexOf('--session-id') + 1];
    expect(outcome.result.sessionId).toBe(sessionId);
    expect(outcome.lastLines).toEqual(['line 1', 'line 2', 'line 3', 'done: hello']);
    // The agent host took the checkpoint's git state itself (here: not a repository), so the runner spawns no git.
    expect(outcome.git).toEqual({ branch: null, sha: null, dirty: [] });

    const text = await textLog(req);
    expect(text).toBe('line 1\nline 2\nline 3\ndone: hello\n');
    const raw = await readFile(taskLogPaths(req.logDir, req.taskId).raw, 'utf8');
    expect(raw.split('\n')[0]).toContain('"subtype":"init"');

    const started = run.messages.find((m) => m.cmd === 'started');
    expect(started?.cmd === 'started' && started.value.pid).toBeGreaterThan(0);
    await waitFor(() => run.messages.some((m) => m.cmd === 'exited'), 'the exited message');
    const fakeLog = readFileSync(req.command.env.FAKE_CLAUDE_LOG ?? '', 'utf8');
    const start = fakeLog
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; sessionId: string; prompt: string; cwd: string })
      .find((e) => e.event === 'start' && e.sessionId === sessionId);
    expect(start).toMatchObject({ prompt: 'hello [lines 3] [cost 0.25]', cwd: dir });
  });

  it('marks later attempts in the text log and keeps stderr lines', async () => {
    const req = request('[is_error] [stderr something went wrong]', { spec: { attempt: 2 } });
    const outcome = await launch(req).done;
    expect(outcome).toMatchObject({ end: 'exited', exitCode: 0 });
    expect(outcome.result).toMatchObject({ sawResult: true, isError: true });
    expect(outcome.error).toContain('agent reported an error');
    const text = await textLog(req);
    expect(text.split('\n')[0]).toBe('── attempt 2 ──');
    expect(text).toContain('[stderr] something went wrong');
  });

  it('reports a usage limit and a non-zero exit', async () => {
    const limited = await launch(request('[usage_limit 1760000000]')).done;
    expect(limited.result.usageLimit).toEqual({ source: 'text', resetAt: 1_760_000_000_000 });
    expect(limited.error).toContain('usage limit');

    const failed = await launch(request('[no_result] [exit 2] [stderr bad things]')).done;
    expect(failed).toMatchObject({ end: 'exited', exitCode: 2 });
    expect(failed.result.sawResult).toBe(false);
    expect(failed.error).toBe('exited with code 2: bad things');
  });

  it('kills a run whose output exceeds the limit', async () => {
    const req = request('[bytes 200000] [sleep 60000]', { req: { maxOutputBuffer: 10_000 } });
    const outcome = await launch(req).done;
    expect(outcome.end).toBe('output_limit');
    expect(outcome.error).toBe('output exceeded 10000 bytes');
    expect(outcome.outputBytes).toBeGreaterThan(10_000);
  });

  it('cancel kills the whole process tree, grandchildren included', async () => {
    const req = request('[child] [sleep 60000]');
    const run = launch(req);
    const grandchild = await waitFor(() => {
      const path = taskLogPaths(req.logDir, req.taskId).text;
      if (!existsSync(path)) return undefined;
      const m = /child-pid: (\d+)/.exec(readFileSync(path, 'utf8'));
      return m?.[1] ? Number(m[1]) : undefined;
    }, 'the grandchild pid in the text log');
    const pid = startedPid(run.messages);
    expect(pid).toBeDefined();
    expect(isGone(grandchild)).toBe(false);

    run.cancel('user asked');
    const outcome = await run.done;
    expect(outcome.end).toBe('cancelled');
    expect(outcome.error).toBe('cancelled: user asked');
    await waitFor(() => isGone(pid ?? 0), 'the agent to be gone');
    await waitFor(() => isGone(grandchild), 'the grandchild to be gone');
  });

  it('cleans up grandchildren after a normal exit too', async () => {
    const req = request('[child]', { req: { killGraceMs: 300 } });
    const outcome = await launch(req).done;
    expect(outcome).toMatchObject({ end: 'exited', exitCode: 0 });
    const line = outcome.lastLines.find((l) => l.startsWith('child-pid: '));
    const grandchild = Number(line?.slice('child-pid: '.length));
    expect(grandchild).toBeGreaterThan(0);
    await waitFor(() => isGone(grandchild), 'the grandchild to be gone');
  });

  it('turns a missing binary into spawn_error that says how to fix it', async () => {
    const notOnPath = await launch(request('hi', { env: { PATH: join(dir, 'empty') } })).done;
    expect(notOnPath.end).toBe('spawn_error');
    expect(notOnPath.error).toBe(
      'claude not found on PATH: install Claude Code (npm i -g @anthropic-ai/claude-code) or set DELEGATE_CLAUDE_BIN',
    );

    const badOverride = await launch(request('hi', { env: { DELEGATE_CLAUDE_BIN: join(dir, 'nope', 'claude') } })).done;
    expect(badOverride.end).toBe('spawn_error');
    expect(badOverride.error).toContain('DELEGATE_CLAUDE_BIN');

    const badCwd = await launch(request('hi', { req: { cwd: join(dir, 'missing-dir') } })).done;
    expect(badCwd.end).toBe('spawn_error');
    expect(badCwd.error).toContain('working directory');
  });

  it('runs 6 launches concurrently on 2 threads', async () => {
    const log = join(dir, 'concurrency.jsonl');
    const reqs = Array.from({ length: 6 }, (_, i) => {
      const req = request(`task ${i} [sleep 500]`);
      req.command.env.FAKE_CLAUDE_LOG = log;
      return req;
    });
    const outcomes: RunOutcome[] = await Promise.all(reqs.map((req) => launch(req).done));
    for (const outcome of outcomes) expect(outcome).toMatchObject({ end: 'exited', exitCode: 0 });
    // Overlap, not speed: some agent must have started before another one ended.
    const events = readFileSync(log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { event: string; at: number });
    let running = 0;
    let peak = 0;
    for (const e of events) {
      running += e.event === 'start' ? 1 : -1;
      peak = Math.max(peak, running);
    }
    expect(events.filter((e) => e.event === 'start')).toHaveLength(6);
    expect(peak).toBeGreaterThan(1);
  });

  it('runs the demo agent through the same pipeline', async () => {
    const outcome = await launch(request('write a poem', { agent: 'demo' })).done;
    expect(outcome).toMatchObject({ end: 'exited', exitCode: 0 });
    expect(outcome.result).toMatchObject({ sawResult: true, isError: false, costUsd: 0 });
    expect(outcome.lastLines.join('\n')).toContain('not Claude');
  });
});

describe('the agent host', () => {
  function startedFile(req: LaunchRequest): ShimStarted {
    return JSON.parse(readFileSync(runFiles(runDirOf(req.logDir, req.taskId, req.attempt)).started, 'utf8')) as ShimStarted;
  }

  it('runs the agents of one data dir in one host process, each agent leading its own process group', async () => {
    const reqs = [request('one [sleep 300]'), request('two [sleep 300]')];
    const runs = reqs.map((req) => launch(req));
    const started = await Promise.all(reqs.map((req, i) => waitFor(() => startedPid(runs[i]!.messages) !== undefined && startedFile(req), 'started.json')));
    const hosts = started.map((file) => file.host?.pid);
    expect(hosts[0]).toBeGreaterThan(0);
    expect(hosts[1]).toBe(hosts[0]);
    for (const [i, file] of started.entries()) {
      expect(file.pid).toBe(startedPid(runs[i]!.messages));
      expect(file.pid).not.toBe(file.host!.pid);
      // The agent leads its group: a cancel's group kill takes it and its tools, never the host.
      expect(readFileSync(`/proc/${file.pid}/stat`, 'utf8').split(') ')[1]!.split(' ')[2]).toBe(String(file.pid));
    }
    const outcomes = await Promise.all(runs.map((run) => run.done));
    expect(outcomes.map((outcome) => outcome.end)).toEqual(['exited', 'exited']);
    expect(isGone(hosts[0]!)).toBe(false);
    // Only its owner may connect: whoever can, runs commands as this user.
    expect(statSync(agentHostSocketOf(runsDirOf(reqs[0]!.logDir))).mode & 0o777).toBe(0o600);
  });

  it('a host killed with -9 loses its runs: the runner hears it, and the agent does not run on', async () => {
    // Both pool threads connect to the host first: the one that idles through the kill must not send its next
    // run to the dead host (an idle thread waits in Atomics.wait and hears of the death only when asked).
    const warmups = [request('warm one [sleep 200]'), request('warm two [sleep 200]')].map((warm) => launch(warm));
    expect((await Promise.all(warmups.map((warm) => warm.done))).map((outcome) => outcome.end)).toEqual(['exited', 'exited']);
    const req = request('long [sleep 60000]');
    const run = launch(req);
    const file = await waitFor(() => startedPid(run.messages) !== undefined && startedFile(req), 'started.json');
    process.kill(file.host!.pid, 'SIGKILL');
    const outcome = await run.done;
    expect(outcome.end).toBe('lost');
    expect(outcome.error).toContain('agent host ended without reporting');
    await waitFor(() => isGone(file.pid), 'the agent to be gone');
    // The next runs start a new host, whichever thread they land on.
    const next = [request('after one [sleep 200]'), request('after two [sleep 200]')];
    expect((await Promise.all(next.map((after) => launch(after).done))).map((outcome) => [outcome.end, outcome.error])).toEqual([
      ['exited', undefined],
      ['exited', undefined],
    ]);
    for (const after of next) expect(startedFile(after).host!.pid).not.toBe(file.host!.pid);
  });

  it("sends a run's progress, its session included, before its end", async () => {
    const req = request('talks [lines 2] [sleep 700]');
    const run = launch(req);
    const outcome = await run.done;
    expect(outcome.end).toBe('exited');
    await waitFor(() => run.messages.some((m) => m.cmd === 'exited'), 'the exited message');
    const sessionId = req.command.args[req.command.args.indexOf('--session-id') + 1];
    const cmds = run.messages.map((m) => m.cmd);
    const progress = run.messages.find((m) => m.cmd === 'progress');
    expect(progress?.cmd === 'progress' && progress.value).toMatchObject({ sessionId });
    expect(cmds.indexOf('progress')).toBeGreaterThan(cmds.indexOf('started'));
    expect(cmds.indexOf('progress')).toBeLessThan(cmds.indexOf('exited'));
  });

  it('keeps a run that its host watches alive past its keepalive period, and creates no keepalive file otherwise', async () => {
    // Where runners of other hosts may take a run over, its host stops an agent nobody follows for keepaliveMs.
    const watched = request('watched [sleep 1500]', { req: { keepaliveMs: 600 } });
    const plain = request('plain [sleep 600]');
    const runs = [launch(watched), launch(plain)];
    await waitFor(() => runs.every((run) => startedPid(run.messages) !== undefined), 'both agents to start');
    expect(existsSync(runFiles(runDirOf(watched.logDir, watched.taskId, 1)).keepalive)).toBe(true);
    expect(existsSync(runFiles(runDirOf(plain.logDir, plain.taskId, 1)).spec)).toBe(true);
    expect(existsSync(runFiles(runDirOf(plain.logDir, plain.taskId, 1)).keepalive)).toBe(false);
    const outcomes = await Promise.all(runs.map((run) => run.done));
    expect(outcomes.map((outcome) => [outcome.end, outcome.error])).toEqual([
      ['exited', undefined],
      ['exited', undefined],
    ]);
  });

  it('writes progress.json only once the runner that hears the progress over the socket is gone', async () => {
    const logDir = join(dir, 'progress-logs');
    const runsDir = runsDirOf(logDir);
    mkdirSync(runsDir, { recursive: true });
    const host = spawn(process.execPath, [fileURLToPath(new URL('../dist/engine/shim/host.js', import.meta.url)), runsDir], { stdio: ['ignore', 'pipe', 'ignore'] });
    await new Promise((resolve) => host.stdout.once('data', resolve));
    const req = request('followed [lines 2] [sleep 60000]', { req: { logDir } });
    const runDir = runDirOf(logDir, req.taskId, 1);
    const files = runFiles(runDir);
    mkdirSync(runDir, { recursive: true });
    const { env: agentEnv, ...command } = req.command;
    writeFileSync(files.spec, JSON.stringify({ ...req, command, keepaliveMs: null }));
    const runner = net.connect(agentHostSocketOf(runsDir));
    const replies: Array<Record<string, unknown>> = [];
    let buffered = '';
    runner.setEncoding('utf8');
    runner.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) replies.push(JSON.parse(line) as Record<string, unknown>);
    });
    try {
      runner.write(`${JSON.stringify({ op: 'start', runDir, env: { ...agentEnv, PATH: process.env.PATH ?? '' }, progress: true })}\n`);
      await waitFor(() => replies.some((reply) => 'progress' in reply), 'a progress reply');
      expect(replies[0]).toMatchObject({ runDir, pushesProgress: true });
      expect(existsSync(files.started)).toBe(true);
      expect(existsSync(files.progress)).toBe(false);
      // The runner dies: a runner that adopts the run later reads what this one had heard.
      runner.destroy();
      const written = await waitFor(() => existsSync(files.progress) && (JSON.parse(readFileSync(files.progress, 'utf8')) as { sessionId?: string }), 'progress.json');
      expect(written.sessionId).toBe(req.command.args[req.command.args.indexOf('--session-id') + 1]);
    } finally {
      runner.destroy();
      const started = existsSync(files.started) ? (JSON.parse(readFileSync(files.started, 'utf8')) as ShimStarted) : null;
      if (started) process.kill(-started.pid, 'SIGKILL');
      host.kill('SIGKILL');
    }
  });

  it('follows a run of a host that does not send progress (an earlier version) through its files', async () => {
    const logDir = join(dir, 'old-host-logs');
    const socketPath = agentHostSocketOf(runsDirOf(logDir));
    mkdirSync(runsDirOf(logDir), { recursive: true });
    // The agent: a process leading its own group, as a host starts it.
    const agent = spawn('sleep', ['30'], { detached: true, stdio: 'ignore' });
    const requests: Array<Record<string, unknown>> = [];
    const sockets: net.Socket[] = [];
    const oldHost = net.createServer((socket) => {
      sockets.push(socket);
      socket.setEncoding('utf8');
      socket.once('data', (line: string) => {
        const request = JSON.parse(line) as { runDir: string };
        requests.push(request);
        const files = runFiles(request.runDir);
        const started: ShimStarted = { pid: agent.pid!, pidStartTime: null, host: { pid: process.pid, pidStart: null } };
        // Every host version writes its files as the real one does, by rename, so a follower never reads half of one.
        writeJsonAtomic(files.started, started);
        socket.write(`${JSON.stringify({ runDir: request.runDir, started })}\n`);
        writeJsonAtomic(files.progress, { outputBytes: 10, lines: 1, sessionId: 'session-of-old' });
        setTimeout(() => {
          const outcome: RunOutcome = { end: 'exited', exitCode: 0, signal: null, result: { sawResult: true, isError: false }, outputBytes: 10, lastLines: ['hi'] };
          writeJsonAtomic(files.exit, outcome);
          socket.write(`${JSON.stringify({ runDir: request.runDir, ended: true })}\n`);
        }, 400);
      });
    });
    await new Promise<void>((resolve) => oldHost.listen(socketPath, resolve));
    try {
      const run = launch(request('old', { req: { logDir } }));
      const outcome = await run.done;
      expect(outcome).toMatchObject({ end: 'exited', lastLines: ['hi'] });
      expect(requests[0]).toMatchObject({ op: 'start', progress: true });
      await waitFor(() => run.messages.some((m) => m.cmd === 'exited'), 'the exited message');
      const progress = run.messages.find((m) => m.cmd === 'progress');
      expect(progress?.cmd === 'progress' && progress.value).toEqual({ outputBytes: 10, lines: 1, sessionId: 'session-of-old' });
      expect(startedPid(run.messages)).toBe(agent.pid);
    } finally {
      agent.kill('SIGKILL');
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => oldHost.close(() => resolve()));
    }
  });

  it('replaces the socket file a dead host left, and leaves once nothing uses it', async () => {
    const logDir = join(dir, 'stale-logs');
    const socketPath = agentHostSocketOf(runsDirOf(logDir));
    mkdirSync(runsDirOf(logDir), { recursive: true });
    // A process that listened there and died without removing its socket file.
    const squatter = spawn(process.execPath, ['-e', `require('net').createServer().listen(${JSON.stringify(socketPath)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise((resolve) => squatter.stdout.once('data', resolve));
    squatter.kill('SIGKILL');
    await new Promise((resolve) => squatter.once('exit', resolve));
    expect(existsSync(socketPath)).toBe(true);

    const own = new AgentPool({ maxThreads: 1 });
    const req = request('fresh', { req: { logDir } });
    const messages: LauncherMessage[] = [];
    expect((await own.launch(req, (m) => messages.push(m)).done).end).toBe('exited');
    const host = startedFile(req).host!.pid;
    // No run and no runner connected (the pool's threads close their connections): the host leaves.
    await own.close();
    // Not this process's child (started through a shell that left at once): nothing here has to reap it.
    await waitFor(() => !isProcessAlive(host, null) && isGone(host), 'the idle host to leave', 20_000);
    expect(existsSync(socketPath)).toBe(false);
  });
});
