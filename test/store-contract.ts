/**
 * The store contract, written once and run for every driver (River's riverdrivertest.Exercise): the embedded
 * sync driver on a file and in memory, and @libsql/client on a file (the code path remote URLs use).
 */
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import type { NewTask, Store, TaskRecord } from '../engine/store/store.js';
import type { TaskEvent } from '../actors/task.machine.js';
import { decideSubmit, decideTaskEvent, dependantDecider } from '../engine/task-steps.js';
import { UsageError } from '../engine/errors.js';
// The agent registry names the agents a schedule may use.
import '../adapters/agents/index.js';
import { checkScheduleInput } from '../engine/schedule-input.js';
import { decideCreate, decideScheduleEvent, planFiring } from '../engine/schedule-steps.js';
import type { ScheduleRecord, ScheduleStepCommit } from '../engine/store/schedule-records.js';

/** Opens a store; `second` opens another connection to the same database (null where there is only one). */
export interface StoreFactory {
  open(): Promise<Store>;
  second: (() => Promise<Store>) | null;
  cleanup(): void;
}

let counter = 0;
/** A new task with defaults and a unique id, for store tests. */
export function newTask(overrides: Partial<NewTask> = {}): NewTask {
  counter++;
  return {
    id: `task-${String(counter).padStart(12, '0')}`,
    prompt: `prompt ${counter}`,
    priority: 'P2',
    agent: 'claude',
    model: null,
    permissionMode: null,
    allowedTools: [],
    disallowedTools: [],
    workingDirectory: '/tmp',
    timeoutMs: 60_000,
    maxOutputBuffer: 1_000_000,
    maxBudgetUsd: null,
    worktree: false,
    continueFrom: null,
    parentTaskId: null,
    retryOf: null,
    startDelayMs: 0,
    additionalContext: null,
    forkSessionId: null,
    ...overrides,
  };
}

async function insert(store: Store, now: number, overrides: Partial<NewTask> = {}, deps: string[] = []): Promise<TaskRecord> {
  const task = newTask(overrides);
  return store.insertTask(task, deps, now, (pending, failed) => decideSubmit(task, pending, failed, now));
}

async function claim(store: Store, nodeId: string, now: number, skip?: Set<string>): Promise<TaskRecord | null> {
  const claimed = await store.claimNextTask({ nodeId, host: 'host-a', now, leaseMs: 30_000, logPath: (id) => `/logs/${id}.log`, ...(skip ? { skip } : {}) }, (task) => {
    const decided = decideTaskEvent(task, { type: 'CLAIM', node: nodeId }, now);
    if (!decided) throw new Error('CLAIM refused');
    return decided.step;
  });
  return claimed?.task ?? null;
}

async function finish(store: Store, task: TaskRecord, nodeId: string, now: number, exitCode: number): Promise<boolean> {
  const decided = decideTaskEvent(task, { type: 'AGENT_EXITED', exitCode, sawResult: true, isError: false }, now, { exitCode });
  const events = await store.commitTaskStep(task.id, { state: 'running', owner: nodeId, attempt: task.attempt }, decided!.step, {
    now,
    nodeId,
    runEnd: { outcome: 'exited', exitCode, outputBytes: 10, costUsd: 0.5, sessionId: 'sess', numTurns: 2, tokens: { input: 1, output: 2, cacheCreation: 3, cacheRead: 4 }, model: 'm-1' },
    decideDependant: dependantDecider(now),
  });
  return events !== null;
}

/** A cron schedule due every ten minutes, created at `now`. */
async function insertSchedule(store: Store, now: number): Promise<ScheduleRecord> {
  const { schedule, firstRunAt } = checkScheduleInput({ prompt: 'tick', cronExpression: '*/10 * * * *' }, now, '/tmp');
  const step = decideCreate({ at: now, nextRunAt: firstRunAt, oneTime: false, maxRuns: null, expiresAt: null });
  return (await store.insertSchedule(schedule, step, now)).schedule;
}

/** The firing of a schedule's armed slot, as a timer's delivery decides it. */
function firingOf(schedule: ScheduleRecord, timerId?: number): ScheduleStepCommit {
  const now = schedule.nextRunAt!;
  const plan = planFiring(schedule, now, false, () => newTask());
  const decided = decideScheduleEvent(schedule, plan.event, now)!;
  return { id: schedule.id, fence: { state: schedule.state, runs: schedule.runs }, step: decided.step, now, firing: plan.firing, ...(timerId !== undefined ? { timerId } : {}) };
}

