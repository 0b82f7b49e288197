/**
 * The lifecycle of one task, as a pure decider. The engine never runs this machine as a live actor: it calls
 * `initialTransition(taskMachine, input)` / `transition(taskMachine, snapshot, event)`, commits the returned
 * `{ value, context }` with the task row, and only then executes the returned actions by their `type` and
 * `params` (DESIGN.md §1). It restores with `taskMachine.resolveState({ value, context })`.
 *
 * Because of that the machine holds no invoked actors and no children: every effect is a named action whose
 * params carry everything the engine needs. Every delayed event (the run's timeout, a usage-limit reset, a
 * pipeline step's start delay) is an ordinary delayed `raise` with an id, cancelled by id when its state is
 * left; `transition()` returns those as `xstate.raise` / `xstate.cancel` actions, which the engine commits as
 * rows of its durable `timers` table in the same transaction as the step (DESIGN.md §2).
 */
import { assign, cancel, raise, setup, type SnapshotFrom } from 'xstate';

/** Why a task failed; stored on the task row and shown to users. */
export type TaskFailReason =
  | 'exit_code'
  | 'timeout'
  | 'output_limit'
  | 'dependency_failed'
  | 'spawn_error'
  | 'budget_exceeded'
  | 'crashed';

/** Every {@link TaskFailReason}, for validation and schemas. */
export const taskFailReasons: readonly TaskFailReason[] = [
  'exit_code',
  'timeout',
  'output_limit',
  'dependency_failed',
  'spawn_error',
  'budget_exceeded',
  'crashed',
];

/** The states of the task statechart; the state value of a task snapshot is always one of these. */
export type TaskState = 'queued' | 'waiting' | 'ready' | 'running' | 'paused' | 'completed' | 'failed' | 'cancelled';

/** States a task never leaves. */
export const terminalTaskStates: readonly TaskState[] = ['completed', 'failed', 'cancelled'];

/** States of a task that is still in play (neither finished nor merely submitted). */
export const activeTaskStates: readonly TaskState[] = ['waiting', 'ready', 'running', 'paused'];

/** Reasons an agent run can fail other than by its own exit. */
export type AgentFailureReason = 'output_limit' | 'spawn_error' | 'budget_exceeded';

/** What a new task actor starts from. */
export interface TaskInput {
  /** Dependencies not yet completed when the task was inserted. */
  pendingDeps: number;
  /** How many lapsed leases (dead runners) the task survives before it fails as `crashed`. */
  maxRecoveries: number;
  /** A run's time limit; the run fails with `timeout` when it is still running after it. */
  timeoutMs: number;
  /** A pipeline step waits this long after its dependencies complete before it is ready. */
  startDelayMs: number;
}

/** The durable context of a task actor, persisted as JSON next to its state value. */
export interface TaskContext {
  pendingDeps: number;
  /** Number of runs started; the fence for every write of a run (DESIGN.md §3). */
  attempt: number;
  /** Lapsed leases survived so far. */
  recoveries: number;
  maxRecoveries: number;
  timeoutMs: number;
  startDelayMs: number;
  /** Node that owns the current run, or null when no run is in flight. */
  owner: string | null;
  failReason: TaskFailReason | null;
  error: string | null;
  exitCode: number | null;
  /** Epoch ms at which a paused task becomes ready again. */
  resumeAt: number | null;
  cancelReason: string | null;
  /** True once a run was cut short (shutdown hand-back or lost lease): later runs resume the agent session. */
  interrupted: boolean;
  /**
   * Runs that stopped at a usage limit: neither failures nor retries, and the next run resumes the agent session.
   * Absent in snapshots written before it existed (read as 0).
   */
  limitPauses?: number;
  failedDependency: string | null;
}

