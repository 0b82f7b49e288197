/**
 * The lifecycle of one schedule, as a pure decider (SPEC §3; DESIGN §1, §6). Like the task machine it is never
 * run live: the engine calls `initialTransition` / `transition`, commits the result with the schedule row and
 * only then runs the returned effects. Time never comes from inside the machine: every event that (re)arms the
 * next firing carries `at`, and the slot times (computed by croner outside, engine/schedule-slots.ts) arrive in
 * events, so the machine stays pure and testable without a clock.
 *
 * The next firing is one delayed `raise` with the id `due` (a durable timer row): `DUE` at the next slot, or
 * `EXPIRE` at `expiresAt` when that comes first. `DUE` itself has no transition here: the engine turns the
 * delivered timer into `FIRE`, after it has worked out which slots are due and what the missed-run policy does.
 *
 * A chained schedule (`afterScheduleId`) has no slot of its own (`nextRunAt` null) and arms nothing but its
 * expiry: it fires when the schedule it follows runs. That arrives as `UPSTREAM_RAN`, which the engine also
 * turns into `FIRE`; when the followed schedule ends without another run, it arrives as `CANCEL`.
 */
import { assign, cancel, enqueueActions, setup, type SnapshotFrom } from 'xstate';

/** States of the schedule statechart. */
export type ScheduleState = 'active' | 'paused' | 'completed' | 'cancelled' | 'expired';

/** States a schedule never leaves. */
export const finishedScheduleStates: readonly ScheduleState[] = ['completed', 'cancelled', 'expired'];

/** Every schedule state, for validation and schemas. */
export const scheduleStates = ['active', 'paused', 'completed', 'cancelled', 'expired'] as const satisfies readonly ScheduleState[];

/** What a new schedule actor starts from. */
export interface ScheduleInput {
  /** When the schedule was created (epoch ms). */
  at: number;
  /** Its first slot (epoch ms); null for a chained schedule, which waits for the run of the one it follows. */
  nextRunAt: number | null;
  oneTime: boolean;
  maxRuns: number | null;
  expiresAt: number | null;
}

/** The durable context of a schedule actor. */
export interface ScheduleContext {
  /** When the last event was decided: the origin of the next timer's delay. */
  at: number;
  /** The slot the armed timer is for; null once there is none. */
  nextRunAt: number | null;
  oneTime: boolean;
  /** Tasks started so far. */
  runs: number;
  maxRuns: number | null;
  expiresAt: number | null;
  cancelReason: string | null;
}

/** Events a schedule actor accepts. */
export type ScheduleEvent =
  /** Timer payload: a slot is due. The engine delivers it as `FIRE`, never as itself. */
  | { type: 'DUE' }
  /** Timer payload: the schedule this one follows started `taskId` for its slot `scheduledFor`. Delivered as `FIRE`. */
  | { type: 'UPSTREAM_RAN'; taskId: string; scheduledFor: number }
  /** The due slots were handled at `at`: `started` says whether a task was created; `nextRunAt` is the next slot after `at`, or null. */
  | { type: 'FIRE'; at: number; started: boolean; nextRunAt: number | null }
  /** Timer: `expiresAt` was reached before the next slot. */
  | { type: 'EXPIRE' }
  /** A user paused the schedule. */
  | { type: 'PAUSE' }
  /** A user resumed it at `at`; a slot missed meanwhile fires at once and its missed-run policy applies. */
  | { type: 'RESUME'; at: number }
  /** A user cancelled it; with `cancelTasks`, its unfinished tasks are cancelled too. */
  | { type: 'CANCEL'; reason?: string | undefined; cancelTasks?: boolean | undefined };

/** The params of every effect a schedule step can ask for. */
export interface ScheduleActionParams {
  /** A firing was committed; when it `started` a task, a runner may claim it now. */
  fired: { started: boolean };
  /** Cancel the schedule's unfinished tasks, with this reason. */
  cancelTasks: { reason: string };
}

/** The type of an action returned by a schedule step. */
export type ScheduleActionType = keyof ScheduleActionParams;

/** Id of the schedule's one delayed event (its durable timer). */
export const scheduleTimerId = 'due';

/** Id of the timer that carries a followed schedule's news (`UPSTREAM_RAN` or `CANCEL`) to its followers. */
export const upstreamTimerId = 'upstream';

/** The timer the context asks for: the next slot, or the expiry when that comes first; none for a chained schedule without an expiry. */
function wake(context: ScheduleContext): { event: ScheduleEvent; at: number } | null {
  const { nextRunAt, expiresAt } = context;
  if (expiresAt !== null && (nextRunAt === null || nextRunAt > expiresAt)) return { event: { type: 'EXPIRE' }, at: expiresAt };
  return nextRunAt === null ? null : { event: { type: 'DUE' }, at: nextRunAt };
}

