/**
 * Waiting for tasks to finish, driven by the event stream (SPEC §12, DESIGN §9): the one engine-side wait that
 * WaitForTask, `delegate wait` and `delegate delegate --wait` share. A task is read again only when an event
 * names it: events committed in this process come from the EventBus, every other process's from the events
 * table through `EventFollower` (which reads only when `PRAGMA data_version` moved). No lost wake-up: the stream
 * position is taken and the bus subscribed *before* the tasks are first read, so a change committed between
 * that read and the first event read is still delivered and read again.
 *
 * The last output line of a running task comes from its text log, read from where the last read stopped
 * (`OutputFollower`) when an event for the task arrives and at a modest rate while it runs: output writes no events.
 */
import type { Clock } from './clock.js';
import { printable } from './control-characters.js';
import { EventFollower, type EventBus } from './events.js';
import type { OutputFollower } from './log-follower.js';
import { finishedStates, type EngineEvent, type Store } from './store/store.js';
import type { TaskView } from './task-service.js';

/** What a wait reads tasks, events and logs from. */
export interface TaskWaitSource {
  store: Store;
  /** Commits of this process (they do not move this connection's data_version, so the follower misses them). */
  bus: EventBus;
  clock: Clock;
  /** A task as front doors show it; throws a UsageError naming an unknown id. */
  view(taskId: string): Promise<TaskView>;
  /** A reader of the task's output text (stdout lines), returning only what was appended since its last read. */
  followOutput(taskId: string): OutputFollower;
}

/** One change seen while waiting. */
export interface WaitProgress {
  /** The task that changed. */
  task: TaskView;
  /** `state`: its status changed (or this is the first look at it); `output`: only its last output line did. */
  change: 'state' | 'output';
  /** Its last line of output so far (one line, control characters escaped, at most 200 characters), if any. */
  lastLine: string | null;
  /** Every task waited for, as known now, in the order asked. */
  tasks: readonly TaskView[];
  /** How many of them are finished. */
  finished: number;
  /** How many tasks are waited for. */
  total: number;
}

/** How to wait. */
export interface WaitOptions {
  /** Give up after this long and return the tasks as they are (`timedOut: true`); none: wait until they finish. */
  timeoutMs?: number | undefined;
  /** Aborting ends the wait at once: the promise rejects with the signal's reason. */
  signal?: AbortSignal | undefined;
  /** Called on every change, in order; a throwing or rejecting callback does not end the wait. */
  onProgress?: ((progress: WaitProgress) => void | Promise<void>) | undefined;
  /** How often the logs of running tasks are read for their last line (default 1000 ms). */
  outputEveryMs?: number | undefined;
  /** How often another process's commits are looked for (default 50 ms; 1 s on a remote database). */
  pollMs?: number | undefined;
}

/** How a wait ended. */
export interface WaitResult {
  /** The tasks' views, in the order asked (duplicates removed). */
  tasks: TaskView[];
  /** True when the timeout passed before every task finished. */
  timedOut: boolean;
}

const lastLineChars = 200;

const isFinished = (status: string): boolean => (finishedStates as readonly string[]).includes(status);

/** The last non-blank line of `lines`, as one printable line of bounded length. */
function lastLineOf(lines: readonly string[]): string | null {
  for (let index = lines.length - 1; index >= 0; index--) {
    const line = printable(lines[index]!.trim());
    if (line !== '') return line.length > lastLineChars ? `${line.slice(0, lastLineChars - 1)}…` : line;
  }
  return null;
}

/**
 * Wait until every task in `taskIds` is finished (completed, failed or cancelled), the timeout passes, or the
 * signal aborts. Unknown ids throw the view's UsageError before anything is waited for.
 */
