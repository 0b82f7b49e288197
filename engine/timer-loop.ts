/**
 * The durable-timer loop (DESIGN §2). Delayed events are rows of the `timers` table, written in the same
 * transaction as the step that armed them. This loop sleeps on the injected clock until the earliest due time,
 * claims what is due with one locking UPDATE (so two nodes do not both deliver it), and delivers each timer as an
 * event to its actor; the step that consumes it deletes the row in its own commit, so a timer fires once. A
 * timer whose deliverer died is claimed again once its lock lapses; one that came due while every runner was
 * down fires on the next start.
 */
import type { Clock } from './clock.js';
import type { Logger } from './logger.js';
import type { DueTimer, Store } from './store/store.js';

/** How the loop is paced. */
export interface TimerLoopOptions {
  /** How long a claimed timer stays locked to this node before another may deliver it. */
  lockMs: number;
  /** Look again at least this often, for timers other processes armed without this one noticing. */
  fallbackMs: number;
  /** Timers claimed per round. */
  batch?: number;
}

/**
 * Delivers the timers claimed in one round to their actors (several at once where their steps can share a
 * transaction); resolves once the steps that consume them are done. A timer it fails to deliver stays locked
 * and is claimed again once its lock lapses.
 */
export type DeliverTimers = (timers: DueTimer[]) => Promise<void>;

/** One node's timer loop. */
export class TimerLoop {
  #handle: unknown = null;
  #running: Promise<void> | null = null;
  #again = false;
  #stopped = true;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly nodeId: string,
    private readonly deliver: DeliverTimers,
    private readonly log: Logger,
    private readonly options: TimerLoopOptions,
  ) {}

  /** Start: deliver what is already due (timers that came due while no runner was up), then sleep. */
  start(): void {
    this.#stopped = false;
    this.poke();
  }

  /** Stop; a round in flight finishes. Resolves when it has. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.clock.clearTimeout(this.#handle);
    await this.#running;
  }

  /** Something may have armed a timer (a local commit, another process's commit): look again now. */
  poke(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.clock.clearTimeout(this.#handle);
    this.#running = this.#round().finally(() => {
      this.#running = null;
      if (this.#again) {
        this.#again = false;
        this.poke();
      }
    });
  }

  async #round(): Promise<void> {
    let next: number | null = null;
    try {
      const batch = this.options.batch ?? 100;
      // Every local commit pokes the loop, and most rounds find nothing due: then one read is the whole round.
      next = await this.store.nextTimerDueAt();
      while (next !== null && next <= this.clock.now() && !this.#stopped) {
        const due = await this.store.claimDueTimers(this.nodeId, this.clock.now(), this.options.lockMs, batch);
        if (due.length > 0) {
          try {
            await this.deliver(due);
          } catch (error) {
            // Left locked: they are claimed again once the lock lapses.
            this.log.error('timer delivery failed', { timers: due.length, error: String(error) });
          }
        }
        next = await this.store.nextTimerDueAt();
        // Claimed by another node meanwhile: its lock is in `next`.
        if (due.length === 0) break;
      }
    } catch (error) {
      this.log.error('timer loop failed; retrying', { error: String(error) });
      // Not a due time read before the failure: a claim that keeps failing would be retried at once, for ever.
      next = null;
    }
    if (this.#stopped) return;
    const wait = next === null ? this.options.fallbackMs : Math.min(this.options.fallbackMs, Math.max(0, next - this.clock.now()));
    this.#handle = this.clock.setTimeout(() => this.poke(), wait);
  }
}
