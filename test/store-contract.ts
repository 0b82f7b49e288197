/**
 * The store contract, written once and run for every driver (River's riverdrivertest.Exercise): the embedded
 * sync driver on a file and in memory, and @libsql/client on a file (the code path remote URLs use).
 */
import { describe, expect, it, beforeEach, afterEach } from 'vitest';
import type { NewTask, Store, TaskRecord } from '../engine/store/store.js';
import { decideSubmit, decideTaskEvent, dependantDecider } from '../engine/task-steps.js';
import { UsageError } from '../engine/errors.js';

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
  return store.insertTask(newTask(overrides), deps, now, (pending, failed) => decideSubmit(pending, failed, now));
}

async function claim(store: Store, nodeId: string, now: number): Promise<TaskRecord | null> {
  return store.claimNextTask({ nodeId, host: 'host-a', now, leaseMs: 30_000, logPath: (id) => `/logs/${id}.log` }, (task) => {
    const decided = decideTaskEvent(task, { type: 'CLAIM', node: nodeId }, now);
    if (!decided) throw new Error('CLAIM refused');
    return decided.step;
  });
}

async function finish(store: Store, task: TaskRecord, nodeId: string, now: number, exitCode: number): Promise<boolean> {
  const decided = decideTaskEvent(task, { type: 'AGENT_EXITED', exitCode, sawResult: true, isError: false }, now, { exitCode });
  return store.commitTaskStep(task.id, { state: 'running', owner: nodeId, attempt: task.attempt }, decided!.step, {
    now,
    nodeId,
    runEnd: { outcome: 'exited', exitCode, outputBytes: 10, costUsd: 0.5, sessionId: 'sess' },
    decideDependant: dependantDecider(now),
  });
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
      const claimed = (await claim(store, 'node-a', 2000))!;
      expect(claimed).toMatchObject({ id: task.id, state: 'running', owner: 'node-a', attempt: 1, leaseUntil: 32_000, startedAt: 2000 });
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
      expect(await store.commitTaskStep(claimed.id, { state: 'running', owner: 'node-b', attempt: 1 }, decided.step, { now: 3000 })).toBe(false);
      expect(await store.commitTaskStep(claimed.id, { state: 'running', owner: 'node-a', attempt: 2 }, decided.step, { now: 3000 })).toBe(false);
      expect((await store.getTask(claimed.id))?.state).toBe('running');
      expect(await finish(store, claimed, 'node-a', 3000, 0)).toBe(true);
      const done = (await store.getTask(claimed.id))!;
      expect(done).toMatchObject({ state: 'completed', owner: null, endedAt: 3000, exitCode: 0 });
      expect(await store.taskRuns(claimed.id)).toMatchObject([{ endedAt: 3000, outcome: 'exited', exitCode: 0, costUsd: 0.5, outputBytes: 10, sessionId: 'sess' }]);
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

    it('inserts a batch in dependency order and rejects cycles, self-dependencies and unknown ids without writing', async () => {
      const decide = (now: number) => (_task: NewTask, pending: number, failed: string | null) => decideSubmit(pending, failed, now);
      const existing = await insert(store, 500);
      const [x, y, z] = [newTask(), newTask(), newTask()];
      // Listed out of order: z depends on y, y on x and on an existing task.
      const inserted = await store.insertTaskGraph(
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

    it('keeps a delayed task from being claimed before its time (fake clock)', async () => {
      const first = newTask();
      const second = newTask({ startDelayMs: 60_000 });
      await store.insertTaskGraph(
        [
          { task: first, dependsOn: [] },
          { task: second, dependsOn: [first.id] },
        ],
        1000,
        (task, pending, failed) => decideSubmit(pending, failed, 1000, { startDelayMs: task.startDelayMs }),
      );
      const running = (await claim(store, 'n', 2000))!;
      expect(await finish(store, running, 'n', 5000, 0)).toBe(true);
      expect(await store.getTask(second.id)).toMatchObject({ state: 'ready', runAfter: 65_000 });
      expect(await claim(store, 'n', 64_999)).toBeNull();
      expect((await claim(store, 'n', 65_000))?.id).toBe(second.id);
    });

    it('renews leases of owned runs only', async () => {
      await insert(store, 1000);
      await insert(store, 1001);
      const a = (await claim(store, 'node-a', 2000))!;
      const b = (await claim(store, 'node-b', 2000))!;
      expect(await store.renewLeases('node-a', 99_000, [{ id: a.id, attempt: 1 }])).toEqual([{ id: a.id, attempt: 1 }]);
      expect((await store.getTask(a.id))?.leaseUntil).toBe(99_000);
      expect((await store.getTask(b.id))?.leaseUntil).toBe(32_000);
      // A run it owns but no longer runs is reported, not renewed.
      expect(await store.renewLeases('node-b', 99_000, [])).toEqual([{ id: b.id, attempt: 1 }]);
      expect((await store.getTask(b.id))?.leaseUntil).toBe(32_000);
    });

    it('lists open runs, takes a run over fenced on its lease, ends runs, and deregisters only when idle', async () => {
      const task = await insert(store, 1000);
      await claim(store, 'node-a', 2000);
      const [open] = await store.openRuns();
      expect(open).toMatchObject({ taskId: task.id, attempt: 1, nodeId: 'node-a', taskState: 'running', taskOwner: 'node-a', leaseUntil: 32_000, node: null });
      // Lease still valid: no takeover; lapsed: taken over once.
      expect(await store.takeOverRun({ taskId: task.id, attempt: 1, from: 'node-a', to: 'node-b', leaseUntil: 99_000, leaseLapsedBy: 30_000 })).toBe(false);
      expect(await store.takeOverRun({ taskId: task.id, attempt: 1, from: 'node-a', to: 'node-b', leaseUntil: 99_000, leaseLapsedBy: 40_000 })).toBe(true);
      expect(await store.takeOverRun({ taskId: task.id, attempt: 1, from: 'node-a', to: 'node-c', leaseUntil: 99_000 })).toBe(false);
      expect(await store.getTask(task.id)).toMatchObject({ owner: 'node-b', leaseUntil: 99_000, state: 'running' });
      await store.endRun(task.id, 1, 'lost', 50_000);
      expect(await store.openRuns()).toEqual([]);
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
      expect(await store.heartbeatNode('node-1', 50)).toBe(true);
      expect((await store.listNodes()).find((n) => n.id === 'node-1')?.heartbeatAt).toBe(50);
      await store.removeNode('node-1');
      expect(await store.heartbeatNode('node-1', 60)).toBe(false);
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