/** Events a task actor accepts. */
export type TaskEvent =
  /** The task row was inserted; decide between waiting on dependencies and ready. */
  | { type: 'SUBMIT' }
  /** One dependency completed. */
  | { type: 'DEPENDENCY_COMPLETED'; dependencyId: string }
  /** One dependency failed or was cancelled, so this task can never run. */
  | { type: 'DEPENDENCY_FAILED'; dependencyId: string; rootTaskId?: string }
  /** A node claimed the task (one atomic write with a lease). */
  | { type: 'CLAIM'; node: string }
  /** The agent process ended on its own. */
  | { type: 'AGENT_EXITED'; exitCode: number | null; sawResult: boolean; isError: boolean; error?: string }
  /** The run was ended by a limit or could not start. */
  | { type: 'AGENT_FAILED'; reason: AgentFailureReason; error: string; exitCode?: number | null }
  /**
   * The agent hit its account's usage limit, seen at `at`; the task resumes at `resetAt` (both epoch ms), and
   * until then no other task of the agent and account starts. `limitType` is the agent's name for the limit.
   */
  | { type: 'USAGE_LIMIT'; resetAt: number; at: number; limitType?: string | null }
  /** Timer: the usage limit has reset. */
  | { type: 'RESUME_DUE' }
  /** Timer: a pipeline step's start delay after its dependencies is over. */
  | { type: 'START_DUE' }
  /** Timer: the run is still going at its time limit. */
  | { type: 'TIMEOUT' }
  /** A user cancelled the task. */
  | { type: 'CANCEL'; reason?: string }
  /** The owning node shuts down and hands the run back to the queue. */
  | { type: 'RELEASE' }
  /** The owner's lease lapsed (the runner died or stalled). */
  | { type: 'LEASE_LOST' };

/** Alias of {@link TaskEvent}, the name the engine's step code imports. */
export type TaskMachineEvent = TaskEvent;

/** The params of every effect a task step can ask for, keyed by action type. */
export interface TaskActionParams {
  /** Launch attempt `attempt` of the agent on node `node`; `interrupted` asks it to resume the session. */
  startAgent: { attempt: number; node: string; interrupted: boolean };
  /** Kill the process group of attempt `attempt`, which `owner` runs. */
  killAgent: { attempt: number; owner: string | null };
  /** Dependants were decided in the same commit (DESIGN.md §5): ready ones can be claimed now. */
  notifyDependants: { outcome: 'completed' | 'failed' };
  /** Store what attempt `attempt` left behind (git state, last lines, error, session id), with the step. */
  recordCheckpoint: { attempt: number };
  /**
   * Hold back the task's agent on this account until `until` (epoch ms), with the step: the limit is the
   * account's, so its other tasks would only hit it too.
   */
  holdAgent: { until: number; limitType: string | null };
}

/** Ids of the task's delayed events; each is one durable timer row while it is armed. */
export const taskTimerIds = { timeout: 'timeout', resume: 'resume', start: 'start' } as const;

/**
 * The states a step arms a timer on its way into (TIMEOUT entering `running`, RESUME_DUE `paused`, START_DUE
 * `waiting`): a runner's timer loop looks for a new due time after those steps only.
 */
export const taskTimerStates: ReadonlySet<string> = new Set(['running', 'paused', 'waiting']);

/** The type of an action returned by a task step. */
export type TaskActionType = keyof TaskActionParams;

/** A checkpoint records a finished attempt, so only the transitions that end a run ask for one. */
const checkpointAttempt = {
  type: 'recordCheckpoint',
  params: ({ context }: { context: TaskContext }) => ({ attempt: context.attempt }),
} as const;

// The defaults do nothing: the engine executes returned actions by type after the commit, never through
// these implementations. They exist so the machine is well-formed and `provide` can type-check overrides.
function noEffect(): void {}

