/**
 * The MCP front door (issue 17), each against a baseline measured in the same run: `delegate mcp start` →
 * initialized against `node -e 0`; its idle RSS against a bare Node process; the DelegateTask round trip over
 * stdio against an MCP `ping` on the same server; TaskStatus of one task and of a page of 50 with 10,000 tasks in
 * the database, against the same ping. No runner: the tasks stay queued (DELEGATE_AUTOSTART=0). Then the memory of
 * a `delegate serve` runner over those 10,000 queued tasks, which a usage limit holds back so it runs none of
 * them, against a runner on an empty data dir, and with the MCP server's, against issue 17's targets.
 */
import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import {
  agentStarts,
  bareNodePeakRss,
  benchEnv,
  cliBin,
  currentRss,
  fmt,
  isMain,
  median,
  openEngine,
  peakRss,
  percentile,
  printTable,
  quick,
  recordFigure,
  removeDir,
  sleep,
  startRunner,
  stopRunner,
  targetCell,
  tempDir,
} from './lib.js';

const CALLS = Number(process.env.BENCH_MCP_CALLS ?? (quick ? 50 : 1000));
const QUEUED = Number(process.env.BENCH_MCP_QUEUED ?? (quick ? 300 : 10_000));
const STARTS = quick ? 1 : 7;
const WARMUP_CALLS = quick ? 5 : 50;
/** How long a runner is left alone after it registered, and a server after it initialized, before their memory is read. */
const RUNNER_SETTLE_MS = quick ? 300 : 5000;
const SERVER_SETTLE_MS = quick ? 200 : 1000;

/** Wall ms from spawn to the first line on stdout after `input` (or to exit when there is no input). */
async function startTime(args, env, input) {
  const t0 = performance.now();
  const child = spawn(process.execPath, args, { env, stdio: ['pipe', 'pipe', 'ignore'] });
  if (!input) {
    await new Promise((resolve) => child.once('exit', resolve));
    return { ms: performance.now() - t0 };
  }
  child.stdin.write(`${input}\n`);
  await new Promise((resolve) => child.stdout.once('data', resolve));
  const ms = performance.now() - t0;
  await sleep(SERVER_SETTLE_MS);
  const rss = currentRss(child.pid);
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  return { ms, rss };
}

/** Round trips of `call` in ms, after WARMUP_CALLS warm-up calls. */
async function roundTrips(count, call) {
  for (let i = 0; i < WARMUP_CALLS; i++) await call(i);
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await call(i);
    times.push(performance.now() - t0);
  }
  return times;
}

/** A fresh `delegate serve` on `env`'s data dir, left alone for RUNNER_SETTLE_MS after it registered. */
async function settledRunner(env, engine) {
  const runner = await startRunner(env, engine);
  await sleep(RUNNER_SETTLE_MS);
  return runner;
}

/**
 * Hold back every queued claude task with a usage limit, as a real one would: a P0 task whose fake claude
 * reports the limit (reset in an hour) is the only one a runner with one slot claims; it pauses, and the hold
 * it writes keeps the runner from claiming the rest. That runner is stopped again; resolves with the P0 task.
 */
async function holdQueue(env, engine) {
  const resetAt = Math.floor(Date.now() / 1000) + 3600;
  const limited = await engine.service.delegate({ prompt: `[usage_limit ${resetAt}]`, workingDirectory: env.DELEGATE_DATA_DIR, priority: 'P0' });
  const runner = await startRunner({ ...env, DELEGATE_MAX_WORKERS: '1' }, engine);
  try {
    const deadline = Date.now() + 30_000;
    let task;
    while ((task = await engine.store.getTask(limited.taskId)).state !== 'paused') {
      if (Date.now() > deadline) throw new Error(`the usage-limited task is ${task.state}, not paused (${task.failReason ?? ''} ${task.error ?? ''})`);
      await sleep(100);
    }
    return task;
  } finally {
    await stopRunner(runner);
  }
}

