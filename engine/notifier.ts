/**
 * Notifications (SPEC §12): when a task ends (completed, failed, cancelled) or pauses on a usage limit, a notice
 * goes to each configured channel — a webhook POST, a command with the notice on stdin, a desktop notification.
 *
 * Whoever commits the step notifies: a runner subscribes to its own EventBus, which carries only the steps it
 * committed, so two runners never both announce one end; a front door that commits (a cancel, or the outcome a
 * dead runner's agent left) notifies from its own bus. Delivery never blocks the step: `onEvent` only queues
 * (a bounded queue, oldest dropped first), and a few deliveries run at a time in the background.
 */
import { spawn } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import { redactWebhookUrl, type NotifyConfig } from './config.js';
import type { EngineEvent, TaskRecord } from './store/store.js';
import type { Logger } from './logger.js';
import { delegateVersion } from './version.js';

/** What each channel receives, as JSON. */
export interface TaskNotice {
  /** The event: `task:completed`, `task:failed`, `task:cancelled` or `task:paused`. */
  type: NoticeEventType;
  taskId: string;
  status: 'completed' | 'failed' | 'cancelled' | 'paused';
  /** Why: the fail reason (exit_code, timeout, …), the cancel reason given, or `usage_limit` for a pause. */
  reason: string | null;
  error: string | null;
  /** The first line of the prompt, at most 200 characters. */
  prompt: string;
  agent: string;
  priority: string;
  costUsd: number | null;
  durationMs: number | null;
  attempt: number;
  exitCode: number | null;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  /** For a pause: when the task goes back to the queue. */
  resumeAt: string | null;
  /** When the step was committed. */
  at: string;
  /** The runner that committed it; null for a front door. */
  nodeId: string | null;
}

/** The events that are announced. */
export const noticeEventTypes = ['task:completed', 'task:failed', 'task:cancelled', 'task:paused'] as const;
export type NoticeEventType = (typeof noticeEventTypes)[number];

/** One way of announcing a notice. Delivery handles its own retries and logging; it stops when `signal` aborts. */
export interface NotifyChannel {
  /** For logs: what it is, without secrets. */
  readonly name: string;
  deliver(notice: TaskNotice, signal: AbortSignal): Promise<void>;
}

/**
 * How long a front door (a CLI command, the MCP server) waits at exit for its notices: it has no background to
 * leave them to, so a dead webhook delays `delegate cancel` by at most this much.
 */
export const frontDoorNotifyGraceMs = 5000;

/** How many notices may wait; beyond this the oldest waiting one is dropped (and logged). */
const maxQueued = 200;
/** How many notices are delivered at once. */
const concurrency = 4;

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A notice from a committed event and the task's row. */
export function noticeOf(event: EngineEvent, task: TaskRecord): TaskNotice {
  const status = event.to as TaskNotice['status'];
  const firstLine = task.prompt.trim().split('\n')[0] ?? '';
  const reason =
    status === 'failed' ? task.failReason : status === 'cancelled' ? (task.snapshot.context.cancelReason ?? null) : status === 'paused' ? 'usage_limit' : null;
  return {
    type: event.type as NoticeEventType,
    taskId: task.id,
    status,
    reason,
    error: status === 'completed' ? null : task.error,
    prompt: firstLine.length > 200 ? `${firstLine.slice(0, 199)}…` : firstLine,
    agent: task.agent,
    priority: task.priority,
    costUsd: task.costUsd,
    durationMs: task.startedAt !== null && task.endedAt !== null ? task.endedAt - task.startedAt : null,
    attempt: task.attempt,
    exitCode: task.exitCode,
    createdAt: new Date(task.createdAt).toISOString(),
    startedAt: iso(task.startedAt),
    completedAt: iso(task.endedAt),
    resumeAt: status === 'paused' ? iso(task.resumeAt) : null,
    at: new Date(event.at).toISOString(),
    nodeId: event.nodeId,
  };
}

/** Delivers notices of committed task ends and pauses to every channel, in the background. */
export class Notifier {
  readonly #queue: EngineEvent[] = [];
  readonly #inFlight = new Set<Promise<void>>();
  readonly #stop = new AbortController();
  #closed = false;

  constructor(
    private readonly channels: readonly NotifyChannel[],
    /** The task's row, read when its notice is built (off the committing step's path). */
    private readonly readTask: (taskId: string) => Promise<TaskRecord | null>,
    private readonly log: Logger,
  ) {}

