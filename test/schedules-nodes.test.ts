/**
 * DESIGN §6, SPEC §9: two `delegate serve` processes on one database file and a schedule with a slot every
 * second (6-field cron, allowed only through the internal `allowSeconds` path: the public contract is 5-field).
 * Every slot is handled exactly once — a task started, or recorded as skipped because the previous run was still
 * going — and no slot ever gets two tasks, whichever node's timer loop gets there first.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
// ScheduleService validates agent names against the registry, which this file fills (no CLI in this process).
import '../adapters/agents/index.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig } from '../engine/config.js';
import { ScheduleService } from '../engine/schedule-service.js';
import { openStore, type Store } from '../engine/store/store.js';
import { TaskService } from '../engine/task-service.js';
import { eventually, removeDir, serve, stopRunners, tempDir, testEnv } from './helpers.js';

let dataDir: string;
let env: NodeJS.ProcessEnv;
let store: Store;
const runners: ChildProcess[] = [];

beforeEach(async () => {
  dataDir = tempDir('delegate-sched-nodes-');
  env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0', LOG_LEVEL: 'info' });
  store = await openStore(loadConfig(env).databaseUrl);
});

afterEach(async () => {
  await stopRunners(env);
  for (const runner of runners.splice(0)) runner.kill('SIGKILL');
  await store.close();
  removeDir(dataDir);
});

it('fires each one-second slot exactly once with two runners on one database', async () => {
  const config = loadConfig(env);
  const tasks = new TaskService(store, config, systemClock, dataDir);
  const schedules = new ScheduleService(store, config, systemClock, dataDir, tasks);
  runners.push(serve(env), serve(env));
  await eventually(async () => ((await store.listNodes()).length === 2 ? true : null), 20_000);
  // fail: a slot a busy runner reaches late is recorded as missed instead of vanishing, so every slot shows up.
  const { scheduleId } = await schedules.create({ prompt: 'tick', cronExpression: '* * * * * *', missedRunPolicy: 'fail' }, { allowSeconds: true });
  const started = Date.now();
  await new Promise((resolve) => setTimeout(resolve, 7000));
  await schedules.cancel(scheduleId, 'test over');
  const history = (await schedules.get(scheduleId, 1000)).history.reverse();
  const firedBy = new Set((await store.eventsAfter(0, { actorId: scheduleId }, 10_000)).filter((event) => event.cause === 'FIRE').map((event) => event.nodeId));

  const slots = history.map((run) => Date.parse(run.scheduledFor));
  expect(new Set(slots).size).toBe(slots.length);
  // Consecutive seconds from the first slot to the last: none skipped silently, none twice.
  for (let i = 1; i < slots.length; i++) expect(slots[i]! - slots[i - 1]!).toBe(1000);
  expect(slots.length).toBeGreaterThanOrEqual(6);
  expect(slots.at(-1)!).toBeGreaterThanOrEqual(started + 5000);
  const withTask = history.filter((run) => run.taskId !== null);
  expect(withTask.length).toBeGreaterThan(0);
  const scheduled = (await store.listTasks({ limit: 1000 })).filter((task) => task.prompt === 'tick');
  // One task per started slot and no other: a second firing of a slot would have added a task without a row.
  expect(scheduled.map((task) => task.id).sort()).toEqual(withTask.map((run) => run.taskId).sort());
  expect(history.every((run) => ['started', 'skipped_overlap', 'missed'].includes(run.outcome))).toBe(true);
  expect(firedBy.size).toBeGreaterThanOrEqual(1);
}, 60_000);
