/**
 * The MCP front door (issue 17), each against a baseline measured in the same run: `delegate mcp start` →
 * initialized against `node -e 0`; its idle RSS against a bare Node process; the DelegateTask round trip over
 * stdio against an MCP `ping` on the same server; TaskStatus of one task and of a page of 50 with 10,000 tasks in
 * the database, against the same ping. No runner: the tasks stay queued (DELEGATE_AUTOSTART=0).
 */
import { spawn } from 'node:child_process';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { bareNodePeakRss, benchEnv, cliBin, currentRss, fmt, isMain, median, openEngine, percentile, printTable, removeDir, sleep, tempDir } from './lib.js';

const CALLS = Number(process.env.BENCH_MCP_CALLS ?? 1000);
const QUEUED = Number(process.env.BENCH_MCP_QUEUED ?? 10_000);
const STARTS = 7;


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
  await sleep(1000);
  const rss = currentRss(child.pid);
  child.stdin.end();
  await new Promise((resolve) => child.once('exit', resolve));
  return { ms, rss };
}

/** Round trips of `call` in ms, after 50 warm-up calls. */
async function roundTrips(count, call) {
  for (let i = 0; i < 50; i++) await call(i);
  const times = [];
  for (let i = 0; i < count; i++) {
    const t0 = performance.now();
    await call(i);
    times.push(performance.now() - t0);
  }
  return times;
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

    const p50 = (values) => percentile(values, 50);
    const p99 = (values) => percentile(values, 99);
    const startMs = median(starts.map((start) => start.ms));
    const idleRss = median(starts.map((start) => start.rss));
    printTable(
      `MCP front door: start-up, memory, round trips (${CALLS} calls each, ${QUEUED} tasks queued for TaskStatus)`,
      ['metric', 'baseline', 'delegate', 'delegate − baseline', 'target'],
      [
        ['start → initialized (ms; baseline `node -e 0` to exit)', fmt.ms(median(bare)), fmt.ms(startMs), fmt.ms(startMs - median(bare)), '≤ 150 above'],
        ['idle RSS, 1 s after initialize (MiB; baseline bare node)', fmt.mib(bareRss), fmt.mib(idleRss), fmt.mib(idleRss - bareRss), '≤ 60 in all'],
        [`RSS with ${QUEUED} tasks queued (MiB)`, fmt.mib(bareRss), fmt.mib(queuedRss), fmt.mib(queuedRss - bareRss), '—'],
        ['DelegateTask round trip p50 (ms; baseline ping)', fmt.ms(p50(ping)), fmt.ms(p50(delegate)), fmt.ms(p50(delegate) - p50(ping)), '≤ ping + 0.25'],
        ['DelegateTask round trip p99 (ms)', fmt.ms(p99(ping)), fmt.ms(p99(delegate)), fmt.ms(p99(delegate) - p99(ping)), '≤ 3'],
        [`TaskStatus one id p99, ${QUEUED} tasks (ms)`, fmt.ms(p99(pingQueued)), fmt.ms(p99(statusOne)), fmt.ms(p99(statusOne) - p99(pingQueued)), '≤ 1.5'],
        [`TaskStatus page of 50 p99, ${QUEUED} tasks (ms)`, fmt.ms(p99(pingQueued)), fmt.ms(p99(statusPage)), fmt.ms(p99(statusPage) - p99(pingQueued)), '≤ 4'],
      ],
      [
        `start-up: median of ${STARTS}, spawn → the initialize response on stdout, with the database already migrated`,
        'round trips: an MCP client (the SDK) over stdio to `delegate mcp start`, DELEGATE_AUTOSTART=0, so no runner competes for the CPU',
      ],
    );
  } finally {
    await client?.close().catch(() => undefined);
    await engine?.store.close().catch(() => undefined);
    removeDir(dataDir);
  }
}

if (isMain(import.meta.url)) {
  await mcp();
}
