/**
 * The worker-thread pool that runs agent launchers. Agents are I/O-bound child processes, so a couple of threads
 * each running many launches at once is enough. Cancel goes to the launcher over its MessagePort, never through
 * piscina's AbortSignal: aborting a running piscina task terminates the thread and leaves the agent running.
 */
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import type { LauncherTask } from './launcher-worker.js';
import { ChildCommand, ParentCommand, type LauncherJob, type LauncherMessage, type RunOutcome } from './protocol.js';

/** Pool sizing. */
export interface AgentPoolOptions {
  /** Worker threads (default 2). */
  maxThreads?: number;
  /** Launches one thread runs at once (default 32); more wait in piscina's queue. */
  concurrentTasksPerWorker?: number;
  /** Worker script URL or path; defaults to the compiled `launcher-worker.js` (see `launcherWorkerUrl`). */
  workerFilename?: string;
}

/** A launch in flight. */
export interface LaunchHandle {
  /** Ask the launcher to kill the run's process group; `done` then resolves with end `cancelled`. */
  cancel(reason?: string): void;
  /** The outcome; rejects only if the worker thread itself failed. */
  done: Promise<RunOutcome>;
}

/** How long a launcher thread with nothing to do stays. */
const THREAD_IDLE_MS = 10_000;

/** How long to keep listening for the launcher's last message after its task settled. */
const LATE_MESSAGE_WAIT_MS = 1000;

/**
 * The launcher worker script. From compiled code it sits next to this module; when this module runs from its
 * TypeScript source (vitest), worker threads cannot load `.ts`, so use the build output under `<repo>/dist`.
 */
export function launcherWorkerUrl(moduleUrl: string = import.meta.url): URL {
  if (moduleUrl.endsWith('.ts')) return new URL('../../dist/engine/pool/launcher-worker.js', moduleUrl);
  return new URL('./launcher-worker.js', moduleUrl);
}

/** Runs agent launches on a small Piscina pool. */
export class AgentPool {
  readonly #pool: Piscina<LauncherTask, RunOutcome>;
  readonly #inFlight = new Set<LaunchHandle>();
  #closed = false;

  constructor(options: AgentPoolOptions = {}) {
    const maxThreads = Math.max(1, options.maxThreads ?? 2);
    this.#pool = new Piscina<LauncherTask, RunOutcome>({
      filename: options.workerFilename ?? launcherWorkerUrl().href,
      // No thread while nothing runs: an idle runner keeps ~10 MiB less, and once the threads are gone so is the
      // agent host (its last connection closes). The first run after a quiet spell waits ~30 ms for a thread.
      minThreads: 0,
      idleTimeout: THREAD_IDLE_MS,
      maxThreads,
      concurrentTasksPerWorker: Math.max(1, options.concurrentTasksPerWorker ?? 32),
    });
  }

  /** Start one run; `onMessage` receives the launcher's `started`, `progress` and `exited` messages. */
  launch(req: LauncherJob, onMessage: (message: LauncherMessage) => void): LaunchHandle {
    if (this.#closed) throw new Error('AgentPool is closed');
    const { port1, port2 } = new MessageChannel();
    let pid: number | undefined;
    let exitedSeen = false;
    port1.on('message', (message: LauncherMessage) => {
      if (message.cmd === ChildCommand.Started) pid = message.value.pid;
      if (message.cmd === ChildCommand.Exited) {
        exitedSeen = true;
        port1.close();
      }
      onMessage(message);
    });
    // The port must not keep the process alive; the task's own promise is what callers wait on.
    port1.unref();

    const done = this.#pool.run({ req, port: port2 }, { transferList: [port2] }).then(
      (outcome) => outcome,
      (err: unknown) => {
        // The thread died under a running launcher, and the task goes back to the queue to be resumed: its
        // agent and its tools, in their own group, must not run on beside the next attempt.
        if (pid !== undefined && !exitedSeen) {
          try {
            process.kill(-pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
        throw err;
      },
    );
    const handle: LaunchHandle = {
      cancel(reason?: string): void {
        if (exitedSeen) return;
        const value = reason !== undefined ? { reason } : {};
        port1.postMessage({ cmd: ParentCommand.Cancel, taskId: req.taskId, value } satisfies LauncherMessage);
      },
      done,
    };
    this.#inFlight.add(handle);
    const settle = (): void => {
      this.#inFlight.delete(handle);
      if (!exitedSeen) setTimeout(() => port1.close(), LATE_MESSAGE_WAIT_MS).unref();
    };
    done.then(settle, settle);
    return handle;
  }

  /** Launches in flight or queued. */
  get size(): number {
    return this.#inFlight.size;
  }

  /** Cancel every launch in flight, wait for their outcomes (so no agent is left running), then stop the threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const pending = [...this.#inFlight];
    for (const handle of pending) handle.cancel('agent pool closing');
    await Promise.allSettled(pending.map((handle) => handle.done));
    await this.#pool.destroy();
  }
}
