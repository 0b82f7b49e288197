/**
 * The journal of a node's live actors (DESIGN §1, §9): the supervisor and its worker slots are ordinary live
 * actors that die with their process, so their snapshots are written for the inspector, not for recovery, and
 * their state changes join the event stream as `slot:*` and `node:*` events. They change on every run, so
 * they are written in small batches (one transaction per flush) instead of one write per transition;
 * in-process subscribers get each event at once.
 */
import type { AnyActorRef, InspectionEvent } from 'xstate';
import type { Clock } from './clock.js';
import { ifCommitUnknown } from './errors.js';
import type { EngineEventType, EventBus } from './events.js';
import type { Logger } from './logger.js';
import type { ActorSnapshotRow, NewEngineEvent, Store } from './store/store.js';

/** How often buffered events and snapshots are written. */
const flushMs = 200;

/** The slot state an event names: the leaf of a slot's state value (`{ active: 'busy' }` is `busy`). */
function slotState(value: unknown): string {
  if (typeof value === 'string') return value;
  if (value && typeof value === 'object') {
    const [parent, child] = Object.entries(value)[0] ?? [];
    return child === undefined ? String(parent) : slotState(child);
  }
  return String(value);
}

/** A node's journal of its live actors. */
export class NodeJournal {
  #events: NewEngineEvent[] = [];
  /** The latest snapshot of each actor, serialized only when written: most are replaced before a flush. */
  readonly #snapshots = new Map<string, Omit<ActorSnapshotRow, 'snapshot'> & { snapshot: { value: unknown; context: unknown } }>();
  readonly #slotStates = new Map<string, string>();
  /** What was last written of each actor: a snapshot that is the same again is not written again. */
  readonly #written = new Map<string, string>();
  #handle: unknown = null;
  #flushing: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly bus: EventBus,
    private readonly nodeId: string,
    private readonly log: Logger,
  ) {}

  /** A node event (`node:started`, `node:fenced`, …). */
  node(type: Extract<EngineEventType, `node:${string}`>, detail: string | null = null, taskId: string | null = null, attempt: number | null = null): void {
    this.#add({ actorId: taskId ?? this.nodeId, kind: 'node', type, from: null, to: type.slice('node:'.length), cause: type, attempt, detail });
  }

  /** The `inspect` callback of the supervisor's actor system: slot transitions become events, snapshots are kept. */
  readonly inspect = (inspection: InspectionEvent): void => {
    if (inspection.type !== '@xstate.snapshot') return;
    const actor = inspection.actorRef as AnyActorRef;
    const snapshot = inspection.snapshot as { value?: unknown; context?: { taskId?: string | null; attempt?: number | null } };
    const id = actor.id;
    const kind = id.startsWith('slot-') ? 'slot' : id === 'supervisor' ? 'supervisor' : null;
    if (!kind) return;
    const actorId = `${this.nodeId}/${id}`;
    // XState snapshots are immutable: keeping the reference until the flush is safe.
    this.#snapshots.set(actorId, { actorId, kind, nodeId: this.nodeId, snapshot: { value: snapshot.value, context: snapshot.context }, updatedAt: this.clock.now() });
    if (kind === 'slot') {
      const to = slotState(snapshot.value);
      const from = this.#slotStates.get(actorId) ?? null;
      if (from !== to) {
        this.#slotStates.set(actorId, to);
        const cause = (inspection.event as { type?: string }).type ?? 'unknown';
        this.#add({ actorId, kind: 'slot', type: `slot:${to}`, from, to, cause, attempt: snapshot.context?.attempt ?? null, detail: snapshot.context?.taskId ?? null });
      }
    }
    this.#schedule();
  };

  #add(event: Omit<NewEngineEvent, 'at' | 'nodeId'>): void {
    const full: NewEngineEvent = { ...event, at: this.clock.now(), nodeId: this.nodeId };
    this.#events.push(full);
    this.bus.publish([{ ...full, id: 0 }]);
    this.#schedule();
  }

  #schedule(): void {
    this.#handle ??= this.clock.setTimeout(() => {
      this.#handle = null;
      void this.flush();
    }, flushMs);
  }

  /** Write what is buffered now (also on shutdown). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const events = this.#events;
      const kept = [...this.#snapshots.values()];
      this.#events = [];
      this.#snapshots.clear();
      // An idle supervisor takes a new snapshot at every resource reading (once a second) that changes nothing:
      // writing it cost an idle runner a commit a second, and a request a second on a server.
      const snapshots = kept.map((row) => ({ ...row, snapshot: JSON.stringify(row.snapshot) })).filter((row) => this.#written.get(row.actorId) !== row.snapshot);
      if (events.length === 0 && snapshots.length === 0) return;
      try {
        // When the answer was lost (a server that stopped at that moment), whether the batch was saved is read
        // back, so its events are written once, not lost and not doubled.
        const saved = await ifCommitUnknown(this.store.recordNodeActors(events, snapshots).then(() => true), () => this.#saved(events));
        if (!saved) {
          this.log.info('the answer to a write of slot events was lost, and they were not saved; writing them again', { events: events.length });
          this.#events = [...events, ...this.#events];
          for (const row of kept) if (!this.#snapshots.has(row.actorId)) this.#snapshots.set(row.actorId, row);
          this.#schedule();
          return;
        }
        for (const row of snapshots) this.#written.set(row.actorId, row.snapshot);
      } catch (error) {
        // Inspection data only: losing a batch must not stop the node.
        this.log.warn('could not write slot events', { error: String(error), events: events.length });
      }
    });
    return this.#flushing;
  }

  /**
   * Whether a batch whose commit went unanswered was saved: its last event is in the database (the batch is one
   * transaction). A batch of snapshots alone counts as unsaved: written again, they replace themselves.
   */
  async #saved(events: readonly NewEngineEvent[]): Promise<boolean> {
    const last = events.at(-1);
    if (!last) return false;
    const found = await this.store.eventsAfter(0, { actorId: last.actorId, sinceAt: last.at }, 100);
    return found.some(
      (event) => event.nodeId === last.nodeId && event.at === last.at && event.type === last.type && event.from === last.from && event.cause === last.cause && event.detail === last.detail,
    );
  }

  /** Stop batching; buffered entries are written. */
  async close(): Promise<void> {
    this.clock.clearTimeout(this.#handle);
    this.#handle = null;
    await this.flush();
  }
}
