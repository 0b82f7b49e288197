/**
 * The supervisor of one runner node: it owns the node's worker slots and claims ready tasks for them, one
 * claim at a time. A live, node-local actor (DESIGN.md §1), rebuilt on every start.
 *
 * Claims are driven by wake-ups (a commit, a freed slot, resources becoming available) and, as a fallback,
 * by a periodic tick on the actor clock, so tests drive it with a simulated clock. The slot logic is the
 * `workerSlot` actor, which the engine replaces with its configured slot via `provide`.
 *
 * A slot that errors (only a throwing action can do that: its own actors' failures are handled) is a bug, and
 * it takes the supervisor down with it on purpose: the node stops, every agent is killed by its slot's cleanup,
 * and the recovery sweep (DESIGN.md §4) requeues the tasks. Limping on with fewer slots would hide it.
 */
import {
  assign,
  cancel,
  enqueueActions,
  fromPromise,
  raise,
  setup,
  type SnapshotFrom,
} from 'xstate';
import { workerSlotMachine, type SlotFreedEvent, type SlotStoppedEvent } from './worker-slot.machine.js';

/** What a supervisor is created with. */
export interface SupervisorInput {
  nodeId: string;
  /** Number of worker slots, i.e. agents this node runs at once. */
  maxWorkers: number;
  /** Period of the fallback claim poll, in ms of the actor clock. */
  tickMs: number;
}

/** A task the `claimNext` actor claimed for this node. */
export interface ClaimedTask {
  taskId: string;
  attempt: number;
  /** Passed through to the slot's `runAgent` actor. */
  launch: unknown;
}

/** Input of the `claimNext` promise actor. */
export interface ClaimNextInput {
  nodeId: string;
}

/** The run a busy slot is working on. */
export interface SlotRun {
  taskId: string;
  attempt: number;
}

/** The context of a supervisor. Slots are its children, with ids `slot-0` … `slot-<maxWorkers - 1>`. */
export interface SupervisorContext {
  nodeId: string;
  maxWorkers: number;
  tickMs: number;
  /** Every slot id, in spawn order. */
  slotIds: string[];
  /** Slots free to take a task; the first one gets the next claim. */
  idleSlots: string[];
  /** What each busy slot runs, so a revoked task reaches the right slot. */
  slotRuns: Record<string, SlotRun>;
  /** Whether the resource probe allows starting more agents. */
  admissible: boolean;
  /** The node could not renew its leases for a whole lease period: it claims nothing until it renews again. */
  fenced: boolean;
  /** A wake-up arrived while a claim was in flight: claim once more when it returns empty. */
  wakePending: boolean;
  /** A shutdown arrived while a claim was in flight: stop once the claimed task is in a slot. */
  shutdownPending: boolean;
  /** Slots whose actors have finished; shutdown completes when all have. */
  stoppedSlots: string[];
}

/** Events a supervisor accepts. */
export type SupervisorEvent =
  /** Something may have become ready (a commit, another node's write): try to claim. */
  | { type: 'WAKE' }
  /** The fallback poll; raised on the actor clock every `tickMs`. */
  | { type: 'TICK' }
  /** The resource probe's verdict; becoming admissible acts as a wake-up. */
  | { type: 'RESOURCES'; admissible: boolean }
  /** The node fenced itself (leases not renewed for a lease period) or renewed again; unfencing acts as a wake-up. */
  | { type: 'FENCE'; fenced: boolean }
  /** This node lost the task (cancelled, lease lost): abort its run. `attempt`, when given, must match. */
  | { type: 'TASK_REVOKED'; taskId: string; attempt?: number; reason?: string }
  /** Stop claiming, stop every slot (handing running tasks back), then stop. */
  | { type: 'SHUTDOWN' }
  | SlotFreedEvent
  | SlotStoppedEvent
  | SlotDoneEvent;

/**
 * Sent by XState itself when a slot actor reaches its final state, right after the slot's SLOT_STOPPED. Shutdown
 * completes on these rather than on SLOT_STOPPED, so no event of a slot arrives after the supervisor is done.
 */
export interface SlotDoneEvent {
  type: `xstate.done.actor.${string}`;
  actorId?: string;
  output?: unknown;
}

