/** Database faults: another process holding the write lock, and a failure in the middle of a transaction. */
import path from 'node:path';
import Database from 'libsql';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { openStore, type Store } from '../engine/store/store.js';
import { decideSubmit } from '../engine/task-steps.js';
import { removeDir, tempDir } from './helpers.js';
import { newTask as makeTask } from './store-contract.js';

let dir: string;
let store: Store;
let file: string;

beforeEach(async () => {
  dir = tempDir();
  file = path.join(dir, 'delegate.db');
  store = await openStore(`file:${file}`);
});
afterEach(async () => {
  await store.close();
  removeDir(dir);
});

it('waits out another connection holding the write lock, without blocking the event loop', async () => {
  const other = new Database(file);
  other.exec('BEGIN IMMEDIATE');
  let ticks = 0;
  const ticker = setInterval(() => ticks++, 10);
  const released = new Promise<number>((resolve) =>
    setTimeout(() => {
      other.exec('COMMIT');
      resolve(Date.now());
    }, 600),
  );
  const started = Date.now();
  const first = makeTask({ id: 'task-000000000001' });
  const task = await store.insertTask(first, [], started, (pending, failed) => decideSubmit(first, pending, failed, started));
  const releasedAt = await released;
  clearInterval(ticker);
  other.close();
  expect(task.state).toBe('ready');
  expect(Date.now()).toBeGreaterThanOrEqual(releasedAt);
  // The event loop kept running while the write waited (SQLite's own busy handler would have frozen it for the
  // whole 600 ms: no tick at all). A loaded machine delays timers, so only a few ticks are asked for.
  expect(ticks).toBeGreaterThan(5);
});

it('rolls back every row of a step when the transaction fails half way', async () => {
  const now = Date.now();
  const second = makeTask({ id: 'task-000000000002' });
  await store.insertTask(second, [], now, (pending, failed) => decideSubmit(second, pending, failed, now));
  // The second task of the batch fails after the first was inserted: neither may remain.
  await expect(
    store.insertTaskGraph(
      [
        { task: makeTask({ id: 'task-000000000003' }), dependsOn: [] },
        { task: makeTask({ id: 'task-000000000002' }), dependsOn: [] },
      ],
      now,
      (task, pending, failed) => decideSubmit(task, pending, failed, now),
    ),
  ).rejects.toThrow(/UNIQUE|constraint/i);
  expect(await store.getTask('task-000000000003')).toBeNull();
  expect((await store.listTasks()).map((task) => task.id)).toEqual(['task-000000000002']);
  expect(await store.taskEvents('task-000000000003')).toEqual([]);
});