// The engine runs returned actions by type after the commit; these defaults only keep the machine well-formed.
function noEffect(): void {}

const firedAction = {
  type: 'fired',
  params: ({ event }: { event: ScheduleEvent }) => ({ started: event.type === 'FIRE' && event.started }),
} as const;

/** CANCEL from active or paused; the tasks go too only when the user asked for it. */
const cancelTransitions = [
  {
    guard: ({ event }: { event: ScheduleEvent }) => event.type === 'CANCEL' && event.cancelTasks === true,
    target: 'cancelled',
    actions: [
      'recordCancel',
      {
        type: 'cancelTasks',
        params: ({ event }: { event: ScheduleEvent }) => ({ reason: (event.type === 'CANCEL' ? event.reason : undefined) ?? 'schedule cancelled' }),
      },
    ],
  },
  { target: 'cancelled', actions: 'recordCancel' },
] as const;

/** The schedule lifecycle statechart (SPEC §3). */
export const scheduleMachine = setup({
  types: {
    context: {} as ScheduleContext,
    events: {} as ScheduleEvent,
    input: {} as ScheduleInput,
  },
  guards: {
    /** After this firing nothing is left: one-time ran, maxRuns reached, or no later slot exists. */
    doneAfterFire: ({ context, event }) => {
      if (event.type !== 'FIRE') return false;
      const runs = context.runs + (event.started ? 1 : 0);
      return (context.oneTime && event.started) || (context.maxRuns !== null && runs >= context.maxRuns) || event.nextRunAt === null;
    },
    /** The next slot lies after the expiry that has already passed. */
    expiredAtFire: ({ context, event }) =>
      event.type === 'FIRE' && context.expiresAt !== null && context.expiresAt <= event.at && (event.nextRunAt === null || event.nextRunAt > context.expiresAt),
  },
  actions: {
    fired: (_, _params: ScheduleActionParams['fired']) => noEffect(),
    cancelTasks: (_, _params: ScheduleActionParams['cancelTasks']) => noEffect(),
    armNext: enqueueActions(({ context, enqueue }) => {
      const next = wake(context);
      if (next) enqueue.raise(next.event, { id: scheduleTimerId, delay: Math.max(0, next.at - context.at) });
    }),
    recordFire: assign(({ context, event }) =>
      event.type === 'FIRE' ? { at: event.at, nextRunAt: event.nextRunAt, runs: context.runs + (event.started ? 1 : 0) } : {},
    ),
    recordCancel: assign({ cancelReason: ({ event }) => (event.type === 'CANCEL' ? (event.reason ?? null) : null) }),
  },
}).createMachine({
  id: 'schedule',
  initial: 'active',
  context: ({ input }) => ({
    at: input.at,
    nextRunAt: input.nextRunAt,
    oneTime: input.oneTime,
    runs: 0,
    maxRuns: input.maxRuns,
    expiresAt: input.expiresAt,
    cancelReason: null,
  }),
  states: {
    active: {
      entry: 'armNext',
      exit: cancel(scheduleTimerId),
      on: {
        FIRE: [
          {
            guard: 'doneAfterFire',
            target: 'completed',
            actions: ['recordFire', firedAction],
          },
          { guard: 'expiredAtFire', target: 'expired', actions: ['recordFire', firedAction] },
          // Re-entered, so the exit cancels the consumed timer and the entry arms the next one.
          { target: 'active', reenter: true, actions: ['recordFire', firedAction] },
        ],
        EXPIRE: { target: 'expired', actions: assign({ nextRunAt: null }) },
        PAUSE: { target: 'paused' },
        CANCEL: cancelTransitions,
      },
    },
    paused: {
      on: {
        RESUME: { target: 'active', actions: assign({ at: ({ event }) => event.at }) },
        CANCEL: cancelTransitions,
      },
    },
    completed: { type: 'final' },
    cancelled: { type: 'final', entry: assign({ nextRunAt: null }) },
    expired: { type: 'final' },
  },
});

/** A schedule snapshot, as returned by `transition` or `scheduleMachine.resolveState`. */
export type ScheduleSnapshot = SnapshotFrom<typeof scheduleMachine>;

/** The persisted part of a schedule snapshot. */
export interface PersistedSchedule {
  value: ScheduleState;
  context: ScheduleContext;
}

/** Whether `event` changes anything in `snapshot` (a stale timer or a pause of a paused schedule is dropped). */
export function scheduleStepAccepted(snapshot: ScheduleSnapshot, event: ScheduleEvent): boolean {
  return snapshot.status === 'active' && snapshot.can(event);
}