/** Run the whole contract against one driver. */
export function exerciseStore(name: string, makeFactory: () => StoreFactory): void {
  describe(`store contract: ${name}`, () => {
    let factory: StoreFactory;
    let store: Store;
    const others: Store[] = [];

    beforeEach(async () => {
      factory = makeFactory();
      store = await factory.open();
    });
    afterEach(async () => {
      for (const other of others.splice(0)) await other.close();
      await store.close();
      factory.cleanup();
    });

    it('inserts a task as ready with its history, and lists newest first with a state filter', async () => {
      const a = await insert(store, 1000);
      const b = await insert(store, 2000);
      expect(a.state).toBe('ready');
      expect((await store.getTask(a.id))?.prompt).toBe(a.prompt);
      expect((await store.listTasks()).map((t) => t.id)).toEqual([b.id, a.id]);
      expect(await store.listTasks({ states: ['running'] })).toEqual([]);
      expect(await store.getTask('task-nope')).toBeNull();
      const events = await store.taskEvents(a.id);
      expect(events.map((e) => [e.event, e.from, e.to])).toEqual([['SUBMIT', 'queued', 'ready']]);
      expect(await store.countUnfinished()).toBe(2);
    });

    it('rejects an unknown dependency and writes nothing', async () => {
      const before = await store.countUnfinished();
      await expect(insert(store, 1000, {}, ['task-doesnotexist'])).rejects.toThrow(UsageError);
      await expect(insert(store, 1000, {}, ['task-doesnotexist'])).rejects.toThrow('dependsOn: task task-doesnotexist does not exist');
      expect(await store.countUnfinished()).toBe(before);
      expect(await store.listTasks()).toHaveLength(0);
    });

    it('claims P0 before P1 before P2, then the oldest, and nothing twice', async () => {
      const p2old = await insert(store, 1000, { priority: 'P2' });
      const p1 = await insert(store, 2000, { priority: 'P1' });
      const p0 = await insert(store, 3000, { priority: 'P0' });
      const p2new = await insert(store, 4000, { priority: 'P2' });
      const order: string[] = [];
      for (let i = 0; i < 4; i++) order.push((await claim(store, 'node-a', 5000))!.id);
      expect(order).toEqual([p0.id, p1.id, p2old.id, p2new.id]);
      expect(await claim(store, 'node-a', 5000)).toBeNull();
    });

    it('a claim sets owner, attempt and lease and opens a run row', async () => {
      const task = await insert(store, 1000);
      const before = await store.dbNow();
      const claimed = (await claim(store, 'node-a', 2000))!;
      expect(claimed).toMatchObject({ id: task.id, state: 'running', owner: 'node-a', attempt: 1, startedAt: 2000 });
      // The lease is the database's now plus the lease, whatever the claimer's clock says (here: 2000).
      expect(claimed.leaseUntil!).toBeGreaterThanOrEqual(before + 30_000);
      expect(claimed.leaseUntil!).toBeLessThanOrEqual((await store.dbNow()) + 30_000);
      const runs = await store.taskRuns(task.id);
      expect(runs).toMatchObject([{ attempt: 1, nodeId: 'node-a', host: 'host-a', logPath: `/logs/${task.id}.log`, endedAt: null }]);
      await store.recordRunProcess(task.id, 1, { pid: 4242, pidStart: 77, sessionId: 's-1' });
      expect((await store.taskRuns(task.id))[0]).toMatchObject({ pid: 4242, pidStart: 77, sessionId: 's-1' });
      expect(await store.ownedRuns('node-a')).toEqual([{ id: task.id, attempt: 1 }]);
    });

    it('fences writes by state, owner and attempt', async () => {
      await insert(store, 1000);
      const claimed = (await claim(store, 'node-a', 2000))!;
      // A stale node (wrong owner) and a stale attempt are both rejected and change nothing.
      const decided = decideTaskEvent(claimed, { type: 'AGENT_EXITED', exitCode: 0, sawResult: true, isError: false }, 3000)!;
      expect(await store.commitTaskStep(claimed.id, { state: 'running', owner: 'node-b', attempt: 1 }, decided.step, { now: 3000 })).toBeNull();
      expect(await store.commitTaskStep(claimed.id, { state: 'running', owner: 'node-a', attempt: 2 }, decided.step, { now: 3000 })).toBeNull();
      expect((await store.getTask(claimed.id))?.state).toBe('running');
      expect(await finish(store, claimed, 'node-a', 3000, 0)).toBe(true);
      const done = (await store.getTask(claimed.id))!;
      expect(done).toMatchObject({ state: 'completed', owner: null, endedAt: 3000, exitCode: 0 });
      expect(await store.taskRuns(claimed.id)).toMatchObject([{ endedAt: 3000, outcome: 'exited', exitCode: 0, costUsd: 0.5, outputBytes: 10, sessionId: 'sess' }]);
      // What the run used is on its row, and summed on its task in the same write.
      const tokens = { input: 1, output: 2, cacheCreation: 3, cacheRead: 4 };
      expect((await store.taskRuns(claimed.id))[0]).toMatchObject({ numTurns: 2, tokens, model: 'm-1' });
      expect(done).toMatchObject({ costUsd: 0.5, numTurns: 2, tokens, modelUsed: 'm-1' });
      expect(await store.sumRunUsage({ group: 'agent', sinceAt: 3000 })).toEqual([{ key: 'claude', runs: 1, costUsd: 0.5, numTurns: 2, tokens }]);
      expect(await store.sumRunUsage({ group: 'none', sinceAt: 3001 })).toEqual([]);
      // A second, late write of the same run is rejected: the task moved on.
      expect(await finish(store, claimed, 'node-a', 4000, 1)).toBe(false);
      expect((await store.getTask(claimed.id))?.state).toBe('completed');
      expect((await store.taskEvents(claimed.id)).map((e) => e.to)).toEqual(['ready', 'running', 'completed']);
    });

    it('counts pending dependencies, readies dependants on completion, fails them transitively on failure', async () => {
      const a = await insert(store, 1000);
      const b = await insert(store, 1001);
      const c = await insert(store, 1002, {}, [a.id, b.id]);
      const d = await insert(store, 1003, {}, [c.id]);
      const e = await insert(store, 1004, {}, [d.id]);
      expect(c).toMatchObject({ state: 'waiting', pendingDeps: 2 });
      expect(await store.dependenciesOf(c.id)).toEqual([a.id, b.id].sort());
      expect(await store.dependantsOf(a.id)).toEqual([c.id]);
      // The same for many tasks at once, each id with an entry (the view of a page).
      const links = await store.taskLinks([a.id, c.id, e.id, 'task-none']);
      expect(Object.fromEntries(links)).toEqual({
        [a.id]: { dependsOn: [], dependants: [c.id] },
        [c.id]: { dependsOn: [a.id, b.id].sort(), dependants: [d.id] },
        [e.id]: { dependsOn: [d.id], dependants: [] },
        'task-none': { dependsOn: [], dependants: [] },
      });
      const ca = (await claim(store, 'n', 2000))!;
      expect(await finish(store, ca, 'n', 2001, 0)).toBe(true);
      expect(await store.getTask(c.id)).toMatchObject({ state: 'waiting', pendingDeps: 1 });
      const cb = (await claim(store, 'n', 2002))!;
      expect(await finish(store, cb, 'n', 2003, 0)).toBe(true);
      expect(await store.getTask(c.id)).toMatchObject({ state: 'ready', pendingDeps: 0 });
      const cc = (await claim(store, 'n', 2004))!;
      expect(cc.id).toBe(c.id);
      expect(await finish(store, cc, 'n', 2005, 3)).toBe(true);
      expect(await store.getTask(c.id)).toMatchObject({ state: 'failed', failReason: 'exit_code' });
      expect(await store.getTask(d.id)).toMatchObject({ state: 'failed', failReason: 'dependency_failed' });
      expect(await store.getTask(e.id)).toMatchObject({ state: 'failed', failReason: 'dependency_failed' });
      expect((await store.getTask(e.id))?.error).toContain(d.id);
      // A task that depends on an already failed task fails at once.
      const late = await insert(store, 3000, {}, [c.id]);
      expect(late).toMatchObject({ state: 'failed', failReason: 'dependency_failed' });
    });

    it('delivers an outcome to every dependant of a fan-out and on down, and streams the step before its cascade', async () => {
      const root = await insert(store, 1000);
      const children = [await insert(store, 1001, {}, [root.id]), await insert(store, 1002, {}, [root.id]), await insert(store, 1003, {}, [root.id])];
      const grandchildren = [];
      for (const [index, child] of children.entries()) grandchildren.push(await insert(store, 1004 + index, {}, [child.id]));
      const start = await store.lastEventId();
      const claimed = (await claim(store, 'n', 2000))!;
      expect(claimed.id).toBe(root.id);
      expect(await finish(store, claimed, 'n', 2001, 3)).toBe(true);
      for (const task of [...children, ...grandchildren]) expect(await store.getTask(task.id)).toMatchObject({ state: 'failed', failReason: 'dependency_failed' });
      // One level after another: the root's own steps, then its dependants', then theirs.
      const levels = (await store.eventsAfter(start, {}, 100)).map((event) => [event.actorId, event.to]);
      expect(levels.slice(0, 2)).toEqual([
        [root.id, 'running'],
        [root.id, 'failed'],
      ]);
      expect(levels.slice(2, 5).sort()).toEqual(children.map((task) => [task.id, 'failed']).sort());
      expect(levels.slice(5).sort()).toEqual(grandchildren.map((task) => [task.id, 'failed']).sort());
      // A completion readies every dependant at once.
      const next = await insert(store, 3000);
      const waiting = [await insert(store, 3001, {}, [next.id]), await insert(store, 3002, {}, [next.id])];
      expect(await finish(store, (await claim(store, 'n', 3003))!, 'n', 3004, 0)).toBe(true);
      for (const task of waiting) expect(await store.getTask(task.id)).toMatchObject({ state: 'ready', pendingDeps: 0 });
    });

    it('inserts a batch in dependency order and rejects cycles, self-dependencies and unknown ids without writing', async () => {
      const decide = (now: number) => (task: NewTask, pending: number, failed: string | null) => decideSubmit(task, pending, failed, now);
      const existing = await insert(store, 500);
      const [x, y, z] = [newTask(), newTask(), newTask()];
      // Listed out of order: z depends on y, y on x and on an existing task.
      const { tasks: inserted } = await store.insertTaskGraph(
        [
          { task: z, dependsOn: [y.id] },
          { task: x, dependsOn: [] },
          { task: y, dependsOn: [x.id, existing.id] },
        ],
        1000,
        decide(1000),
      );
      expect(inserted.map((t) => [t.id, t.state, t.pendingDeps])).toEqual([
        [z.id, 'waiting', 1],
        [x.id, 'ready', 0],
        [y.id, 'waiting', 2],
      ]);
      const before = (await store.listTasks({ limit: 100 })).length;
      const [a, b, c] = [newTask(), newTask(), newTask()];
      await expect(store.insertTaskGraph([{ task: a, dependsOn: [b.id] }, { task: b, dependsOn: [a.id] }], 2000, decide(2000))).rejects.toThrow(
        `dependsOn: cycle ${a.id} → ${b.id} → ${a.id}`,
      );
      await expect(
        store.insertTaskGraph([{ task: a, dependsOn: [c.id] }, { task: b, dependsOn: [a.id] }, { task: c, dependsOn: [b.id] }], 2000, decide(2000)),
      ).rejects.toThrow(`dependsOn: cycle ${a.id} → ${c.id} → ${b.id} → ${a.id}`);
      await expect(store.insertTaskGraph([{ task: a, dependsOn: [a.id] }], 2000, decide(2000))).rejects.toThrow(`dependsOn: task ${a.id} depends on itself`);
      await expect(store.insertTaskGraph([{ task: a, dependsOn: [] }, { task: b, dependsOn: ['task-unknown00000'] }], 2000, decide(2000))).rejects.toThrow(
        'dependsOn: task task-unknown00000 does not exist',
      );
      expect((await store.listTasks({ limit: 100 })).length).toBe(before);
    });

    it('arms a pipeline delay as a durable timer that is delivered once (fake clock)', async () => {
      const first = newTask();
      const second = newTask({ startDelayMs: 60_000 });
      await store.insertTaskGraph(
        [
          { task: first, dependsOn: [] },
          { task: second, dependsOn: [first.id] },
        ],
        1000,
        (task, pending, failed) => decideSubmit(task, pending, failed, 1000),
      );
      const running = (await claim(store, 'n', 2000))!;
      // The claim armed the run's timeout; finishing the run cancels it and arms the dependant's start delay.
      expect(await store.nextTimerDueAt()).toBe(2000 + 60_000);
      expect(await finish(store, running, 'n', 5000, 0)).toBe(true);
      expect(await store.getTask(second.id)).toMatchObject({ state: 'waiting', pendingDeps: 0 });
      expect(await store.nextTimerDueAt()).toBe(65_000);
      expect(await store.claimDueTimers('n', 64_999, 1000, 10)).toEqual([]);
      const [due] = await store.claimDueTimers('n', 65_000, 1000, 10);
      expect(due).toMatchObject({ actorId: second.id, key: 'start', event: { type: 'START_DUE' }, dueAt: 65_000 });
      // Locked for its deliverer: another node neither gets it nor wakes for it before the lock lapses.
      expect(await store.claimDueTimers('m', 65_100, 1000, 10)).toEqual([]);
      expect(await store.nextTimerDueAt()).toBe(66_000);
      const waiting = (await store.getTask(second.id))!;
      const step = decideTaskEvent(waiting, due!.event as TaskEvent, 65_000)!.step;
      expect(await store.commitTaskStep(second.id, { state: 'waiting' }, step, { now: 65_000, nodeId: 'n', timerId: due!.id })).toHaveLength(1);
      expect(await store.getTask(second.id)).toMatchObject({ state: 'ready' });
      expect(await store.timerExists(due!.id)).toBe(false);
      // A second delivery of the same timer (a node whose lock lapsed) writes nothing.
      expect(await store.commitTaskStep(second.id, { state: 'waiting' }, step, { now: 65_001, nodeId: 'm', timerId: due!.id })).toBeNull();
      expect((await claim(store, 'n', 65_000))?.id).toBe(second.id);
    });

    it('rolls back a consumed timer whose step is stale, so it stays armed', async () => {
      const task = await insert(store, 1000);
      const running = (await claim(store, 'n', 2000))!;
      const [due] = await store.claimDueTimers('n', 62_000, 1000, 10);
      expect(due).toMatchObject({ key: 'timeout', event: { type: 'TIMEOUT' }, attempt: 1 });
      const step = decideTaskEvent(running, due!.event as TaskEvent, 62_000)!.step;
      expect(await store.commitTaskStep(task.id, { state: 'running', attempt: 2 }, step, { now: 62_000, timerId: due!.id })).toBeNull();
      expect(await store.timerExists(due!.id)).toBe(true);
      await store.dropTimer(due!.id);
      expect(await store.nextTimerDueAt()).toBeNull();
    });

    it('passes over ready tasks a claim skips or cannot decide, so one bad row never blocks the queue', async () => {
      const bad = await insert(store, 1000);
      const good = await insert(store, 1001);
      expect((await claim(store, 'n', 2000, new Set([bad.id])))?.id).toBe(good.id);
      const third = await insert(store, 1002);
      const claimed = await store.claimNextTask({ nodeId: 'n', host: 'h', now: 3000, leaseMs: 30_000, logPath: () => '/dev/null' }, (task) =>
        task.id === bad.id ? null : decideTaskEvent(task, { type: 'CLAIM', node: 'n' }, 3000)!.step,
      );
      expect(claimed?.task.id).toBe(third.id);
      expect(claimed?.events.map((event) => event.type)).toEqual(['task:running']);
    });

    it('writes a usage-limit hold with its step; a claim skips the held agent and stopped schedules, never others', async () => {
      await insert(store, 900);
      const limited = (await claim(store, 'n', 1000))!;
      const paused = decideTaskEvent(limited, { type: 'USAGE_LIMIT', resetAt: 50_000, at: 2000, limitType: 'five_hour' }, 2000)!;
      const hold = { agent: 'claude', account: 'acct', until: 50_000, limitType: 'five_hour', taskId: limited.id };
      expect(await store.commitTaskStep(limited.id, { state: 'running', owner: 'n', attempt: 1 }, paused.step, { now: 2000, nodeId: 'n', usageHold: hold })).not.toBeNull();
      expect(await store.usageHolds(2000)).toEqual([hold]);
      // An earlier reset never shortens a hold in force; a later one extends it.
      expect(await store.commitTaskStep(limited.id, { state: 'paused' }, paused.step, { now: 2100, usageHold: { ...hold, until: 10_000 } })).not.toBeNull();
      expect((await store.usageHolds(2100))[0]?.until).toBe(50_000);
      expect(await store.usageHolds(50_000)).toEqual([]);

      const claudeTask = await insert(store, 3000, { priority: 'P0' });
      const demoTask = await insert(store, 3001, { agent: 'demo' });
      const held = { all: false, agents: ['claude'], schedules: [] };
      const claimHeld = () =>
        store.claimNextTask({ nodeId: 'n', host: 'h', now: 4000, leaseMs: 30_000, logPath: () => '/dev/null', hold: held }, (task) => decideTaskEvent(task, { type: 'CLAIM', node: 'n' }, 4000)!.step);
      expect((await claimHeld())?.task.id).toBe(demoTask.id);
      expect(await claimHeld()).toBeNull();
      expect(
        await store.claimNextTask({ nodeId: 'n', host: 'h', now: 4000, leaseMs: 30_000, logPath: () => '/dev/null', hold: { all: true, agents: [], schedules: [] } }, () => {
          throw new Error('nothing may be decided while everything is held');
        }),
      ).toBeNull();
      expect((await claim(store, 'n', 4000))?.id).toBe(claudeTask.id);
    });

    it("sums the cost of runs that ended since a time, in all and per schedule's tasks", async () => {
      await insert(store, 900);
      const a = (await claim(store, 'n', 1000))!;
      expect(await finish(store, a, 'n', 5000, 0)).toBe(true);
      await insert(store, 901);
      const b = (await claim(store, 'n', 6000))!;
      expect(await finish(store, b, 'n', 7000, 0)).toBe(true);
      expect(await store.spendSince(0)).toEqual({ totalUsd: 1, bySchedule: {} });
      expect(await store.spendSince(6000)).toEqual({ totalUsd: 0.5, bySchedule: {} });
      expect(await store.spendSince(8000)).toEqual({ totalUsd: 0, bySchedule: {} });
      expect(await store.scheduleBudgets()).toEqual({});
    });

    it('commits schedule firings together or not at all, and reads schedules and their unfinished tasks in one query', async () => {
      const [a, b, c] = [await insertSchedule(store, 1000), await insertSchedule(store, 1000), await insertSchedule(store, 1000)];
      expect((await store.getSchedules([a.id, c.id, 'sched-nope'])).map((s) => s.id).sort()).toEqual([a.id, c.id].sort());
      expect(await store.getSchedules([])).toEqual([]);
      const due = await store.claimDueTimers('n', a.nextRunAt!, 30_000, 10);
      const timerOf = (id: string) => due.find((timer) => timer.actorId === id)!.id;
      expect(due).toHaveLength(3);
      // b's fence is stale (its runs moved on), so the batch is refused whole: a's firing is rolled back with it.
      const stale = { ...firingOf(b, timerOf(b.id)), fence: { state: b.state, runs: b.runs + 1 } };
      expect(await store.commitScheduleSteps([firingOf(a, timerOf(a.id)), stale])).toBeNull();
      expect(await store.scheduleRuns(a.id, 5)).toEqual([]);
      expect(await store.listTasks()).toEqual([]);
      expect((await store.getSchedule(a.id))!.runs).toBe(0);
      expect(await store.timerExists(timerOf(a.id))).toBe(true);
      // Without it, both fire in one commit: a run row and a task each, their timers consumed.
      const written = await store.commitScheduleSteps([firingOf(a, timerOf(a.id)), firingOf(b, timerOf(b.id))]);
      expect(written).toHaveLength(2);
      expect(written!.flat().filter((event) => event.kind === 'schedule').map((event) => event.actorId)).toEqual([a.id, b.id]);
      for (const id of [a.id, b.id]) {
        expect((await store.scheduleRuns(id, 5)).map((run) => run.outcome)).toEqual(['started']);
        expect(await store.timerExists(timerOf(id))).toBe(false);
      }
      expect(await store.listTasks()).toHaveLength(2);
      expect((await store.busySchedules([a.id, b.id, c.id])).sort()).toEqual([a.id, b.id].sort());
      expect(await store.busySchedules([])).toEqual([]);
      // A timer delivered already refuses the step that would consume it again.
      expect(await store.commitScheduleSteps([firingOf((await store.getSchedule(a.id))!, timerOf(a.id))])).toBeNull();
    });

    it('writes every step as an event, readable after an id, by actor and time', async () => {
      const start = await store.lastEventId();
      const a = await insert(store, 1000);
      const b = await insert(store, 1001, {}, [a.id]);
      const running = (await claim(store, 'node-a', 2000))!;
      await finish(store, running, 'node-a', 3000, 0);
      const all = await store.eventsAfter(start, {}, 100);
      expect(all.map((event) => [event.actorId, event.type, event.cause])).toEqual([
        [a.id, 'task:ready', 'SUBMIT'],
        [b.id, 'task:waiting', 'SUBMIT'],
        [a.id, 'task:running', 'CLAIM'],
        [a.id, 'task:completed', 'AGENT_EXITED'],
        [b.id, 'task:ready', 'DEPENDENCY_COMPLETED'],
      ]);
      expect(all[2]).toMatchObject({ kind: 'task', from: 'ready', to: 'running', nodeId: 'node-a', attempt: 1, at: 2000 });
      expect((await store.eventsAfter(all[2]!.id, { actorId: a.id }, 100)).map((event) => event.type)).toEqual(['task:completed']);
      expect((await store.eventsAfter(start, { sinceAt: 3000 }, 100)).length).toBe(2);
      expect((await store.taskEvents(a.id)).map((event) => event.event)).toEqual(['SUBMIT', 'CLAIM', 'AGENT_EXITED']);
      await store.recordNodeActors(
        [{ at: 4000, actorId: 'node-a/slot-0', kind: 'slot', type: 'slot:busy', from: 'starting', to: 'busy', cause: 'AGENT_STARTED', nodeId: 'node-a', attempt: 1, detail: a.id }],
        [{ actorId: 'node-a/slot-0', kind: 'slot', nodeId: 'node-a', snapshot: '{}', updatedAt: 4000 }],
      );
      expect(await store.lastEventId()).toBe(all.at(-1)!.id + 1);
    });

    it('pages tasks newest first by a keyset cursor, with or without a state filter', async () => {
      const inserted = [];
      // Two share a creation time: the cursor breaks the tie by id, so no task is skipped or listed twice.
      for (const at of [1000, 2000, 2000, 3000, 4000]) inserted.push(await insert(store, at));
      const newestFirst = [...inserted].sort((a, b) => b.createdAt - a.createdAt || (a.id < b.id ? 1 : -1)).map((task) => task.id);
      const seen: string[] = [];
      let page = await store.listTasks({ limit: 2 });
      while (page.length > 0) {
        seen.push(...page.map((task) => task.id));
        const last = page.at(-1)!;
        page = await store.listTasks({ limit: 2, after: { createdAt: last.createdAt, id: last.id } });
      }
      expect(seen).toEqual(newestFirst);
      const afterFirst = { createdAt: inserted[3]!.createdAt, id: inserted[3]!.id };
      expect((await store.listTasks({ states: ['ready'], after: afterFirst, limit: 10 })).map((task) => task.id)).toEqual(newestFirst.slice(2));
    });

    it('appends a batch of node events in the order given, with ids that follow each other', async () => {
      const start = await store.lastEventId();
      const batch = Array.from({ length: 7 }, (_, i) => ({
        at: 5000 + i,
        actorId: `node-a/slot-${i % 2}`,
        kind: 'slot' as const,
        type: i % 2 ? ('slot:busy' as const) : ('slot:idle' as const),
        from: null,
        to: i % 2 ? 'busy' : 'idle',
        cause: `E${i}`,
        nodeId: 'node-a',
        attempt: i,
        detail: i === 3 ? null : `d${i}`,
      }));
      await store.recordNodeActors(batch, []);
      const read = await store.eventsAfter(start, {}, 100);
      expect(read.map((event) => event.id)).toEqual(batch.map((_, i) => start + 1 + i));
      expect(read.map(({ id: _id, ...event }) => event)).toEqual(batch);
    });

    it('reads the newest events of one actor, and the snapshots of registered nodes only', async () => {
      const a = await insert(store, 1000);
      await insert(store, 1001);
      await claim(store, 'node-a', 2000);
      expect((await store.recentActorEvents(a.id, 1)).map((event) => event.type)).toEqual(['task:running']);
      expect((await store.recentActorEvents(a.id, 10)).map((event) => event.type)).toEqual(['task:ready', 'task:running']);
      await store.registerNode({ id: 'node-live', host: 'host-a', pid: 1, pidStart: null, dataDir: '/d', version: '1', autostarted: false, startedAt: 1000, heartbeatAt: 1000 });
      await store.recordNodeActors(
        [],
        [
          { actorId: 'node-live/slot-0', kind: 'slot', nodeId: 'node-live', snapshot: '{"value":"idle"}', updatedAt: 4000 },
          { actorId: 'node-gone/slot-0', kind: 'slot', nodeId: 'node-gone', snapshot: '{"value":"idle"}', updatedAt: 4000 },
        ],
      );
      expect(await store.liveActorSnapshots()).toEqual([{ actorId: 'node-live/slot-0', kind: 'slot', nodeId: 'node-live', snapshot: '{"value":"idle"}', updatedAt: 4000 }]);
    });

    it('renews leases of owned runs only, by the database clock', async () => {
      await insert(store, 1000);
      await insert(store, 1001);
      const a = (await claim(store, 'node-a', 2000))!;
      const b = (await claim(store, 'node-b', 2000))!;
      const bLease = (await store.getTask(b.id))?.leaseUntil;
      const before = await store.dbNow();
      expect(await store.renewLeases('node-a', 99_000, [{ id: a.id, attempt: 1 }])).toEqual([{ id: a.id, attempt: 1 }]);
      const after = await store.dbNow();
      const lease = (await store.getTask(a.id))!.leaseUntil!;
      expect(lease).toBeGreaterThanOrEqual(before + 99_000);
      expect(lease).toBeLessThanOrEqual(after + 99_000);
      // A run it owns but no longer runs is reported, not renewed.
      expect(await store.renewLeases('node-b', 99_000, [])).toEqual([{ id: b.id, attempt: 1 }]);
      expect((await store.getTask(b.id))?.leaseUntil).toBe(bLease);
    });

    it('lists open runs, takes a run over fenced on its lease, ends runs, and deregisters only when idle', async () => {
      const task = await insert(store, 1000);
      await claim(store, 'node-a', 2000);
      const { now, runs } = await store.openRuns();
      expect(Math.abs(now - (await store.dbNow()))).toBeLessThan(1000);
      expect(runs).toHaveLength(1);
      expect(runs[0]).toMatchObject({ taskId: task.id, attempt: 1, nodeId: 'node-a', taskState: 'running', taskOwner: 'node-a', node: null });
      expect(runs[0]!.leaseUntil!).toBeGreaterThan(now);
      // Lease still valid: no takeover; lapsed (renewed into the past): taken over once.
      expect(await store.takeOverRun({ taskId: task.id, attempt: 1, from: 'node-a', to: 'node-b', leaseMs: 99_000, requireLapsed: true })).toBe(false);
      await store.renewLeases('node-a', -1000, [{ id: task.id, attempt: 1 }]);
      expect(await store.takeOverRun({ taskId: task.id, attempt: 1, from: 'node-a', to: 'node-b', leaseMs: 99_000, requireLapsed: true })).toBe(true);
      expect(await store.takeOverRun({ taskId: task.id, attempt: 1, from: 'node-a', to: 'node-c', leaseMs: 99_000, requireLapsed: false })).toBe(false);
      expect(await store.getTask(task.id)).toMatchObject({ owner: 'node-b', state: 'running' });
      // The run row moves with it: the sweep judges a run by the node that holds it now.
      expect((await store.openRuns()).runs[0]).toMatchObject({ nodeId: 'node-b', taskOwner: 'node-b' });
      // Still the task's live run: only the step that moves the task on may end it.
      await store.endRun(task.id, 1, 'lost', 50_000);
      expect((await store.openRuns()).runs).toHaveLength(1);
      const taken = (await store.getTask(task.id))!;
      const lost = decideTaskEvent(taken, { type: 'LEASE_LOST' }, 50_000)!.step;
      expect(await store.commitTaskStep(task.id, { state: 'running', owner: 'node-b', attempt: 1 }, lost, { now: 50_000 })).toHaveLength(1);
      await store.endRun(task.id, 1, 'lost', 50_000);
      expect((await store.openRuns()).runs).toEqual([]);
      expect((await store.taskRuns(task.id))[0]).toMatchObject({ endedAt: 50_000, outcome: 'lost' });
      const node = { id: 'node-idle', host: 'h', pid: 1, pidStart: null, dataDir: '/d', version: '0', autostarted: false, startedAt: 1, heartbeatAt: 1 };
      await store.registerNode(node);
      expect(await store.removeNodeIfIdle('node-idle')).toBe(false);
      expect((await store.listNodes()).map((n) => n.id)).toEqual(['node-idle']);
    });

    it('registers nodes, refuses a second live one on a host when asked, and heartbeats', async () => {
      const node = { id: 'node-1', host: 'h', pid: 1, pidStart: null, dataDir: '/d', version: '0', autostarted: true, startedAt: 1, heartbeatAt: 1 };
      expect(await store.registerNode(node)).toEqual({ registered: true });
      const second = { ...node, id: 'node-2' };
      expect(await store.registerNode(second, { isAlive: () => true })).toMatchObject({ registered: false, existing: { id: 'node-1' } });
      expect(await store.registerNode(second, { isAlive: () => false })).toEqual({ registered: true });
      expect((await store.listNodes('h')).map((n) => n.id)).toEqual(['node-1', 'node-2']);
      const before = await store.dbNow();
      expect(await store.heartbeatNode('node-1')).toBe(true);
      const heartbeat = (await store.listNodes()).find((n) => n.id === 'node-1')!.heartbeatAt;
      expect(heartbeat).toBeGreaterThanOrEqual(before);
      expect(heartbeat).toBeLessThanOrEqual(await store.dbNow());
      await store.removeNode('node-1');
      expect(await store.heartbeatNode('node-1')).toBe(false);
    });

    it('never gives one task to two connections claiming at once', async () => {
      if (!factory.second) return;
      const other = await factory.second();
      others.push(other);
      for (let i = 0; i < 12; i++) await insert(store, 1000 + i);
      const claimsA: Promise<TaskRecord | null>[] = [];
      const claimsB: Promise<TaskRecord | null>[] = [];
      for (let i = 0; i < 8; i++) {
        claimsA.push(claim(store, 'node-a', 5000));
        claimsB.push(claim(other, 'node-b', 5000));
      }
      const got = [...(await Promise.all(claimsA)), ...(await Promise.all(claimsB))].filter((t): t is TaskRecord => t !== null);
      expect(got).toHaveLength(12);
      expect(new Set(got.map((t) => t.id)).size).toBe(12);
      // The other connection's commits are visible to this one's change counter (embedded driver only).
      const v1 = await store.dataVersion();
      if (v1 !== null) {
        await insert(other, 9000);
        expect(await store.dataVersion()).not.toBe(v1);
      }
    });
  });
}
