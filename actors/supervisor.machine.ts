/**
 * The supervisor of one runner node: it owns the node's worker slots and claims ready tasks for them, one
 * claim at a time. A live, node-local actor (DESIGN.md §1), rebuilt on every start.
 *
 * Claims are driven by wake-ups (a commit, a freed slot, resources becoming available, a settled slot) and, as a
 * fallback, by a periodic tick on the actor clock, so tests drive it with a simulated clock. The slot logic is
 * the `workerSlot` actor, which the engine replaces with its configured slot via `provide`.
 *
 * The pool fits the machine (SPEC §3, §6). Slots are spawned when there is work, up to `maxWorkers`, and drained
 * when nothing was claimed for a while. A freed slot takes the next task at once; only growth — a new slot, one
 * more agent at once — is rationed, in two ways:
 * - admission: no growth while the last reading is over CPU_THRESHOLD or at MEMORY_RESERVE, except that with
 *   nothing running one agent always starts (on 2 busy cores work must still start);
 * - settling: after a slot is added the next one waits until the new agent's effect on the machine is known:
 *   two consecutive readings agree within a tolerance, or its run already ended, or `settleMaxMs` passed. So 100
 *   tasks submitted at once start in steps, each step as short as the agents allow. It also staggers the agents'
 *   starts, which pays even where no reading could refuse growth (CPU_THRESHOLD=100, MEMORY_RESERVE=0): growing
 *   at once was measured 2-8 % slower (median 3.5 %, eight pairs of 200 short tasks) with a runner peak 6-9 MiB
 *   higher, as four agents that start together keep starting, competing for the cores and ending together.
 * Readings come from the `sampleResources` actor (effect, injected): a slow standing watch, and a fast one only
 * while a new agent settles.
 *
 * A slot that errors (only a throwing action can do that: its own actors' failures are handled) is a bug, and
 * it takes the supervisor down with it on purpose: the node stops, every agent is killed by its slot's cleanup,
 * and the recovery sweep (DESIGN.md §4) requeues the tasks. Limping on with fewer slots would hide it.
 */
import {
  assign,
  cancel,
  enqueueActions,
  fromCallback,
  fromPromise,
  raise,
  setup,
  type AnyEventObject,
  type SnapshotFrom,
} from 'xstate';
import {
  workerSlotMachine,
  type SlotFreedEvent,
  type SlotStartedEvent,
  type SlotStoppedEvent,
} from './worker-slot.machine.js';

/** How the supervisor grows and shrinks its slots. Times are in ms of the actor clock. */
export interface ScalingPolicy {
  /** CPU_THRESHOLD: no growth while the machine's CPU is busier than this, in percent (100: never hold back). */
  cpuThreshold: number;
  /** MEMORY_RESERVE: no growth while available memory is at or below this, in bytes. */
  memoryReserve: number;
  /** Period of the standing resource watch (RESOURCES). */
  watchMs: number;
  /** Period of readings while a new agent settles (SETTLE_SAMPLE). */
  settleSampleMs: number;
  /** The longest one settling window holds growth back. */
  settleMaxMs: number;
  /** Two consecutive settle readings whose CPU differs by at most this many percentage points… */
  settleCpuPercent: number;
  /** …and whose available memory differs by at most this many bytes mean the new agent has settled. */
  settleBytes: number;
  /** Idle slots are drained once no claim has found work for this long. */
  drainIdleMs: number;
}

/**
 * Defaults. A settle reading every 50 ms: os.cpus() counts in 10 ms ticks, so on 2 cores one reading resolves
 * CPU to 10 points, hence the 15-point tolerance. 16 MiB per 50 ms is far below how fast a claude process grows
 * while it loads (≈ 400 MiB in about a second), far above the jitter of an idle machine. A 2 s cap bounds the
 * ramp for agents that never look settled on a noisy machine (4 slots: at most 6 s to full width).
 */
