/**
 * One worker slot of a runner node: it runs at most one agent at a time. A live, node-local actor
 * (DESIGN.md §1): it dies with its process, and its snapshot is written only for the inspector.
 *
 * The agent run is the invoked callback actor `runAgent`, invoked on the compound `active` state so that
 * `starting → busy → aborting` keeps the same run and leaving `active` for any reason (exit, shutdown) stops
 * it; the engine's callback cleanup kills the agent's process group (STYLE.md §2). An aborted run stays in
 * `active.aborting` until its agent is gone, so the slot is not free (and no other agent starts in it) while
 * the old one is still in its kill grace period.
 */
import { assign, enqueueActions, fromCallback, fromPromise, sendTo, setup, type AnyEventObject } from 'xstate';

/** How an agent run ended, as the slot hands it to `settle`. */
export interface SlotOutcome {
  /** `exited`: the launcher reported the end of the run; `error`: the `runAgent` actor itself failed. */
  kind: 'exited' | 'error';
  /** The launcher's report (for `exited`) or the thrown error (for `error`); the engine knows its shape. */
  detail: unknown;
}

/** What a slot is created with. */
export interface WorkerSlotInput {
  slotId: string;
}

/** The context of a worker slot; task fields are null while the slot is idle. */
export interface WorkerSlotContext {
  slotId: string;
  taskId: string | null;
  attempt: number | null;
  /** What the engine needs to launch the run (opaque to the slot), kept for the invoke's input. */
  launch: unknown;
  /** Pid of the agent's process (group leader), once started. */
  pid: number | null;
  outcome: SlotOutcome | null;
  /** A drain or stop arrived while a run was settling: stop instead of taking more work. */
  stopRequested: boolean;
}

/** Events a worker slot accepts. */
export type WorkerSlotEvent =
  /** Run attempt `attempt` of `taskId`; `launch` is passed through to `runAgent`. */
  | { type: 'ASSIGN'; taskId: string; attempt: number; launch: unknown }
  /** Sent back by `runAgent` once the agent process exists. */
  | { type: 'AGENT_STARTED'; pid: number }
  /** Sent back by `runAgent` when the run ended; `outcome` is the launcher's final report. */
  | { type: 'AGENT_EXITED'; outcome: unknown }
  /** This node no longer owns the task (cancelled, timed out, lease lost): kill the run, settle nothing. */
  | { type: 'ABORT'; reason: string }
  /** Shutdown: stop the run now and hand the task back to the queue. */
  | { type: 'STOP' }
  /** Scale-down: finish the current run, then stop. */
  | { type: 'DRAIN' };

/** What the slot sends its `runAgent` actor to have the agent's process group killed. */
export interface CancelRunEvent {
  type: 'CANCEL';
  reason: string;
}

/** Input of the `runAgent` callback actor. */
export interface RunAgentInput {
  taskId: string;
  attempt: number;
  launch: unknown;
}

/** Input of the `settle` promise actor, which commits a run's outcome to the database. */
export interface SettleInput {
  taskId: string;
  attempt: number;
  outcome: SlotOutcome;
}

/** Input of the `handBack` promise actor, which releases an interrupted run's task to the queue. */
export interface HandBackInput {
  taskId: string;
  attempt: number;
}

/** Params of the `slotFreed` and `slotStopped` actions. */
export interface SlotNotice {
  slotId: string;
}

/** Event a slot sends its parent (the supervisor) when it becomes idle after a run. */
export interface SlotFreedEvent {
  type: 'SLOT_FREED';
  slotId: string;
}

/**
 * Event a slot sends its parent (the supervisor) once its agent process exists: the supervisor starts measuring
 * a new slot's agent from here, since readings before it exists would measure nothing.
 */
export interface SlotStartedEvent {
  type: 'SLOT_STARTED';
  slotId: string;
  pid: number;
}

/** Event a slot sends its parent (the supervisor) when it has stopped for good. */
export interface SlotStoppedEvent {
  type: 'SLOT_STOPPED';
  slotId: string;
}

/** The context a slot returns to between runs. */
const cleared = { taskId: null, attempt: null, launch: null, pid: null, outcome: null } as const;