  /** An EventBus subscriber: queue a notice for a task end or pause. Returns at once and never throws. */
  onEvent(event: EngineEvent): void {
    if (this.#closed || event.kind !== 'task' || !(noticeEventTypes as readonly string[]).includes(event.type)) return;
    this.#queue.push(event);
    if (this.#queue.length > maxQueued) {
      const dropped = this.#queue.shift()!;
      this.log.warn('too many notifications waiting; dropped the oldest', { task: dropped.actorId, type: dropped.type, maxQueued });
    }
    this.#pump();
  }

  #pump(): void {
    while (this.#inFlight.size < concurrency && this.#queue.length > 0) {
      const event = this.#queue.shift()!;
      const delivery = this.#deliver(event).finally(() => {
        this.#inFlight.delete(delivery);
        this.#pump();
      });
      this.#inFlight.add(delivery);
    }
  }

  async #deliver(event: EngineEvent): Promise<void> {
    try {
      const task = await this.readTask(event.actorId);
      if (!task) return;
      const notice = noticeOf(event, task);
      await Promise.all(this.channels.map((channel) => channel.deliver(notice, this.#stop.signal)));
    } catch (error) {
      this.log.warn('notification failed', { task: event.actorId, type: event.type, error: String(error) });
    }
  }

  /**
   * Stop taking notices and wait up to `graceMs` for the queued and running deliveries; whatever is left then is
   * abandoned (and logged). Call before closing the store the notices are read from.
   */
  async close(graceMs: number): Promise<void> {
    this.#closed = true;
    const drained = (async () => {
      while (this.#inFlight.size > 0 || this.#queue.length > 0) await Promise.race(this.#inFlight);
    })();
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), graceMs)));
    const outcome = await Promise.race([drained.then(() => 'drained' as const), late]);
    clearTimeout(timer);
    if (outcome === 'late') {
      this.log.warn('notifications still undelivered at shutdown; abandoned', { inFlight: this.#inFlight.size, queued: this.#queue.length });
      this.#queue.length = 0;
      this.#stop.abort();
      await Promise.allSettled([...this.#inFlight]);
    }
  }
}

/** Retries of a webhook: tries in all, and the first pause (doubled after each failure, capped). */
export interface RetryPolicy {
  tries: number;
  firstDelayMs: number;
  maxDelayMs: number;
  /** Each request's own time limit. */
  requestTimeoutMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { tries: 5, firstDelayMs: 500, maxDelayMs: 8000, requestTimeoutMs: 10_000 };

/** Statuses worth trying again: the receiver is overloaded or failed, not refusing this request. */
const retryable = (status: number): boolean => status === 408 || status === 429 || status >= 500;

/** POST each notice as JSON to a URL, retried with exponential backoff; the URL is logged only redacted. */
export function webhookChannel(url: string, log: Logger, policy: RetryPolicy = defaultRetryPolicy): NotifyChannel {
  const shown = redactWebhookUrl(url);
  // fetch refuses a URL with credentials in it: they are sent as Basic authorization instead, as curl does.
  const target = new URL(url);
  const headers: Record<string, string> = { 'content-type': 'application/json', 'user-agent': `delegate/${delegateVersion}` };
  if (target.username !== '' || target.password !== '') {
    headers.authorization = `Basic ${Buffer.from(`${decodeURIComponent(target.username)}:${decodeURIComponent(target.password)}`).toString('base64')}`;
    target.username = '';
    target.password = '';
  }
  const endpoint = target.toString();
  // A fetch error may quote the URL it failed on: never let it reach a log whole.
  const scrub = (text: string): string => text.split(url).join(shown).split(endpoint).join(shown);
  return {
    name: `webhook ${shown}`,
    async deliver(notice, signal) {
      const body = JSON.stringify(notice);
      for (let attempt = 1; ; attempt++) {
        let problem: string;
        try {
          const response = await fetch(endpoint, {
            method: 'POST',
            headers,
            body,
            signal: AbortSignal.any([signal, AbortSignal.timeout(policy.requestTimeoutMs)]),
          });
          // Read the body so the connection can be reused; its content does not matter.
          await response.arrayBuffer().catch(() => undefined);
          if (response.ok) {
            log.debug('webhook delivered', { url: shown, task: notice.taskId, type: notice.type, attempt });
            return;
          }
          if (!retryable(response.status)) {
            log.warn('webhook refused the notification; not retried', { url: shown, task: notice.taskId, status: response.status });
            return;
          }
          problem = `HTTP ${response.status}`;
        } catch (error) {
          if (signal.aborted) return;
          const cause = (error as { cause?: unknown }).cause;
          problem = scrub(`${String(error)}${cause ? ` (${String(cause)})` : ''}`);
        }
        if (attempt >= policy.tries) {
          log.warn('webhook failed; giving up', { url: shown, task: notice.taskId, type: notice.type, tries: attempt, error: problem });
          return;
        }
        // Jitter, so many runners retrying one receiver do not come back in step.
        const delay = Math.min(policy.maxDelayMs, policy.firstDelayMs * 2 ** (attempt - 1)) * (0.8 + Math.random() * 0.4);
        log.info('webhook failed; retrying', { url: shown, task: notice.taskId, attempt, retryInMs: Math.round(delay), error: problem });
        try {
          await sleep(delay, undefined, { signal });
        } catch {
          return;
        }
      }
    },
  };
}

/** How long a notification command may run before it is killed. */
const commandTimeoutMs = 30_000;

/**
 * Run a program (argument array, no shell) with the notice as JSON on stdin, and DELEGATE_TASK_ID,
 * DELEGATE_TASK_STATUS and DELEGATE_EVENT in its environment. Only the program is logged: its arguments may
 * hold secrets.
 */
export function commandChannel(argv: readonly string[], log: Logger, env: NodeJS.ProcessEnv = process.env): NotifyChannel {
  const [program, ...args] = argv as [string, ...string[]];
  return {
    name: `command ${program}`,
    deliver(notice, signal) {
      return new Promise<void>((resolve) => {
        const child = spawn(program, args, {
          stdio: ['pipe', 'ignore', 'pipe'],
          env: { ...env, DELEGATE_EVENT: notice.type, DELEGATE_TASK_ID: notice.taskId, DELEGATE_TASK_STATUS: notice.status },
          signal: AbortSignal.any([signal, AbortSignal.timeout(commandTimeoutMs)]),
          killSignal: 'SIGKILL',
        });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-500)));
        // A program that exits without reading its stdin closes the pipe: that is its business, not an error.
        child.stdin.on('error', () => undefined);
        child.stdin.end(`${JSON.stringify(notice)}\n`);
        child.on('error', (error: NodeJS.ErrnoException) => {
          if (error.name === 'AbortError') log.warn('notification command killed', { program, task: notice.taskId, why: signal.aborted ? 'shutdown' : `ran over ${commandTimeoutMs} ms` });
          else log.warn('notification command could not run', { program, task: notice.taskId, error: error.code ?? error.message });
          resolve();
        });
        child.on('close', (code, killedBy) => {
          if (code === 0) log.debug('notification command ran', { program, task: notice.taskId });
          else if (code !== null || killedBy !== 'SIGKILL') log.warn('notification command failed', { program, task: notice.taskId, exitCode: code, signal: killedBy, stderr: stderr.trim() || undefined });
          resolve();
        });
      });
    },
  };
}

