/**
 * Recovery: time from `kill -9` of a runner running 4 agents to all 4 runs followed by a runner again, (a) when a
 * front door starts a new runner right after the crash, and (b) when a second runner on the same host survives it.
 * The agents outlive their runner (the agent host runs them on), so a runner adopts them: none is started again, which the
 * table checks. Baseline, in the same run: a cold start — a fresh runner starting the same 4 queued tasks.
 */
import path from 'node:path';
import { benchEnv, fmt, isMain, openEngine, printTable, quick, recordFigure, removeDir, sleep, startRunner, stopRunner, targetCell, tempDir } from './lib.js';
import { readFileSync, existsSync } from 'node:fs';

/** Agents running when the runner is killed; fewer under --quick, since each slot joins the pool after the last one settled. */
const TASKS = quick ? 2 : 4;

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
  const ids = [];
  for (let i = 0; i < TASKS; i++) ids.push((await engine.service.delegate({ prompt: `[sleep 600000] recover ${i}` })).taskId);
  return { dataDir, env, engine, ids };
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

/** Wait until every task runs under an owner other than `deadNode` (it was adopted or claimed again). */
async function waitFollowed(engine, ids, deadNode, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const tasks = await Promise.all(ids.map((id) => engine.store.getTask(id)));
    if (tasks.every((task) => task.state === 'running' && task.owner !== null && task.owner !== deadNode)) return;
    if (Date.now() > deadline) throw new Error(`not every task was followed again after ${timeoutMs} ms`);
    await sleep(10);
  }
}

async function crash({ survivor }) {
  const { dataDir, env, engine, ids } = await setup();
  const leaseMs = engine.config.leaseMs;
  const first = await startRunner(env, engine);
  await waitStarts(dataDir, TASKS);
  const [deadNode] = (await engine.store.listNodes()).map((node) => node.id);
  // A peer that is up before the crash (it finds nothing to claim: all 4 run on the first runner).
  const peer = survivor ? await startRunner(env, engine) : null;
  first.kill('SIGKILL');
  await first.exited;
  const t0 = Date.now();
  const replacement = survivor ? null : await startRunner(env, engine);
  await waitFollowed(engine, ids, deadNode);
  const elapsed = Date.now() - t0;
  const restarted = starts(dataDir).length - TASKS;
  for (const runner of [peer, replacement]) if (runner) await stopRunner(runner);
  // A run adopted just before its runner stopped has no slot yet, so its agent lives on for the next runner (as
  // designed); nothing comes here, so end those process groups before the data dir goes.
  for (const id of ids) {
    for (const run of await engine.store.taskRuns(id)) {
      try {
        if (run.pid) process.kill(-run.pid, 'SIGKILL');
      } catch {
        // Gone already.
      }
    }
  }
  await engine.store.close();
  removeDir(dataDir);
  return { elapsed, restarted, leaseMs };
}

export async function main() {
  const rounds = Number(process.env.BENCH_RECOVERY_ROUNDS ?? (quick ? 1 : 3));
  const cold = [];
  const restart = [];
  const peer = [];
  for (let i = 0; i < rounds; i++) {
    cold.push(await coldStart());
    restart.push(await crash({ survivor: false }));
    peer.push(await crash({ survivor: true }));
  }
  const restarted = [...restart, ...peer].reduce((sum, round) => sum + round.restarted, 0);
  const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];
  const base = median(cold);
  const restartTimes = restart.map((round) => round.elapsed);
  const peerTimes = peer.map((round) => round.elapsed);
  // Issue 17's target: every run followed again within the lease period (what another host waits) + 2 s.
  const lease = restart[0].leaseMs / 1000;
  const crashFigure = (scenario, times) => recordFigure({ figure: `${scenario} (s; baseline the lease period)`, baseline: lease, value: median(times) / 1000, unit: 's', target: '≤ baseline + 2' });
  const afterRestart = crashFigure(`kill -9 → all ${TASKS} followed again, a new runner starts`, restartTimes);
  const byPeer = crashFigure(`kill -9 → all ${TASKS} followed again, by a runner already up`, peerTimes);
  const coldFigure = recordFigure({ figure: `cold start: a fresh runner → its ${TASKS} queued tasks started (s)`, value: base / 1000, unit: 's' });
  printTable(
    `recovery: kill -9 of a runner with ${TASKS} running agents → all ${TASKS} followed by a runner again (median of ${rounds})`,
    ['scenario', 'time (s)', 'vs cold start', `target (lease ${lease} s)`],
    [
      [`baseline: cold start of a fresh runner with ${TASKS} queued tasks`, coldFigure.value.toFixed(2), fmt.ratio(1), '—'],
      ['crash, then a new runner starts and adopts them (as a front door would)', afterRestart.value.toFixed(2), fmt.ratio(median(restartTimes) / base), targetCell(afterRestart)],
      ['crash, a second runner on this host was already up and adopts them', byPeer.value.toFixed(2), fmt.ratio(median(peerTimes) / base), targetCell(byPeer)],
    ],
    [
      `agents started again after the crashes: ${restarted} (their work is kept: the runs are adopted, not restarted)`,
      'a runner on another host takes over only after the lease lapsed and the agent host ended the run\'s agent: DELEGATE_LEASE_MS (30 s) + a third of it + the kill grace (5 s) + 1 s, plus one sweep (2 s)',
      `all rounds (s): cold ${cold.map(fmt.s).join(', ')}; restart ${restartTimes.map(fmt.s).join(', ')}; peer ${peerTimes.map(fmt.s).join(', ')}`,
    ],
  );
}

if (isMain(import.meta.url)) await main();