export async function waitForTasks(source: TaskWaitSource, taskIds: readonly string[], options: WaitOptions = {}): Promise<WaitResult> {
  options.signal?.throwIfAborted();
  const ids = [...new Set(taskIds)];
  const wanted = new Set(ids);
  const dirty = new Set<string>();
  // Subscribed before the first read (see the module comment): whatever commits after it is seen again.
  const afterId = await source.store.lastEventId();
  let wake: () => void = () => undefined;
  const onEvents = (events: readonly EngineEvent[]): void => {
    let any = false;
    for (const event of events) {
      if (event.kind === 'task' && wanted.has(event.actorId)) {
        dirty.add(event.actorId);
        any = true;
      }
    }
    if (any) wake();
  };
  const unsubscribe = source.bus.subscribe((event) => onEvents([event]));
  const follower = new EventFollower(source.store, source.clock, {}, afterId, options.pollMs);
  // The output read and the timeout: at most one of each is armed.
  const timers = new Map<'output' | 'timeout', unknown>();
  try {
    const views = new Map<string, TaskView>();
    for (const view of await Promise.all(ids.map((id) => source.view(id)))) views.set(view.taskId, view);
    const outputs = new Map<string, { follower: OutputFollower; lastLine: string | null }>(ids.map((id) => [id, { follower: source.followOutput(id), lastLine: null }]));
    const current = (): TaskView[] => ids.map((id) => views.get(id)!);
    const finishedCount = (): number => current().filter((view) => isFinished(view.status)).length;
    // Progress callbacks run one after another, in order, and the wait ends only after the last one: an MCP
    // notification sent after the tool's result would reach a client that no longer listens for it.
    let reported: Promise<void> = Promise.resolve();
    const report = (task: TaskView, change: WaitProgress['change']): void => {
      const onProgress = options.onProgress;
      if (!onProgress) return;
      const tasks = current();
      const progress: WaitProgress = { task, change, lastLine: outputs.get(task.taskId)!.lastLine, tasks, finished: finishedCount(), total: tasks.length };
      // A display's bug or a client that went away must not end the wait.
      reported = reported.then(() => onProgress(progress)).catch(() => undefined);
    };
    /** Read the task's output since the last read; true when its last line changed. */
    const readOutput = async (id: string): Promise<boolean> => {
      const output = outputs.get(id)!;
      const lines = await output.follower.read().catch(() => [] as string[]);
      // A finished run never ends its last line with a newline: take it as it is.
      if (isFinished(views.get(id)!.status)) lines.push(...output.follower.end());
      const line = lastLineOf(lines);
      if (line === null || line === output.lastLine) return false;
      output.lastLine = line;
      return true;
    };

    for (const id of ids) {
      if (views.get(id)!.status !== 'queued') await readOutput(id);
      report(views.get(id)!, 'state');
    }
    if (finishedCount() === ids.length) {
      await reported;
      return { tasks: current(), timedOut: false };
    }
    options.signal?.throwIfAborted();

    return await new Promise<WaitResult>((resolve, reject) => {
      let settled = false;
      let running: Promise<void> = Promise.resolve();
      const onAbort = (): void => finish({ error: options.signal!.reason });
      // Settles once no read is in flight (the follower's or ours), so the caller may close the store at once.
      const finish = (result: WaitResult | { error: unknown }): void => {
        if (settled) return;
        settled = true;
        unsubscribe();
        for (const timer of timers.values()) source.clock.clearTimeout(timer);
        options.signal?.removeEventListener('abort', onAbort);
        void Promise.all([follower.stop(), running]).then(() => reported).then(() => ('error' in result ? reject(result.error) : resolve(result)));
      };
      // One round at a time, so progress comes out in the order things were read.
      const serially = (work: () => Promise<void>): void => {
        running = running.then(work).catch((error: unknown) => finish({ error }));
      };
      const refresh = async (): Promise<void> => {
        if (settled) return;
        const changed = [...dirty];
        dirty.clear();
        for (const id of changed) {
          const before = views.get(id)!;
          const view = await source.view(id);
          views.set(id, view);
          await readOutput(id);
          if (view.status !== before.status) report(view, 'state');
        }
        if (finishedCount() === ids.length) finish({ tasks: current(), timedOut: false });
      };
      wake = () => serially(refresh);
      const outputEveryMs = options.outputEveryMs ?? 1000;
      const readRunningOutput = async (): Promise<void> => {
        if (settled) return;
        for (const id of ids) if (views.get(id)!.status === 'running' && (await readOutput(id))) report(views.get(id)!, 'output');
        if (!settled) timers.set('output', source.clock.setTimeout(() => serially(readRunningOutput), outputEveryMs));
      };
      timers.set('output', source.clock.setTimeout(() => serially(readRunningOutput), outputEveryMs));
      if (options.timeoutMs !== undefined) timers.set('timeout', source.clock.setTimeout(() => finish({ tasks: current(), timedOut: true }), options.timeoutMs));
      options.signal?.addEventListener('abort', onAbort, { once: true });
      // A read that fails (the database busy for a moment) is tried again on the next round.
      follower.start(onEvents);
      // Events that arrived between subscribing and now.
      if (dirty.size > 0) wake();
    });
  } finally {
    // Also when the first read threw (an unknown id) or every task was already finished.
    unsubscribe();
    await follower.stop();
    for (const timer of timers.values()) source.clock.clearTimeout(timer);
  }
}
