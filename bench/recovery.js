/**
 * Recovery: time from `kill -9` of a runner running 4 agents to all 4 tasks running again, (a) when a front
 * door starts a new runner right after the crash, and (b) when a second runner on the same host survives it.
 * Baseline, in the same run: a cold start — a fresh runner starting the same 4 queued tasks.
 */
import path from 'node:path';
import { benchEnv, fmt, isMain, openEngine, printTable, removeDir, sleep, startRunner, stopRunner, tempDir } from './lib.js';
import { readFileSync, existsSync } from 'node:fs';

const TASKS = 4;

/** Agent start times from the fake claude's log. */
function starts(dataDir) {
  const file = path.join(dataDir, 'fake-claude.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"event":"start"'))
    .map((line) => JSON.parse(line).at);
}

async function waitStarts(dataDir, count, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const seen = starts(dataDir);
    if (seen.length >= count) return seen;
    if (Date.now() > deadline) throw new Error(`only ${seen.length} of ${count} agent starts after ${timeoutMs} ms`);
    await sleep(10);
  }
}

/** Queue TASKS long tasks; returns the engine (store + service) and env. */
async function setup() {
  const dataDir = tempDir();
  const env = { ...benchEnv(dataDir, TASKS), FAKE_CLAUDE_SESSIONS: path.join(dataDir, 'sessions') };
  const engine = await openEngine(env);
  for (let i = 0; i < TASKS; i++) await engine.service.delegate({ prompt: `[sleep 600000] recover ${i}` });
  return { dataDir, env, engine };
}

async function coldStart() {
  const { dataDir, env, engine } = await setup();
  const t0 = Date.now();
  const runner = await startRunner(env, engine);
  const seen = await waitStarts(dataDir, TASKS);
  const elapsed = Math.max(...seen) - t0;
  await stopRunner(runner);
  await engine.store.close();
  removeDir(dataDir);
  return elapsed;
}

async function crash({ survivor }) {
  const { dataDir, env, engine } = await setup();
  const first = await startRunner(env, engine);
  await waitStarts(dataDir, TASKS);
  // A peer that is up before the crash (it finds nothing to claim: all 4 run on the first runner).
  const peer = survivor ? await startRunner(env, engine) : null;
  first.kill('SIGKILL');
  await first.exited;
  const t0 = Date.now();
  const replacement = survivor ? null : await startRunner(env, engine);
  const seen = await waitStarts(dataDir, 2 * TASKS);
  const elapsed = Math.max(...seen.slice(TASKS)) - t0;
  for (const runner of [peer, replacement]) if (runner) await stopRunner(runner);
  await engine.store.close();
  removeDir(dataDir);
  return elapsed;
}

export async function main() {
  const rounds = Number(process.env.BENCH_RECOVERY_ROUNDS ?? 3);
  const cold = [];
  const restart = [];
  const peer = [];
  for (let i = 0; i < rounds; i++) {
    cold.push(await coldStart());
    restart.push(await crash({ survivor: false }));
    peer.push(await crash({ survivor: true }));
  }
  const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
  const base = median(cold);
  printTable(
    `recovery: kill -9 of a runner with ${TASKS} running agents → all ${TASKS} running again (median of ${rounds})`,
    ['scenario', 'time (s)', 'vs cold start'],
    [
      ['baseline: cold start of a fresh runner with 4 queued tasks', fmt.s(base), fmt.ratio(1)],
      ['crash, then a new runner starts (as a front door would)', fmt.s(median(restart)), fmt.ratio(median(restart) / base)],
      ['crash, a second runner on this host was already up', fmt.s(median(peer)), fmt.ratio(median(peer) / base)],
    ],
    [
      'a runner on another host takes over only when the lease lapses: DELEGATE_LEASE_MS (30 s) plus one sweep (2 s)',
      `all rounds (s): cold ${cold.map(fmt.s).join(', ')}; restart ${restart.map(fmt.s).join(', ')}; peer ${peer.map(fmt.s).join(', ')}`,
    ],
  );
}

if (isMain(import.meta.url)) await main();