/** Prefix of slot ids; a slot's id is also its child actor id. */
const slotIdPrefix = 'slot-';

/** The supervisor statechart. */
export const supervisorMachine = setup({
  types: {
    context: {} as SupervisorContext,
    events: {} as SupervisorEvent,
    input: {} as SupervisorInput,
  },
  actors: {
    workerSlot: workerSlotMachine,
    claimNext: fromPromise<ClaimedTask | null, ClaimNextInput>(async () => {
      throw new Error('claimNext not provided: provide it with supervisorMachine.provide({ actors: { claimNext } })');
    }),
  },
  delays: {
    TICK: ({ context }) => context.tickMs,
  },
  guards: {
    canClaim: ({ context }) => context.admissible && !context.fenced && context.idleSlots.length > 0,
    wakePending: ({ context }) => context.wakePending,
    allSlotsStopped: ({ context }) => context.stoppedSlots.length >= context.slotIds.length,
  },
  actions: {
    /** A claim failed; the engine logs it. */
    reportError: (_, _params: { error: unknown }) => {},
    scheduleTick: raise({ type: 'TICK' }, { delay: 'TICK', id: 'tick' }),
    cancelTick: cancel('tick'),
    wake: raise({ type: 'WAKE' }),
  },
}).createMachine({
  id: 'supervisor',
  initial: 'running',
  context: ({ input }) => {
    const slotIds = Array.from({ length: input.maxWorkers }, (_, i) => `${slotIdPrefix}${i}`);
    return {
      nodeId: input.nodeId,
      maxWorkers: input.maxWorkers,
      tickMs: input.tickMs,
      slotIds,
      idleSlots: [...slotIds],
      slotRuns: {},
      admissible: true,
      fenced: false,
      wakePending: false,
      shutdownPending: false,
      stoppedSlots: [],
    };
  },
  entry: enqueueActions(({ context, enqueue }) => {
    for (const slotId of context.slotIds) enqueue.spawnChild('workerSlot', { id: slotId, input: { slotId } });
  }),
  on: {
    // Slot bookkeeping holds in every state, so the counts stay right during shutdown too.
    SLOT_FREED: {
      actions: [
        assign(({ context, event }) => ({
          idleSlots:
            context.idleSlots.includes(event.slotId) || context.stoppedSlots.includes(event.slotId)
              ? context.idleSlots
              : [...context.idleSlots, event.slotId],
          slotRuns: withoutKey(context.slotRuns, event.slotId),
        })),
        'wake',
      ],
    },
    SLOT_STOPPED: { actions: assign(({ context, event }) => retireSlot(context, event.slotId)) },
    'xstate.done.actor.*': {
      actions: assign(({ context, event }) => {
        const slotId = event.actorId;
        if (slotId === undefined || !context.slotIds.includes(slotId)) return {};
        const stoppedSlots = context.stoppedSlots.includes(slotId) ? context.stoppedSlots : [...context.stoppedSlots, slotId];
        return { ...retireSlot(context, slotId), stoppedSlots };
      }),
    },
  },
  states: {
    running: {
      initial: 'idle',
      // A self-renewing delayed TICK rather than `after`: an `after` on `running` would have to re-enter
      // `running` to repeat, which would cancel an in-flight claim. The first WAKE is immediate so a node
      // that starts picks up work already waiting.
      entry: ['scheduleTick', 'wake'],
      exit: 'cancelTick',
      on: {
        TICK: { actions: ['wake', 'scheduleTick'] },
        // Only a change to admissible wakes: the probe repeats its verdict every few seconds.
        RESOURCES: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            if (event.admissible && !context.admissible) enqueue.raise({ type: 'WAKE' });
            enqueue.assign({ admissible: event.admissible });
          }),
        },
        FENCE: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            if (!event.fenced && context.fenced) enqueue.raise({ type: 'WAKE' });
            enqueue.assign({ fenced: event.fenced });
          }),
        },
        TASK_REVOKED: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            for (const [slotId, run] of Object.entries(context.slotRuns)) {
              if (run.taskId !== event.taskId) continue;
              if (event.attempt !== undefined && run.attempt !== event.attempt) continue;
              if (context.stoppedSlots.includes(slotId)) continue;
              enqueue.sendTo(slotId, { type: 'ABORT', reason: event.reason ?? 'task revoked' });
            }
          }),
        },
        SHUTDOWN: 'stopping',
      },
      states: {
        idle: {
          on: {
            WAKE: { guard: 'canClaim', target: 'claiming' },
          },
        },
        claiming: {
          entry: assign({ wakePending: false }),
          invoke: {
            id: 'claim',
            src: 'claimNext',
            input: ({ context }) => ({ nodeId: context.nodeId }),
            onDone: [
              {
                guard: ({ event }) => event.output !== null,
                target: 'idle',
                actions: [
                  enqueueActions(({ context, event, enqueue }) => {
                    const task = event.output;
                    const slotId = context.idleSlots[0];
                    if (task === null) return;
                    if (slotId === undefined) {
                      // Cannot happen (claims start only with an idle slot); if it does, the lease lapses and
                      // the recovery sweep requeues the task.
                      enqueue({
                        type: 'reportError',
                        params: { error: new Error(`claimed ${task.taskId} but no slot is idle`) },
                      });
                      return;
                    }
                    enqueue.sendTo(slotId, {
                      type: 'ASSIGN',
                      taskId: task.taskId,
                      attempt: task.attempt,
                      launch: task.launch,
                    });
                    enqueue.assign({
                      idleSlots: context.idleSlots.slice(1),
                      slotRuns: { ...context.slotRuns, [slotId]: { taskId: task.taskId, attempt: task.attempt } },
                    });
                  }),
                  // One claim per step: ask again straight away, so a burst of ready tasks fills every slot.
                  'wake',
                ],
              },
              { guard: 'wakePending', target: 'idle', actions: 'wake' },
              { target: 'idle' },
            ],
            // No immediate retry: a failing store would spin. The tick retries.
            onError: {
              target: 'idle',
              actions: { type: 'reportError', params: ({ event }) => ({ error: event.error }) },
            },
          },
          on: {
            WAKE: { actions: assign({ wakePending: true }) },
            // Leaving now would abort a claim that may already be committed, stranding its task until its
            // lease lapses. Finish the claim, give the task to a slot (which hands it back), then stop.
            SHUTDOWN: { actions: assign({ shutdownPending: true }) },
          },
          exit: enqueueActions(({ context, enqueue }) => {
            if (context.shutdownPending) enqueue.raise({ type: 'SHUTDOWN' });
          }),
        },
      },
    },
    stopping: {
      // A stopped slot is done and may be gone from the children; sending to a missing child throws.
      entry: enqueueActions(({ context, enqueue }) => {
        for (const slotId of context.slotIds) {
          if (!context.stoppedSlots.includes(slotId)) enqueue.sendTo(slotId, { type: 'STOP' });
        }
      }),
      always: { guard: 'allSlotsStopped', target: 'stopped' },
    },
    stopped: { type: 'final' },
  },
});

