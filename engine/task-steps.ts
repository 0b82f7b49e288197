/**
 * Decide: the pure half of every task step (DESIGN §1). Loads a task's persisted statechart, applies one event
 * with XState's `transition()`, and turns the result into a `TaskStep` for the store to commit: the next
 * snapshot, the domain columns it implies, and the durable timers it arms or cancels (the machine's delayed
 * `raise`s and `cancel`s). What is left of the returned actions are the effects to run after the commit.
 * Nothing here writes or runs anything.
 */
import {
  taskMachine,
  taskStepAccepted,
  type PersistedTask,
  type TaskActionParams,
  type TaskActionType,
  type TaskEvent as TaskMachineEvent,
  type TaskSnapshot,
} from '../actors/task.machine.js';
import { pureTransitions } from './pure-transition.js';
import { splitActions, type RawAction } from './step-actions.js';
import type { DependantDecider, TaskColumns, TaskRecord, TaskStep } from './store/store.js';

/** How many times a run may be taken over after its runner died before the task fails with `crashed`. */
export const defaultMaxRecoveries = 3;

/** A named effect the statechart asked for, with its params. */
export type TaskAction = { [K in TaskActionType]: { type: K; params: TaskActionParams[K] } }[TaskActionType];

/** A decided step plus the effects to run once it is committed. */
export interface DecidedStep {
  step: TaskStep;
  actions: TaskAction[];
}

function toStep(event: TaskMachineEvent, next: TaskSnapshot, actions: readonly RawAction[], extra: TaskColumns, now: number): DecidedStep {
  const value = next.value as PersistedTask['value'];
  const context = next.context;
  const finished = value === 'completed' || value === 'failed' || value === 'cancelled';
  const set: TaskColumns = {
    failReason: context.failReason,
    error: context.error,
    exitCode: context.exitCode,
    resumeAt: context.resumeAt,
    pendingDeps: context.pendingDeps,
    ...(value === 'running' ? {} : { owner: null, leaseUntil: null }),
    ...(finished ? { endedAt: now } : {}),
    ...extra,
  };
  const { timers, effects } = splitActions<TaskAction>('task', actions, now);
  return { step: { event: event.type, snapshot: { value, context }, set, timers }, actions: effects };
}

const taskTransitions = pureTransitions(taskMachine);

/** The step that creates a task: `queued`, then at once `waiting`/`ready` (or `failed` when a dependency already failed). */
export function decideSubmit(
  task: Pick<TaskRecord, 'timeoutMs' | 'startDelayMs'>,
  pendingDeps: number,
  failedDependency: string | null,
  now: number,
  maxRecoveries = defaultMaxRecoveries,
): TaskStep {
  const event: TaskMachineEvent = failedDependency ? { type: 'DEPENDENCY_FAILED', dependencyId: failedDependency } : { type: 'SUBMIT' };
  const [initial] = taskTransitions.initialTransition({ pendingDeps, maxRecoveries, timeoutMs: task.timeoutMs, startDelayMs: task.startDelayMs });
  const [next, actions] = taskTransitions.transition(initial, event);
  return toStep(event, next, actions as readonly RawAction[], {}, now).step;
}

/**
 * Restore the task's statechart from its row. Limits that snapshots written before they were part of the
 * context lack are taken from the row's own columns.
 */
export function taskSnapshotOf(task: TaskRecord): TaskSnapshot {
  const persisted = task.snapshot;
  const context = { ...persisted.context, timeoutMs: persisted.context.timeoutMs ?? task.timeoutMs, startDelayMs: persisted.context.startDelayMs ?? task.startDelayMs };
  return taskMachine.resolveState({ value: persisted.value, context });
}

/**
 * Decide one event for a task; null when its statechart does not accept the event in its current state. A
 * snapshot that cannot be restored throws (the caller decides what a poisoned task means for it).
 */
export function decideTaskEvent(task: TaskRecord, event: TaskMachineEvent, now: number, extra: TaskColumns = {}): DecidedStep | null {
  const snapshot = taskSnapshotOf(task);
  if (!taskStepAccepted(snapshot, event)) return null;
  const [next, actions] = taskTransitions.transition(snapshot, event);
  return toStep(event, next, actions as readonly RawAction[], extra, now);
}

/** How dependants learn of a dependency's end, inside the finishing transaction (DESIGN §5). */
export function dependantDecider(now: number): DependantDecider {
  return (dependant, dependencyId, outcome, rootTaskId) => {
    const event: TaskMachineEvent =
      outcome === 'completed' ? { type: 'DEPENDENCY_COMPLETED', dependencyId } : { type: 'DEPENDENCY_FAILED', dependencyId, rootTaskId };
    return decideTaskEvent(dependant, event, now)?.step ?? null;
  };
}