/** The task lifecycle statechart (SPEC.md §3). */
export const taskMachine = setup({
  types: {
    context: {} as TaskContext,
    events: {} as TaskEvent,
    input: {} as TaskInput,
  },
  guards: {
    hasPendingDeps: ({ context }) => context.pendingDeps > 0,
    hasOtherPendingDeps: ({ context }) => context.pendingDeps > 1,
    agentSucceeded: ({ event }) =>
      event.type === 'AGENT_EXITED' && event.exitCode === 0 && event.sawResult && !event.isError,
    canRecover: ({ context }) => context.recoveries < context.maxRecoveries,
    hasStartDelay: ({ context }) => context.startDelayMs > 0,
  },
  actions: {
    startAgent: (_, _params: TaskActionParams['startAgent']) => noEffect(),
    killAgent: (_, _params: TaskActionParams['killAgent']) => noEffect(),
    notifyDependants: (_, _params: TaskActionParams['notifyDependants']) => noEffect(),
    recordCheckpoint: (_, _params: TaskActionParams['recordCheckpoint']) => noEffect(),
    holdAgent: (_, _params: TaskActionParams['holdAgent']) => noEffect(),
    armStartDelay: raise({ type: 'START_DUE' }, { id: taskTimerIds.start, delay: ({ context }) => context.startDelayMs }),
    // Shared by every state a dependency failure or a cancel can reach.
    failOnDependency: assign({
      owner: null,
      failReason: 'dependency_failed',
      failedDependency: ({ event }) => (event.type === 'DEPENDENCY_FAILED' ? event.dependencyId : null),
      error: ({ event }) => {
        if (event.type !== 'DEPENDENCY_FAILED') return null;
        const root = event.rootTaskId && event.rootTaskId !== event.dependencyId ? ` (first failure: ${event.rootTaskId})` : '';
        return `dependency ${event.dependencyId} did not complete${root}`;
      },
    }),
    recordCancel: assign({
      owner: null,
      cancelReason: ({ event }) => (event.type === 'CANCEL' ? (event.reason ?? null) : null),
    }),
  },
}).createMachine({
  id: 'task',
  initial: 'queued',
  context: ({ input }) => ({
    pendingDeps: input.pendingDeps,
    attempt: 0,
    recoveries: 0,
    maxRecoveries: input.maxRecoveries,
    timeoutMs: input.timeoutMs,
    startDelayMs: input.startDelayMs,
    owner: null,
    failReason: null,
    error: null,
    exitCode: null,
    resumeAt: null,
    cancelReason: null,
    interrupted: false,
    limitPauses: 0,
    failedDependency: null,
  }),
  states: {
    queued: {
      on: {
        SUBMIT: [
          { guard: 'hasPendingDeps', target: 'waiting' },
          { guard: 'hasStartDelay', target: 'waiting', actions: 'armStartDelay' },
          { target: 'ready' },
        ],
        DEPENDENCY_FAILED: { target: 'failed', actions: 'failOnDependency' },
        CANCEL: { target: 'cancelled', actions: 'recordCancel' },
      },
    },
    // Waiting on dependencies, then (a pipeline step) on its start delay.
    waiting: {
      exit: cancel(taskTimerIds.start),
      on: {
        DEPENDENCY_COMPLETED: [
          { guard: 'hasOtherPendingDeps', actions: assign({ pendingDeps: ({ context }) => context.pendingDeps - 1 }) },
          { guard: 'hasStartDelay', actions: [assign({ pendingDeps: 0 }), 'armStartDelay'] },
          { target: 'ready', actions: assign({ pendingDeps: 0 }) },
        ],
        START_DUE: { guard: ({ context }) => context.pendingDeps === 0, target: 'ready' },
        DEPENDENCY_FAILED: { target: 'failed', actions: 'failOnDependency' },
        CANCEL: { target: 'cancelled', actions: 'recordCancel' },
      },
    },
    ready: {
      on: {
        CLAIM: {
          target: 'running',
          actions: [
            assign({
              attempt: ({ context }) => context.attempt + 1,
              owner: ({ event }) => event.node,
            }),
            // Params are resolved after the assign above, so they carry the new attempt.
            {
              type: 'startAgent',
              params: ({ context, event }) => ({
                attempt: context.attempt,
                node: event.node,
                interrupted: context.interrupted,
              }),
            },
          ],
        },
        DEPENDENCY_FAILED: { target: 'failed', actions: 'failOnDependency' },
        CANCEL: { target: 'cancelled', actions: 'recordCancel' },
      },
    },
    running: {
      entry: raise({ type: 'TIMEOUT' }, { id: taskTimerIds.timeout, delay: ({ context }) => context.timeoutMs }),
      exit: cancel(taskTimerIds.timeout),
      on: {
        AGENT_EXITED: [
          { guard: 'agentSucceeded', target: 'completed', actions: [assign({ owner: null }), checkpointAttempt] },
          {
            target: 'failed',
            actions: [
              assign({
                owner: null,
                failReason: 'exit_code',
                exitCode: ({ event }) => event.exitCode,
                error: ({ event }) => event.error ?? describeExit(event),
              }),
              checkpointAttempt,
            ],
          },
        ],
        AGENT_FAILED: {
          target: 'failed',
          actions: [
            assign({
              owner: null,
              failReason: ({ event }) => event.reason,
              error: ({ event }) => event.error,
              exitCode: ({ event }) => event.exitCode ?? null,
            }),
            checkpointAttempt,
          ],
        },
        // The time limit is a durable timer, so it holds even when the run's runner died meanwhile.
        TIMEOUT: {
          target: 'failed',
          actions: [
            { type: 'killAgent', params: ({ context }) => ({ attempt: context.attempt, owner: context.owner }) },
            assign({ owner: null, failReason: 'timeout', error: ({ context }) => `timed out after ${context.timeoutMs} ms` }),
            checkpointAttempt,
          ],
        },
        // Not a failure and not a retry: the same run resumes its session once the limit has reset.
        USAGE_LIMIT: {
          target: 'paused',
          actions: [
            assign({ owner: null, resumeAt: ({ event }) => event.resetAt, limitPauses: ({ context }) => (context.limitPauses ?? 0) + 1 }),
            raise({ type: 'RESUME_DUE' }, { id: taskTimerIds.resume, delay: ({ event }) => Math.max(0, event.resetAt - event.at) }),
            { type: 'holdAgent', params: ({ event }) => ({ until: event.resetAt, limitType: event.limitType ?? null }) },
          ],
        },
        // Ordered before the state change so the kill names the run that was live when the cancel arrived.
        CANCEL: {
          target: 'cancelled',
          actions: [
            {
              type: 'killAgent',
              params: ({ context }) => ({ attempt: context.attempt, owner: context.owner }),
            },
            'recordCancel',
          ],
        },
        RELEASE: { target: 'ready', actions: assign({ owner: null, interrupted: true }) },
        LEASE_LOST: [
          {
            guard: 'canRecover',
            target: 'ready',
            actions: assign({
              owner: null,
              interrupted: true,
              recoveries: ({ context }) => context.recoveries + 1,
            }),
          },
          {
            target: 'failed',
            actions: [
              assign({
                owner: null,
                interrupted: true,
                recoveries: ({ context }) => context.recoveries + 1,
                failReason: 'crashed',
                error: ({ context }) => `the runner died ${times(context.recoveries + 1)} while running this task`,
              }),
              checkpointAttempt,
            ],
          },
        ],
      },
    },
    paused: {
      exit: cancel(taskTimerIds.resume),
      on: {
        RESUME_DUE: { target: 'ready', actions: assign({ resumeAt: null }) },
        DEPENDENCY_FAILED: { target: 'failed', actions: 'failOnDependency' },
        CANCEL: { target: 'cancelled', actions: 'recordCancel' },
      },
    },
    completed: {
      type: 'final',
      entry: { type: 'notifyDependants', params: { outcome: 'completed' } },
    },
    failed: {
      type: 'final',
      entry: { type: 'notifyDependants', params: { outcome: 'failed' } },
    },
    cancelled: {
      type: 'final',
      entry: [{ type: 'notifyDependants', params: { outcome: 'failed' } }],
    },
  },
});