/** The worker slot lifecycle statechart (SPEC.md §3). */
export const workerSlotMachine = setup({
  types: {
    context: {} as WorkerSlotContext,
    events: {} as WorkerSlotEvent,
    input: {} as WorkerSlotInput,
  },
  actors: {
    // The engine provides the real effects; a forgotten `provide` fails loudly instead of idling.
    runAgent: fromCallback<AnyEventObject, RunAgentInput>(() => {
      throw new Error('runAgent not provided: provide it with workerSlotMachine.provide({ actors: { runAgent } })');
    }),
    settle: fromPromise<void, SettleInput>(async () => {
      throw new Error('settle not provided: provide it with workerSlotMachine.provide({ actors: { settle } })');
    }),
    handBack: fromPromise<void, HandBackInput>(async () => {
      throw new Error('handBack not provided: provide it with workerSlotMachine.provide({ actors: { handBack } })');
    }),
  },
  guards: {
    stopRequested: ({ context }) => context.stopRequested,
  },
  actions: {
    // Tell the supervisor when there is one; a slot run on its own (tests, tools) has no parent to tell.
    slotFreed: enqueueActions(({ enqueue, self }, params: SlotNotice) => {
      if (self._parent) enqueue.sendParent({ type: 'SLOT_FREED', slotId: params.slotId } satisfies SlotFreedEvent);
    }),
    slotStarted: enqueueActions(({ enqueue, self }, params: SlotNotice & { pid: number }) => {
      if (self._parent) enqueue.sendParent({ type: 'SLOT_STARTED', slotId: params.slotId, pid: params.pid } satisfies SlotStartedEvent);
    }),
    slotStopped: enqueueActions(({ enqueue, self }, params: SlotNotice) => {
      if (self._parent) enqueue.sendParent({ type: 'SLOT_STOPPED', slotId: params.slotId } satisfies SlotStoppedEvent);
    }),
    /** Settle or hand-back failed; the engine logs it (the task's lease then lapses and recovery takes over). */
    reportError: (_, _params: { error: unknown }) => {},
    clearRun: assign(cleared),
  },
}).createMachine({
  id: 'workerSlot',
  initial: 'idle',
  context: ({ input }) => ({ slotId: input.slotId, ...cleared, stopRequested: false }),
  states: {
    idle: {
      on: {
        ASSIGN: {
          target: 'active',
          actions: assign({
            taskId: ({ event }) => event.taskId,
            attempt: ({ event }) => event.attempt,
            launch: ({ event }) => event.launch,
            pid: null,
            outcome: null,
          }),
        },
        STOP: 'stopped',
        DRAIN: 'stopped',
      },
    },
    active: {
      initial: 'starting',
      invoke: {
        id: 'agent',
        src: 'runAgent',
        input: ({ context }) => ({
          taskId: context.taskId ?? '',
          attempt: context.attempt ?? 0,
          launch: context.launch,
        }),
        onError: {
          target: 'settling',
          actions: assign({ outcome: ({ event }) => ({ kind: 'error', detail: event.error }) }),
        },
      },
      on: {
        AGENT_EXITED: {
          target: 'settling',
          actions: assign({ outcome: ({ event }) => ({ kind: 'exited', detail: event.outcome }) }),
        },
        ABORT: '.aborting',
        STOP: 'draining',
        DRAIN: { actions: assign({ stopRequested: true }) },
      },
      states: {
        starting: {
          on: {
            AGENT_STARTED: {
              target: 'busy',
              actions: [
                assign({ pid: ({ event }) => event.pid }),
                { type: 'slotStarted', params: ({ context, event }) => ({ slotId: context.slotId, pid: event.pid }) },
              ],
            },
          },
        },
        busy: {},
        aborting: {
          entry: sendTo('agent', ({ event }) => ({ type: 'CANCEL', reason: event.type === 'ABORT' ? event.reason : 'aborted' }) satisfies CancelRunEvent),
          on: {
            // The agent is gone: its outcome belongs to a run this node no longer owns, so nothing is settled.
            AGENT_EXITED: [
              { guard: 'stopRequested', target: '#workerSlot.stopped', actions: 'clearRun' },
              { target: '#workerSlot.idle', actions: ['clearRun', { type: 'slotFreed', params: ({ context }) => ({ slotId: context.slotId }) }] },
            ],
            ABORT: {},
            STOP: { actions: assign({ stopRequested: true }) },
            DRAIN: { actions: assign({ stopRequested: true }) },
          },
        },
      },
    },
    settling: {
      invoke: {
        id: 'settle',
        src: 'settle',
        input: ({ context }) => ({
          taskId: context.taskId ?? '',
          attempt: context.attempt ?? 0,
          outcome: context.outcome ?? { kind: 'error', detail: new Error('no outcome recorded') },
        }),
        onDone: [
          { guard: 'stopRequested', target: 'stopped', actions: 'clearRun' },
          {
            target: 'idle',
            actions: ['clearRun', { type: 'slotFreed', params: ({ context }) => ({ slotId: context.slotId }) }],
          },
        ],
        onError: [
          {
            guard: 'stopRequested',
            target: 'stopped',
            actions: [{ type: 'reportError', params: ({ event }) => ({ error: event.error }) }, 'clearRun'],
          },
          {
            target: 'idle',
            actions: [
              { type: 'reportError', params: ({ event }) => ({ error: event.error }) },
              'clearRun',
              { type: 'slotFreed', params: ({ context }) => ({ slotId: context.slotId }) },
            ],
          },
        ],
      },
      // The run is over; let its outcome reach the database before stopping.
      on: {
        STOP: { actions: assign({ stopRequested: true }) },
        DRAIN: { actions: assign({ stopRequested: true }) },
      },
    },
    draining: {
      invoke: {
        id: 'handBack',
        src: 'handBack',
        input: ({ context }) => ({ taskId: context.taskId ?? '', attempt: context.attempt ?? 0 }),
        onDone: { target: 'stopped', actions: 'clearRun' },
        onError: {
          target: 'stopped',
          actions: [{ type: 'reportError', params: ({ event }) => ({ error: event.error }) }, 'clearRun'],
        },
      },
    },
    stopped: {
      type: 'final',
      entry: { type: 'slotStopped', params: ({ context }) => ({ slotId: context.slotId }) },
    },
  },
});
