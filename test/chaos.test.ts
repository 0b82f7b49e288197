/**
 * Chaos (issue 6): three `delegate serve` processes on one database file run a 200-task DAG of short fake-claude
 * tasks while a loop kill -9s a random runner ten times and restarts it. At the end every task completed, no
 * task ran twice at the same time, no agent process is left, and the history accounts for every attempt.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
// TaskService validates agent names against the registry, which this file fills (no CLI in this process).
import '../adapters/agents/index.js';
import { loadConfig } from '../engine/config.js';
import { systemClock } from '../engine/clock.js';
import { openStore, type Store } from '../engine/store/store.js';
import { TaskService } from '../engine/task-service.js';
import { eventually, fakeClaudeEvents, processExists, removeDir, serve, stopRunners, tempDir, testEnv } from './helpers.js';

const taskCount = 200;
const kills = 10;
let dataDir: string;
let env: NodeJS.ProcessEnv;
let store: Store;
const runners: ChildProcess[] = [];

/** A small deterministic PRNG, so a failing DAG can be reproduced. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state * 1664525 + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

beforeAll(async () => {
  dataDir = tempDir('delegate-chaos-');
  env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0', DELEGATE_MAX_WORKERS: '3', DELEGATE_LEASE_MS: '3000', LOG_LEVEL: 'info' });
  store = await openStore(loadConfig(env).databaseUrl);
});

afterAll(async () => {
  for (const runner of runners) runner.kill('SIGKILL');
  await stopRunners(env);
  await store.close();
  removeDir(dataDir);
});

it('survives ten kill -9s of three runners on one database without losing or doubling a task', async () => {
  const rand = random(20261127);
  const tasks = new TaskService(store, loadConfig(env), systemClock, dataDir);
  const ids: string[] = [];
  for (let i = 0; i < taskCount; i++) {
    const deps = new Set<string>();
    for (let d = Math.floor(rand() * 3); d > 0 && ids.length > 0; d--) deps.add(ids[Math.floor(rand() * ids.length)]!);
    const sleep = 50 + Math.floor(rand() * 400);
    ids.push((await tasks.delegate({ prompt: `[sleep ${sleep}] chaos ${i}`, dependsOn: [...deps] })).taskId);
  }
  const slots = [serve(env), serve(env), serve(env)];
  runners.push(...slots);
  // Kill a random runner every few seconds, so the kills are spread over the run (a requeued task goes to the
  // front of the queue; killing every second would keep hitting the same tasks, which the recovery limit is
  // meant to stop).
  for (let k = 0; k < kills; k++) {
    await new Promise((resolve) => setTimeout(resolve, 1500 + rand() * 2500));
    const victim = Math.floor(rand() * slots.length);
    slots[victim]!.kill('SIGKILL');
    await new Promise((resolve) => setTimeout(resolve, rand() * 500));
    slots[victim] = serve(env);
    runners.push(slots[victim]!);
  }

  const finished = await eventually(async () => {
    const rows = await Promise.all(ids.map((id) => store.getTask(id)));
    return rows.every((row) => row && ['completed', 'failed', 'cancelled'].includes(row.state)) ? rows : null;
  }, 240_000, 250);
  const notCompleted = finished.filter((row) => row!.state !== 'completed').map((row) => `${row!.id} ${row!.state} ${row!.failReason} ${row!.error}`);
  expect(notCompleted.slice(0, 5).join("\n") + ` (${notCompleted.length} in all)`).toBe(" (0 in all)");

  // No task ran twice at the same time: per task, the agent runs (from the fake claude's own log) never overlap.
  const events = fakeClaudeEvents(dataDir);
  const endOf = new Map(events.filter((event) => event.event === 'end').map((event) => [event.pid, event.at]));
  // A resumed run's prompt carries a note before the task, so runs are keyed by the task's own tag.
  const tagOf = (prompt: string): string => /chaos \d+$/.exec(prompt)![0];
  const runsByPrompt = new Map<string, Array<{ start: number; end: number; pid: number }>>();
  for (const start of events.filter((event) => event.event === 'start')) {
    const end = endOf.get(start.pid);
    expect(end, `agent ${start.pid} (${start.prompt}) has no end: it was never stopped or was killed without notice`).toBeDefined();
    const tag = tagOf(start.prompt);
    runsByPrompt.set(tag, [...(runsByPrompt.get(tag) ?? []), { start: start.at, end: end!, pid: start.pid }]);
  }
  for (const [prompt, runs] of runsByPrompt) {
    runs.sort((a, b) => a.start - b.start);
    for (let i = 1; i < runs.length; i++) {
      expect(runs[i]!.start, `${prompt}: run ${runs[i]!.pid} started before run ${runs[i - 1]!.pid} ended`).toBeGreaterThanOrEqual(runs[i - 1]!.end);
    }
  }
  expect(runsByPrompt.size).toBe(taskCount);

  // No agent process is left running.
  for (const start of events.filter((event) => event.event === 'start')) expect(processExists(start.pid)).toBe(false);

  // History accounts for every attempt: runs 1..attempt, each ended, the last one completed; every agent start
  // belongs to one of them.
  let lost = 0;
  for (const row of finished) {
    const runs = await store.taskRuns(row!.id);
    expect(runs.map((run) => run.attempt)).toEqual(Array.from({ length: row!.attempt }, (_, i) => i + 1));
    expect(runs.every((run) => run.endedAt !== null)).toBe(true);
    expect(runs.at(-1)!.outcome).toBe('exited');
    lost += runs.filter((run) => run.outcome === 'lost').length;
    const agentStarts = runsByPrompt.get(tagOf(row!.prompt))!.length;
    expect(agentStarts).toBeLessThanOrEqual(runs.length);
    expect(agentStarts).toBeGreaterThanOrEqual(1);
  }
  // The kills did hit running work (otherwise this test proved nothing): runs of a killed runner were adopted
  // by a surviving one (their agents live on), collected (they ended meanwhile), or lost and resumed.
  const engineEvents = await store.eventsAfter(0, {}, 1_000_000);
  const adopted = engineEvents.filter((event) => event.type === 'node:adopted').length;
  const collected = engineEvents.filter((event) => event.type === 'node:collected').length;
  console.log(`chaos: ${kills} kill -9s hit ${adopted} runs adopted, ${collected} collected, ${lost} lost and resumed; all ${taskCount} tasks completed`);
  expect(adopted + collected + lost).toBeGreaterThan(0);
}, 300_000);
