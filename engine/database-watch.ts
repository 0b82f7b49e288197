/**
 * When a runner, or a follower of the event stream (WaitForTask, the inspector), looks at the database for other
 * processes' commits (a new task, a cancel, a dependant made ready by another runner).
 *
 * On an embedded file, every commit of any process writes the file's write-ahead log (`<db>-wal`), and the
 * kernel tells a watcher of its directory (inotify, FSEvents). While writes go on, looks come every `fastMs` as
 * before; with no write for `activeMs`, only every `slowMs`, in case a change notice went missing, and the first
 * write then brings the next look forward to within a few milliseconds. An idle runner polled 20 times a second
 * before: 12-18 ms of CPU a second, against 6-7 with one look a second (this 2-core VM). Where the directory
 * cannot be watched, looks come every `fastMs`; on a server (another host's commits write no local file), every
 * `remoteWatchMs`.
 */
import { watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { every, type Clock } from './clock.js';
import type { Store } from './store/store.js';

export interface CommitWatchTiming {
  /** Between looks while the database is written to, and always where writes cannot be watched. */
  fastMs: number;
  /** Between looks once nothing has written for `activeMs`. */
  slowMs: number;
  activeMs: number;
}

const defaultCommitWatchTiming: Omit<CommitWatchTiming, 'fastMs'> = { slowMs: 1000, activeMs: 500 };

/** How often a process looks for other hosts' commits on a libSQL server (one small request each time). */
export const remoteWatchMs = 250;

/**
 * Run `look` for a store's commits, never two at once: on its file as {@link watchForCommits} says (`pollMs`
 * while it is written to), on a server every `remoteWatchMs` at least. Returns a stop function that resolves
 * once a look in flight has finished.
 */
export function watchStoreForCommits(clock: Clock, store: Pick<Store, 'kind' | 'file'>, pollMs: number, look: () => Promise<void>): () => Promise<void> {
  return store.kind === 'embedded'
    ? watchForCommits(clock, store.file, { fastMs: pollMs, ...defaultCommitWatchTiming }, look)
    : every(clock, Math.max(pollMs, remoteWatchMs), look);
}

/**
 * A write is looked at after this delay: a commit writes its frames one by one and then the log's index, which
 * is what a look reads, so an immediate look could come too early (the fast looks that follow catch it anyway).
 */
const SETTLE_MS = 2;

/**
 * Run `look` as described above, never two at once, for the database at `file` (null: not a local file).
 * Returns a stop function that resolves once a look in flight has finished.
 */
export function watchForCommits(clock: Clock, file: string | null, timing: CommitWatchTiming, look: () => Promise<void>): () => Promise<void> {
  const watcher = file === null ? null : watchDirectory(file);
  if (!watcher) return every(clock, timing.fastMs, look);
  const walName = `${path.basename(file!)}-wal`;
  let stopped = false;
  let lastWrite = clock.now();
  let handle: unknown;
  /** When the pending look runs (Infinity while one is in flight). */
  let dueAt = Infinity;
  let current: Promise<void> = Promise.resolve();

  const schedule = (ms: number): void => {
    if (stopped) return;
    clock.clearTimeout(handle);
    dueAt = clock.now() + ms;
    handle = clock.setTimeout(round, ms);
  };
  const round = (): void => {
    if (stopped) return;
    dueAt = Infinity;
    current = look().finally(() => schedule(clock.now() - lastWrite < timing.activeMs ? timing.fastMs : timing.slowMs));
  };
  watcher.on('change', (_kind, name) => {
    // No name (some platforms): any change in the directory counts.
    if (name !== null && name !== undefined && String(name) !== walName) return;
    lastWrite = clock.now();
    // Only a slow look is brought forward: while writes go on (this runner's own, mostly) the looks every fastMs
    // see them, as many as before and no more.
    if (dueAt !== Infinity && dueAt > clock.now() + timing.fastMs) schedule(SETTLE_MS);
  });
  watcher.on('error', () => {
    // The directory went away or the watch broke: no write counts as old any more, so every look is a fast one.
    watcher.close();
    lastWrite = Infinity;
  });
  schedule(timing.fastMs);
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
    watcher.close();
    return current.catch(() => undefined);
  };
}

function watchDirectory(file: string): FSWatcher | null {
  try {
    // Not persistent: the watch alone must not keep a runner's process alive.
    return watch(path.dirname(path.resolve(file)), { persistent: false });
  } catch {
    return null;
  }
}