/** The desktop notifier of a platform, as an argument array for title and body; null where there is none. */
export function desktopCommand(platform: NodeJS.Platform, title: string, body: string): string[] | null {
  if (platform === 'linux') return ['notify-send', '--app-name=delegate', title, body];
  // Title and body are passed as arguments to the script, never spliced into its text: no quoting to get wrong.
  if (platform === 'darwin') return ['osascript', '-e', 'on run argv', '-e', 'display notification (item 2 of argv) with title (item 1 of argv)', '-e', 'end run', title, body];
  return null;
}

/** A desktop notification per notice; says once when the platform has no notifier or it is not installed. */
export function desktopChannel(log: Logger, platform: NodeJS.Platform = process.platform): NotifyChannel {
  let unavailable = desktopCommand(platform, '', '') === null;
  if (unavailable) log.warn('DELEGATE_NOTIFY_DESKTOP=1, but there is no desktop notifier on this platform', { platform });
  return {
    name: 'desktop',
    deliver(notice, signal) {
      const argv = desktopCommand(platform, `delegate: ${notice.taskId} ${notice.status}${notice.reason ? ` (${notice.reason})` : ''}`, notice.prompt);
      if (unavailable || argv === null) return Promise.resolve();
      return new Promise<void>((resolve) => {
        const child = spawn(argv[0]!, argv.slice(1), { stdio: 'ignore', signal: AbortSignal.any([signal, AbortSignal.timeout(commandTimeoutMs)]) });
        child.on('error', (error: NodeJS.ErrnoException) => {
          if (error.code === 'ENOENT') {
            unavailable = true;
            log.warn('DELEGATE_NOTIFY_DESKTOP=1, but the desktop notifier is not installed; desktop notifications are off', { program: argv[0] });
          }
          resolve();
        });
        child.on('close', () => resolve());
      });
    },
  };
}

/** The notifier of a configuration, or null when no channel is configured. */
export function createNotifier(
  config: NotifyConfig,
  readTask: (taskId: string) => Promise<TaskRecord | null>,
  log: Logger,
  options: { env?: NodeJS.ProcessEnv; retry?: RetryPolicy } = {},
): Notifier | null {
  const channels: NotifyChannel[] = [];
  if (config.webhookUrl) channels.push(webhookChannel(config.webhookUrl, log, options.retry));
  if (config.command) channels.push(commandChannel(config.command, log, options.env));
  if (config.desktop) channels.push(desktopChannel(log));
  if (channels.length === 0) return null;
  log.debug('notifications on', { channels: channels.map((channel) => channel.name).join(', ') });
  return new Notifier(channels, readTask, log);
}
