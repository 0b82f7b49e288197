/**
 * The event stream (DESIGN §9, SPEC §12): every committed step of every actor is one event. Task events are
 * written by the step's own transaction; node-local actors (supervisor, slots, the node itself) append theirs in
 * small batches. In-process subscribers get events from the `EventBus` right after the commit; any other process
 * (a front door, another runner, the inspector) reads the bounded `events` table through `EventFollower`.
 */
import type { Clock } from './clock.js';
import { watchStoreForCommits } from './database-watch.js';
import type { EngineEvent, EventFilter, Store } from './store/store.js';

export type { EngineEvent, EventFilter } from './store/store.js';

/** The event types, `actor kind:what happened`, one JSDoc line each. */
export interface EngineEventTypes {
  /** A task was inserted (and at once moves on to waiting or ready). */
  'task:queued': EngineEvent;
  /** A task waits for dependencies, or for a pipeline step's start delay. */
  'task:waiting': EngineEvent;
  /** A task can be claimed. */
  'task:ready': EngineEvent;
  /** A node claimed a task and starts its agent. */
  'task:running': EngineEvent;
  /** A task hit a usage limit and waits for the reset. */
  'task:paused': EngineEvent;
  /** A task's agent finished successfully. */
  'task:completed': EngineEvent;
  /** A task failed (its `detail`/reason says why). */
  'task:failed': EngineEvent;
  /** A task was cancelled. */
  'task:cancelled': EngineEvent;
  /** A worker slot has no run and can take one. */
  'slot:idle': EngineEvent;
  /** A worker slot got a claimed run and is starting its agent. */
  'slot:starting': EngineEvent;
  /** A worker slot's agent process runs. */
  'slot:busy': EngineEvent;
  /** A worker slot's agent ended; its outcome is being committed. */
  'slot:settling': EngineEvent;
  /** A worker slot's run was taken away; it waits for the agent's process group to be gone. */
  'slot:aborting': EngineEvent;
  /** A worker slot is handing its run back to the queue (shutdown). */
  'slot:draining': EngineEvent;
  /** A worker slot stopped for good. */
  'slot:stopped': EngineEvent;
  /** A runner node registered. */
  'node:started': EngineEvent;
  /** A runner node could not renew its leases for a whole lease period: it killed its agents and stopped claiming. */
  'node:fenced': EngineEvent;
  /** A fenced node renewed again and claims again. */
  'node:unfenced': EngineEvent;
  /** A runner took over a live run whose runner died on this host, and follows its agent from now on. */
  'node:adopted': EngineEvent;
  /** A runner committed the outcome a dead runner's agent left behind. */
  'node:collected': EngineEvent;
  /** A run of this node was taken from it (cancelled, timed out, or taken over by another node). */
  'node:lease-lost': EngineEvent;
  /** A runner node stopped. */
  'node:stopped': EngineEvent;
}

/** Every event type name. */
export type EngineEventType = keyof EngineEventTypes;

/** In-process subscribers of committed events. */
export class EventBus {
  readonly #subscribers = new Set<(event: EngineEvent) => void>();

  /** Call `fn` with every event published from now on; returns the unsubscribe function. */
  subscribe(fn: (event: EngineEvent) => void): () => void {
    this.#subscribers.add(fn);
    return () => this.#subscribers.delete(fn);
  }

  /** Hand committed events to every subscriber; a throwing subscriber does not stop the others. */
  publish(events: readonly EngineEvent[]): void {
    for (const event of events) {
      for (const fn of this.#subscribers) {
        try {
          fn(event);
        } catch {
          // A subscriber's bug must not undo or block the step that committed.
        }
      }
    }
  }
}

/**
 * Follows the events table from an id on, for processes that did not commit the events themselves. It reads
 * only when the database changed: `PRAGMA data_version` (~25 µs) on a file, the newest event id on a server
 * (one request every `remoteWatchMs`, database-watch.ts).
 */
export class EventFollower {
  #afterId: number;
  #lastVersion: number | null = null;
  #woken = false;
  #stopped = false;
  #stopLooking: () => Promise<void> = async () => undefined;
  /** The round in flight (or the last one), which `stop` waits for. */
  #round: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly filter: EventFilter,
    afterId: number,
    private readonly pollMs = 50,
  ) {
    this.#afterId = afterId;
  }

  /** Read what arrived since the last call (at most `limit` events). */
  async poll(limit = 500): Promise<EngineEvent[]> {
    const events = await this.store.eventsAfter(this.#afterId, this.filter, limit);
    const last = events.at(-1);
    if (last) this.#afterId = last.id;
    return events;
  }

  /**
   * Call `onEvents` with new events until `stop()`. A failed read (or a throwing `onEvents`) goes to `onError`
   * and the next round tries again: a follower outlives a database that was busy for a moment.
   */
  start(onEvents: (events: EngineEvent[]) => void | Promise<void>, onError: (error: unknown) => void = () => undefined): void {
    const round = async (): Promise<void> => {
      if (this.#stopped) return;
      try {
        const version = await this.store.dataVersion();
        if (this.#woken || version === null || version !== this.#lastVersion) {
          // Cleared before the read: a wake during it asks for one more round.
          this.#woken = false;
          try {
            for (let batch = await this.poll(); batch.length > 0 && !this.#stopped; batch = await this.poll()) await onEvents(batch);
          } catch (error) {
            this.#woken = true;
            throw error;
          }
          // Only after a full read: a failed one is tried again next round even if nothing else commits.
          this.#lastVersion = version;
        }
      } catch (error) {
        onError(error);
      }
    };
    // One round at a time: the first runs now, the watch's may come while it still reads.
    const next = (): Promise<void> => (this.#round = this.#round.then(round));
    // A wait on a task can last hours: on a file, looks follow its writes rather than 20 polls a second.
    this.#stopLooking = watchStoreForCommits(this.clock, this.store, this.pollMs, next);
    void next();
  }

  /**
   * Read on the next round even if `data_version` did not change: it changes only when *another* connection
   * commits, so a process that commits on its own connection (and publishes on its bus) wakes its follower.
   */
  wake(): void {
    this.#woken = true;
  }

  /** Stop following; resolves once a read in flight has finished, so the caller may close the store. */
  async stop(): Promise<void> {
    this.#stopped = true;
    await this.#stopLooking();
    await this.#round;
  }
}