/** A task snapshot, as returned by `transition` or `taskMachine.resolveState`. */
export type TaskSnapshot = SnapshotFrom<typeof taskMachine>;

/** The part of a task snapshot that is persisted: restore it with `taskMachine.resolveState(persisted)`. */
export interface PersistedTask {
  value: TaskState;
  context: TaskContext;
}

/**
 * Whether `event` changes anything in `snapshot`. The engine asks before committing so that a stale or
 * misrouted event (a late `AGENT_EXITED` after a cancel, a second `CLAIM`) is dropped instead of written.
 */
export function taskStepAccepted(snapshot: TaskSnapshot, event: TaskEvent): boolean {
  return snapshot.status === 'active' && snapshot.can(event);
}

/** The state of a task snapshot; the machine is flat, so its value is always a plain state name. */
export function taskStateOf(snapshot: TaskSnapshot): TaskState {
  return snapshot.value as TaskState;
}

/** The persisted form of a task snapshot (JSON-safe). */
export function persistTask(snapshot: TaskSnapshot): PersistedTask {
  return { value: taskStateOf(snapshot), context: snapshot.context };
}

/** A one-line error for an agent exit that did not succeed and gave no error of its own. */
function describeExit(event: { exitCode: number | null; sawResult: boolean; isError: boolean }): string {
  if (event.isError) {
    const code = event.exitCode === null ? 'no exit code' : `exit code ${event.exitCode}`;
    return `agent reported an error (is_error) in its final result (${code})`;
  }
  if (event.exitCode === null) return 'agent was killed by a signal before it exited';
  if (event.exitCode !== 0) return `agent exited with code ${event.exitCode}`;
  return 'agent exited without a result (exit code 0 but no final result record)';
}

function times(n: number): string {
  return n === 1 ? 'once' : `${n} times`;
}