async function connect(env) {
  const transport = new StdioClientTransport({ command: process.execPath, args: [cliBin, 'mcp', 'start'], env, stderr: 'ignore' });
  const client = new Client({ name: 'bench', version: '0' });
  await client.connect(transport);
  return { client, pid: transport.pid };
}

export async function mcp() {
  const dataDir = tempDir();
  const env = { ...benchEnv(dataDir, 4), LOG_LEVEL: 'warn' };
  let client;
  let engine;
  let emptyEngine;
  const runners = [];
  const emptyDir = tempDir();
  try {
    // Start-up: the database exists and is migrated first, as it is for a user's second session.
    engine = await openEngine(env);
    const initialize = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '0' } } });
    const bare = [];
    const starts = [];
    for (let i = 0; i < STARTS; i++) {
      bare.push((await startTime(['-e', '0'], env)).ms);
      starts.push(await startTime([cliBin, 'mcp', 'start'], env, initialize));
    }
    const bareRss = await bareNodePeakRss();

    ({ client } = await connect(env));
    const ping = await roundTrips(CALLS, () => client.ping());
    const delegate = await roundTrips(CALLS, (i) => client.callTool({ name: 'DelegateTask', arguments: { prompt: `bench ${i}`, workingDirectory: dataDir } }));
    // Up to QUEUED tasks in all, inserted in-process (the round trips above queued some already).
    const have = await engine.store.countUnfinished();
    const batch = [];
    for (let i = have; i < QUEUED; i++) batch.push({ key: String(i), input: { prompt: `queued ${i}`, workingDirectory: dataDir }, dependsOn: [] });
    for (let i = 0; i < batch.length; i += 1000) await engine.service.delegateGraph(batch.slice(i, i + 1000));
    const ids = (await engine.store.listTasks({ limit: 1000 })).map((task) => task.id);
    const statusOne = await roundTrips(CALLS, (i) => client.callTool({ name: 'TaskStatus', arguments: { taskId: ids[i % ids.length] } }));
    const statusPage = await roundTrips(Math.min(CALLS, 300), () => client.callTool({ name: 'TaskStatus', arguments: { limit: 50 } }));
    const pingQueued = await roundTrips(CALLS, () => client.ping());
    const serverPid = client.transport?.pid;
    const queuedRss = serverPid ? currentRss(serverPid) : NaN;

    // The runner: idle on an empty data dir, then over the QUEUED tasks, held back so that it runs none of them.
    const emptyEnv = { ...benchEnv(emptyDir, 4), LOG_LEVEL: 'warn' };
    emptyEngine = await openEngine(emptyEnv);
    const idleRunner = await settledRunner(emptyEnv, emptyEngine);
    runners.push(idleRunner);
    const runnerIdleRss = currentRss(idleRunner.pid);
    const runnerIdlePeak = peakRss(idleRunner.pid);
    await stopRunner(idleRunner);
    const limited = await holdQueue(env, engine);
    const queuedRunner = await settledRunner(env, engine);
    runners.push(queuedRunner);
    const runnerQueuedRss = currentRss(queuedRunner.pid);
    const serverWithRunnerRss = serverPid ? currentRss(serverPid) : NaN;
    const runnerQueuedPeak = peakRss(queuedRunner.pid);
    const unfinished = await engine.store.countUnfinished();
    const agentRuns = agentStarts(env.FAKE_CLAUDE_LOG);
    await stopRunner(queuedRunner);
    if (agentRuns !== 1 || unfinished !== QUEUED + 1) {
      throw new Error(`the held runner ran tasks: ${agentRuns} agent starts (expected 1, the limited task ${limited.id}), ${unfinished} tasks unfinished (expected ${QUEUED + 1})`);
    }

    const p50 = (values) => percentile(values, 50);
    const p99 = (values) => percentile(values, 99);
    const startMs = median(starts.map((start) => start.ms));
    const idleRss = median(starts.map((start) => start.rss));
    const mib = (bytes) => bytes / 1048576;
    const figures = [
      { figure: 'start → initialized (ms; baseline `node -e 0` to exit)', baseline: median(bare), value: startMs, unit: 'ms', target: '≤ baseline + 150' },
      { figure: `idle RSS, ${SERVER_SETTLE_MS / 1000} s after initialize (MiB; baseline bare node)`, baseline: mib(bareRss), value: mib(idleRss), unit: 'MiB', target: '≤ 60' },
      { figure: `RSS with ${QUEUED} tasks queued (MiB)`, baseline: mib(bareRss), value: mib(queuedRss), unit: 'MiB' },
      { figure: 'DelegateTask round trip p50 (ms; baseline ping)', baseline: p50(ping), value: p50(delegate), unit: 'ms', target: '≤ baseline + 0.25' },
      { figure: 'DelegateTask round trip p99 (ms)', baseline: p99(ping), value: p99(delegate), unit: 'ms', target: '≤ 3' },
      { figure: `TaskStatus one id p99, ${QUEUED} tasks (ms)`, baseline: p99(pingQueued), value: p99(statusOne), unit: 'ms', target: '≤ 1.5' },
      { figure: `TaskStatus page of 50 p99, ${QUEUED} tasks (ms)`, baseline: p99(pingQueued), value: p99(statusPage), unit: 'ms', target: '≤ 4' },
      { figure: 'runner RSS idle, empty data dir (MiB; baseline bare node)', baseline: mib(bareRss), value: mib(runnerIdleRss), unit: 'MiB', target: '≤ 90' },
      { figure: `runner RSS, ${QUEUED} tasks queued and held (MiB; baseline the runner on an empty dir)`, baseline: mib(runnerIdleRss), value: mib(runnerQueuedRss), unit: 'MiB', target: '≤ 90' },
      { figure: `MCP server + runner RSS, ${QUEUED} tasks queued (MiB; baseline both idle, empty)`, baseline: mib(idleRss + runnerIdleRss), value: mib(serverWithRunnerRss + runnerQueuedRss), unit: 'MiB', target: '≤ 180' },
    ].map(recordFigure);
    const cell = (value, unit) => (unit === 'MiB' ? value.toFixed(1) : fmt.ms(value));
    printTable(
      `MCP front door: start-up, memory, round trips (${CALLS} calls each, ${QUEUED} tasks queued for TaskStatus)`,
      ['metric', 'baseline', 'delegate', 'delegate − baseline', 'target'],
      figures.map((f) => [f.figure, cell(f.baseline, f.unit), cell(f.value, f.unit), cell(f.value - f.baseline, f.unit), targetCell(f)]),
      [
        `start-up: median of ${STARTS}, spawn → the initialize response on stdout, with the database already migrated`,
        'round trips: an MCP client (the SDK) over stdio to `delegate mcp start`, DELEGATE_AUTOSTART=0, so no runner competes for the CPU',
        `runner RSS: VmRSS of a fresh \`delegate serve\` (DELEGATE_MAX_WORKERS=4), ${RUNNER_SETTLE_MS / 1000} s after it registered; peak (VmHWM) ${fmt.mib(runnerIdlePeak)} MiB on the empty dir, ${fmt.mib(runnerQueuedPeak)} MiB over the queue`,
        `held: a usage limit (reset in an hour) that one P0 task's fake claude reported to an earlier runner keeps the ${QUEUED} claude tasks ready but unclaimed; the runner claimed none (1 agent start in all, that task's); MCP server + runner: both read at the same moment (the server: ${fmt.mib(serverWithRunnerRss)} MiB)`,
      ],
    );
  } finally {
    for (const runner of runners) await stopRunner(runner);
    await client?.close().catch(() => undefined);
    await engine?.store.close().catch(() => undefined);
    await emptyEngine?.store.close().catch(() => undefined);
    removeDir(dataDir);
    removeDir(emptyDir);
  }
}

if (isMain(import.meta.url)) {
  await mcp();
}