/** A supervisor snapshot. */
export type SupervisorSnapshot = SnapshotFrom<typeof supervisorMachine>;

/** What the inspector shows of a supervisor. */
export interface SupervisorSummary {
  state: 'idle' | 'claiming' | 'stopping' | 'stopped';
  idle: number;
  busy: number;
  stopped: number;
}

/** A compact, pure view of a supervisor snapshot for the inspector. */
export function supervisorSummary(snapshot: SupervisorSnapshot): SupervisorSummary {
  const { context } = snapshot;
  const state = snapshot.matches({ running: 'claiming' })
    ? 'claiming'
    : snapshot.matches('running')
      ? 'idle'
      : snapshot.matches('stopping')
        ? 'stopping'
        : 'stopped';
  const stopped = context.stoppedSlots.length;
  const idle = context.idleSlots.length;
  return { state, idle, busy: Math.max(0, context.slotIds.length - idle - stopped), stopped };
}

/** Take a slot out of the rotation: it gets no more claims and runs nothing. */
function retireSlot(context: SupervisorContext, slotId: string): Partial<SupervisorContext> {
  return { idleSlots: context.idleSlots.filter((id) => id !== slotId), slotRuns: withoutKey(context.slotRuns, slotId) };
}

function withoutKey<T>(record: Record<string, T>, key: string): Record<string, T> {
  const { [key]: _dropped, ...rest } = record;
  return rest;
}