export const defaultScalingPolicy: ScalingPolicy = {
  cpuThreshold: 80,
  memoryReserve: 1024 * 1024 * 1024,
  watchMs: 1000,
  settleSampleMs: 50,
  settleMaxMs: 2000,
  settleCpuPercent: 15,
  settleBytes: 16 * 1024 * 1024,
  drainIdleMs: 5000,
};

/** What a supervisor is created with. */
export interface SupervisorInput {
  nodeId: string;
  /** The most worker slots, i.e. agents this node runs at once. */
  maxWorkers: number;
  /** Period of the fallback claim poll, in ms of the actor clock. */
  tickMs: number;
  /** Overrides of `defaultScalingPolicy`. */
  scaling?: Partial<ScalingPolicy>;
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

/** One reading of the machine, as the `sampleResources` actor reports it. */
export interface ResourceReading {
  /** Busy share of all cores over the reading's interval, 0–100. */
  cpuPercent: number;
  /** Memory the kernel could hand out, in bytes. */
  availableBytes: number;
}

/** Input of the `sampleResources` callback actor: read the machine every `intervalMs`, send each as `report`. */
export interface SampleResourcesInput {
  intervalMs: number;
  report: 'RESOURCES' | 'SETTLE_SAMPLE';
}

/** The run a busy slot is working on. */
export interface SlotRun {
  taskId: string;
  attempt: number;
}

/** Params of the `slotAdded` action. */
export interface SlotAddedNotice {
  slotId: string;
  /** Slots after this one was added. */
  slots: number;
  /** Agents running or starting, this one included. */
  busy: number;
}

/** Why a settling window ended: readings agreed, the new run already ended, or the cap passed. */
export type SettleEnd = 'measured' | 'ended' | 'capped';

/** Params of the `growthSettled` action. */
export interface GrowthSettledNotice {
  slotId: string;
  end: SettleEnd;
  /** The last reading, when there was one. */
  reading: ResourceReading | null;
}

/** The context of a supervisor. Slots are its children, with ids `slot-<n>`. */
export interface SupervisorContext {
  nodeId: string;
  maxWorkers: number;
  tickMs: number;
  scaling: ScalingPolicy;
  /** Every live slot id (spawned, not yet done), in spawn order. */
  slotIds: string[];
  /** Slots free to take a task; the first one gets the next claim. */
  idleSlots: string[];
  /** What each busy slot runs, so a revoked task reaches the right slot. */
  slotRuns: Record<string, SlotRun>;
  /** Whether the last reading allows growth (true until the first reading). */
  admissible: boolean;
  /** The node could not renew its leases for a whole lease period: it claims nothing until it renews again. */
  fenced: boolean;
  /** A wake-up arrived while a claim was in flight: claim once more when it returns empty. */
  wakePending: boolean;
  /** A shutdown arrived while a claim was in flight: stop once the claimed task is in a slot. */
  shutdownPending: boolean;
  /** Slots that reported SLOT_STOPPED and are not done yet; they take nothing more. */
  stoppedSlots: string[];
  /** The slot added last, while its agent settles: no other slot is added meanwhile. */
  settlingSlot: string | null;
  /** The previous settle reading of the current window. */
  settleReading: ResourceReading | null;
  /** A DRAIN_IDLE is scheduled (armed by an empty claim, disarmed by a claim that found work). */
  drainArmed: boolean;
}

/** Events a supervisor accepts. */
export type SupervisorEvent =
  /** Something may have become ready (a commit, another node's write): try to claim. */
  | { type: 'WAKE' }
  /** The fallback poll; raised on the actor clock every `tickMs`. */
  | { type: 'TICK' }
  /** A reading of the standing watch; a change to admissible acts as a wake-up. */
  | { type: 'RESOURCES'; reading: ResourceReading }
  /** A reading while a new agent settles. */
  | { type: 'SETTLE_SAMPLE'; reading: ResourceReading }
  /** Internal: a slot was added for growth; its settling window starts. */
  | { type: 'SLOT_ADDED'; slotId: string }
  /** Internal: the settling slot's run ended (or the slot stopped) before its readings settled. */
  | { type: 'SETTLE_ENDED' }
  /** Internal: the settling window reached `settleMaxMs`. */
  | { type: 'SETTLE_CAP' }
  /** Internal: no claim found work for `drainIdleMs`: drain the idle slots. */
  | { type: 'DRAIN_IDLE' }
  /** The node fenced itself (leases not renewed for a lease period) or renewed again; unfencing acts as a wake-up. */
  | { type: 'FENCE'; fenced: boolean }
  /** This node lost the task (cancelled, lease lost): abort its run. `attempt`, when given, must match. */
  | { type: 'TASK_REVOKED'; taskId: string; attempt?: number; reason?: string }
  /** Stop claiming, stop every slot (handing running tasks back), then stop. */
  | { type: 'SHUTDOWN' }
  | SlotFreedEvent
  | SlotStartedEvent
  | SlotStoppedEvent
  | SlotDoneEvent;

/**
 * Sent by XState itself when a slot actor reaches its final state, right after the slot's SLOT_STOPPED. A slot
 * leaves `slotIds` on this rather than on SLOT_STOPPED, so no event of a slot arrives after it is forgotten
 * (and shutdown, which waits for `slotIds` to empty, completes after the last one).
 */
export interface SlotDoneEvent {
  type: `xstate.done.actor.${string}`;
  actorId?: string;
  output?: unknown;
}

/** Prefix of slot ids; a slot's id is also its child actor id. */
const slotIdPrefix = 'slot-';

/** Agents running or starting: slots with a run. */
function busyCount(context: SupervisorContext): number {
  return Object.keys(context.slotRuns).length;
}

/** Whether a reading allows growth under CPU_THRESHOLD and MEMORY_RESERVE. */
export function readingAdmits(reading: ResourceReading, scaling: Pick<ScalingPolicy, 'cpuThreshold' | 'memoryReserve'>): boolean {
  // At most the threshold: CPU_THRESHOLD=100 means never hold back for CPU.
  return reading.cpuPercent <= scaling.cpuThreshold && reading.availableBytes > scaling.memoryReserve;
}

/**
 * Whether one more slot may be added now: none is settling, the cap is not reached, and the machine has room —
 * or nothing runs here at all, so a busy machine (2 cores at 80 %) still makes progress one agent at a time.
 */
function mayGrow(context: SupervisorContext): boolean {
  if (context.settlingSlot !== null || context.slotIds.length >= context.maxWorkers) return false;
  return context.admissible || busyCount(context) === 0;
}

/** The lowest `slot-<n>` not in use, so slot ids stay within `slot-0` … `slot-<maxWorkers - 1>`. */
function freeSlotId(context: SupervisorContext): string {
  for (let n = 0; ; n++) {
    const id = `${slotIdPrefix}${n}`;
    if (!context.slotIds.includes(id)) return id;
  }
}

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
    sampleResources: fromCallback<AnyEventObject, SampleResourcesInput>(() => {
      throw new Error('sampleResources not provided: provide it with supervisorMachine.provide({ actors: { sampleResources } })');
    }),
  },
  delays: {
    TICK: ({ context }) => context.tickMs,
    SETTLE_CAP: ({ context }) => context.scaling.settleMaxMs,
    DRAIN_IDLE: ({ context }) => context.scaling.drainIdleMs,
  },
  guards: {
    canClaim: ({ context }) => !context.fenced && (context.idleSlots.length > 0 || mayGrow(context)),
    wakePending: ({ context }) => context.wakePending,
    allSlotsStopped: ({ context }) => context.slotIds.length === 0,
    isSettlingSlot: ({ context, event }) => 'slotId' in event && event.slotId === context.settlingSlot,
    readingsSettled: ({ context, event }) => {
      if (event.type !== 'SETTLE_SAMPLE' || context.settleReading === null) return false;
      const { scaling, settleReading: last } = context;
      return (
        Math.abs(event.reading.cpuPercent - last.cpuPercent) <= scaling.settleCpuPercent &&
        Math.abs(event.reading.availableBytes - last.availableBytes) <= scaling.settleBytes
      );
    },
  },
  actions: {
    /** A claim failed; the engine logs it. */
    reportError: (_, _params: { error: unknown }) => {},
    /** A slot was added (the engine logs it with a timestamp: the steps of a ramp). */
    slotAdded: (_, _params: SlotAddedNotice) => {},
    /** A settling window ended; growth may go on. */
    growthSettled: (_, _params: GrowthSettledNotice) => {},
    /** Idle slots were drained because the queue is idle. */
    slotsDrained: (_, _params: { slotIds: string[] }) => {},
    scheduleTick: raise({ type: 'TICK' }, { delay: 'TICK', id: 'tick' }),
    cancelTick: cancel('tick'),
    cancelDrain: enqueueActions(({ context, enqueue }) => {
      if (!context.drainArmed) return;
      enqueue.cancel('drainIdle');
      enqueue.assign({ drainArmed: false });
    }),
    /** After a claim found nothing: drain the idle slots if the queue stays idle for `drainIdleMs`. */
    armDrain: enqueueActions(({ context, enqueue }) => {
      if (context.drainArmed || context.idleSlots.length === 0) return;
      enqueue.raise({ type: 'DRAIN_IDLE' }, { delay: 'DRAIN_IDLE', id: 'drainIdle' });
      enqueue.assign({ drainArmed: true });
    }),
    wake: raise({ type: 'WAKE' }),
  },
}).createMachine({
  id: 'supervisor',
  initial: 'running',
  context: ({ input }) => ({
    nodeId: input.nodeId,
    maxWorkers: input.maxWorkers,
    tickMs: input.tickMs,
    scaling: { ...defaultScalingPolicy, ...input.scaling },
    slotIds: [],
    idleSlots: [],
    slotRuns: {},
    admissible: true,
    fenced: false,
    wakePending: false,
    shutdownPending: false,
    stoppedSlots: [],
    settlingSlot: null,
    settleReading: null,
    drainArmed: false,
  }),
  on: {
    // Slot bookkeeping holds in every state, so the counts stay right during shutdown too.
    SLOT_FREED: {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const live = context.slotIds.includes(event.slotId) && !context.stoppedSlots.includes(event.slotId);
        enqueue.assign({
          idleSlots: !live || context.idleSlots.includes(event.slotId) ? context.idleSlots : [...context.idleSlots, event.slotId],
          slotRuns: withoutKey(context.slotRuns, event.slotId),
        });
        // The new agent is gone already: nothing of it is left to measure.
        if (event.slotId === context.settlingSlot) enqueue.raise({ type: 'SETTLE_ENDED' });
        enqueue('wake');
      }),
    },
    SLOT_STOPPED: {
      actions: enqueueActions(({ context, event, enqueue }) => {
        enqueue.assign({
          ...retireSlot(context, event.slotId),
          stoppedSlots: context.stoppedSlots.includes(event.slotId) ? context.stoppedSlots : [...context.stoppedSlots, event.slotId],
        });
        if (event.slotId === context.settlingSlot) enqueue.raise({ type: 'SETTLE_ENDED' });
      }),
    },
    'xstate.done.actor.*': {
      actions: enqueueActions(({ context, event, enqueue }) => {
        const slotId = event.actorId;
        if (slotId === undefined || !context.slotIds.includes(slotId)) return;
        enqueue.assign({
          ...retireSlot(context, slotId),
          slotIds: context.slotIds.filter((id) => id !== slotId),
          stoppedSlots: context.stoppedSlots.filter((id) => id !== slotId),
        });
        // A done child stays among the children until it is stopped; drained slots would pile up there.
        enqueue.stopChild(slotId);
      }),
    },
  },
  states: {
    running: {
      type: 'parallel',
      // A self-renewing delayed TICK rather than `after`: an `after` on `running` would have to re-enter
      // `running` to repeat, which would cancel an in-flight claim. The first WAKE is immediate so a node
      // that starts picks up work already waiting.
      entry: ['scheduleTick', 'wake'],
      exit: ['cancelTick', 'cancelDrain'],
      invoke: {
        id: 'watchResources',
        src: 'sampleResources',
        input: ({ context }): SampleResourcesInput => ({ intervalMs: context.scaling.watchMs, report: 'RESOURCES' }),
      },
      on: {
        TICK: { actions: ['wake', 'scheduleTick'] },
        // Only a change to admissible wakes: the watch repeats its verdict every `watchMs`.
        RESOURCES: {
          actions: enqueueActions(({ context, event, enqueue }) => {
            const admissible = readingAdmits(event.reading, context.scaling);
            if (admissible && !context.admissible) enqueue.raise({ type: 'WAKE' });
            enqueue.assign({ admissible });
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
        claims: {
          initial: 'idle',
          states: {
            idle: {
              on: {
                WAKE: { guard: 'canClaim', target: 'claiming' },
                DRAIN_IDLE: {
                  actions: enqueueActions(({ context, enqueue }) => {
                    enqueue.assign({ drainArmed: false, idleSlots: [] });
                    if (context.idleSlots.length === 0) return;
                    for (const slotId of context.idleSlots) enqueue.sendTo(slotId, { type: 'DRAIN' });
                    enqueue({ type: 'slotsDrained', params: { slotIds: context.idleSlots } });
                  }),
                },
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
                      'cancelDrain',
                      enqueueActions(({ context, event, enqueue }) => {
                        const task = event.output;
                        if (task === null) return;
                        const assignment = { type: 'ASSIGN', taskId: task.taskId, attempt: task.attempt, launch: task.launch } as const;
                        const run = { taskId: task.taskId, attempt: task.attempt };
                        // A free slot first: reusing one keeps the number of agents the same, so it waits for nothing.
                        const idleSlot = context.idleSlots[0];
                        if (idleSlot !== undefined) {
                          enqueue.sendTo(idleSlot, assignment);
                          enqueue.assign({ idleSlots: context.idleSlots.slice(1), slotRuns: { ...context.slotRuns, [idleSlot]: run } });
                          return;
                        }
                        if (context.slotIds.length >= context.maxWorkers) {
                          // Cannot happen (claims start only with an idle slot or room to grow); if it does, the
                          // lease lapses and the recovery sweep requeues the task.
                          enqueue({ type: 'reportError', params: { error: new Error(`claimed ${task.taskId} but no slot is idle`) } });
                          return;
                        }
                        // Growth. The claim began with room to grow; it runs even if the verdict changed meanwhile,
                        // since the task is claimed already and would otherwise wait for its lease to lapse.
                        const slotId = freeSlotId(context);
                        enqueue.spawnChild('workerSlot', { id: slotId, input: { slotId } });
                        enqueue.sendTo(slotId, assignment);
                        enqueue.assign({ slotIds: [...context.slotIds, slotId], slotRuns: { ...context.slotRuns, [slotId]: run } });
                        enqueue({ type: 'slotAdded', params: { slotId, slots: context.slotIds.length + 1, busy: busyCount(context) + 1 } });
                        enqueue.raise({ type: 'SLOT_ADDED', slotId });
                      }),
                      // One claim per step: ask again straight away, so a burst of ready tasks fills every free slot.
                      'wake',
                    ],
                  },
                  { guard: 'wakePending', target: 'idle', actions: ['armDrain', 'wake'] },
                  { target: 'idle', actions: 'armDrain' },
                ],
                // No immediate retry: a failing store would spin. The tick retries.
                onError: {
                  target: 'idle',
                  actions: { type: 'reportError', params: ({ event }) => ({ error: event.error }) },
                },
              },
              on: {
                WAKE: { actions: assign({ wakePending: true }) },
                // Idle slots are kept while a claim is in flight: it may need one. An empty claim re-arms the drain.
                DRAIN_IDLE: { actions: assign({ drainArmed: false }) },
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
        growth: {
          initial: 'open',
          states: {
            open: {
              // Cleared on entry, not on leaving `settling`: the transition's own actions still name the slot.
              entry: assign({ settlingSlot: null, settleReading: null }),
              on: { SLOT_ADDED: { target: 'settling', actions: assign({ settlingSlot: ({ event }) => event.slotId, settleReading: null }) } },
            },
            settling: {
              initial: 'launching',
              entry: raise({ type: 'SETTLE_CAP' }, { delay: 'SETTLE_CAP', id: 'settleCap' }),
              // Growth is open again: a wake-up lets the next slot be added if there is work for it.
              exit: [cancel('settleCap'), 'wake'],
              on: {
                SETTLE_CAP: {
                  target: 'open',
                  actions: { type: 'growthSettled', params: ({ context }) => ({ slotId: context.settlingSlot ?? '', end: 'capped' as const, reading: context.settleReading }) },
                },
                SETTLE_ENDED: {
                  target: 'open',
                  actions: { type: 'growthSettled', params: ({ context }) => ({ slotId: context.settlingSlot ?? '', end: 'ended' as const, reading: context.settleReading }) },
                },
              },
              states: {
                // Readings before the agent exists would settle at once and measure nothing.
                launching: {
                  on: { SLOT_STARTED: { guard: 'isSettlingSlot', target: 'measuring' } },
                },
                measuring: {
                  invoke: {
                    id: 'settleSamples',
                    src: 'sampleResources',
                    input: ({ context }): SampleResourcesInput => ({ intervalMs: context.scaling.settleSampleMs, report: 'SETTLE_SAMPLE' }),
                  },
                  on: {
                    SETTLE_SAMPLE: [
                      {
                        guard: 'readingsSettled',
                        target: '#supervisor.running.growth.open',
                        actions: [
                          assign({ admissible: ({ context, event }) => readingAdmits(event.reading, context.scaling) }),
                          { type: 'growthSettled', params: ({ context, event }) => ({ slotId: context.settlingSlot ?? '', end: 'measured' as const, reading: event.reading }) },
                        ],
                      },
                      {
                        actions: assign({
                          settleReading: ({ event }) => event.reading,
                          admissible: ({ context, event }) => readingAdmits(event.reading, context.scaling),
                        }),
                      },
                    ],
                  },
                },
              },
            },
          },
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
  /** Live slots. */
  slots: number;
  idle: number;
  busy: number;
  /** The slot whose new agent is settling (no other slot is added meanwhile), if any. */
  settling: string | null;
}

/** A compact, pure view of a supervisor snapshot for the inspector. */
export function supervisorSummary(snapshot: SupervisorSnapshot): SupervisorSummary {
  const { context } = snapshot;
  const state = snapshot.matches({ running: { claims: 'claiming' } })
    ? 'claiming'
    : snapshot.matches('running')
      ? 'idle'
      : snapshot.matches('stopping')
        ? 'stopping'
        : 'stopped';
  return {
    state,
    slots: context.slotIds.length,
    idle: context.idleSlots.length,
    busy: Object.keys(context.slotRuns).length,
    settling: context.settlingSlot,
  };
}

/** Take a slot out of the rotation: it gets no more claims and runs nothing. */
function retireSlot(context: SupervisorContext, slotId: string): Partial<SupervisorContext> {
  return { idleSlots: context.idleSlots.filter((id) => id !== slotId), slotRuns: withoutKey(context.slotRuns, slotId) };
}

function withoutKey<T>(record: Record<string, T>, key: string): Record<string, T> {
  const { [key]: _dropped, ...rest } = record;
  return rest;
}
