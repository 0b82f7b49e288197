/**
 * Decide: the pure half of every task step (DESIGN §1). Loads a task's persisted statechart, applies one event
 * with XState's `transition()`, and turns the next snapshot into a `TaskStep` for the store to commit. Nothing
 * here writes or runs anything; callers commit the step and only then act on the returned actions.
 */
import { initialTransition, transition } from 'xstate';
import { taskMachine, taskStateOf, taskStepAccepted, type TaskEvent as TaskMachineEvent } from '../actors/task.machine.js';
import type { DependantDecider, TaskColumns, TaskRecord, TaskStep } from './store/store.js';

/** How many times a run may be taken over after its runner died before the task fails with `crashed`. */
export const defaultMaxRecoveries = 3;

/** A named effect the statechart asked for, to run after the commit. */
export interface TaskAction {
  type: string;
  params: Record<string, unknown>;
}

/** A decided step plus the effects to run once it is committed. */
export interface DecidedStep {
  step: TaskStep;
  actions: TaskAction[];
}

type TaskSnapshot = ReturnType<typeof taskMachine.resolveState>;

function toStep(event: string, next: TaskSnapshot, extra: TaskColumns, now: number): TaskStep {
  const value = taskStateOf(next);
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
  return { event, snapshot: { value, context }, set };
}

function toActions(actions: ReadonlyArray<{ type: string; params?: unknown }>): TaskAction[] {
  return actions
    .filter((action) => !action.type.startsWith('xstate.'))
    .map((action) => ({ type: action.type, params: (action.params ?? {}) as Record<string, unknown> }));
}

/** When a task that became ready may be claimed: a pipeline step waits its delay after its dependencies. */
function readyColumns(startDelayMs: number, now: number): TaskColumns {
  return { runAfter: startDelayMs > 0 ? now + startDelayMs : null };
}

/** The step that creates a task: `queued`, then at once `waiting`/`ready` (or `failed` when a dependency already failed). */
export function decideSubmit(
  pendingDeps: number,
  failedDependency: string | null,
  now: number,
  options: { startDelayMs?: number; maxRecoveries?: number } = {},
): TaskStep {
  const [initial] = initialTransition(taskMachine, { pendingDeps, maxRecoveries: options.maxRecoveries ?? defaultMaxRecoveries });
  const event: TaskMachineEvent = failedDependency ? { type: 'DEPENDENCY_FAILED', dependencyId: failedDependency } : { type: 'SUBMIT' };
  const [next] = transition(taskMachine, initial, event);
  return toStep(event.type, next, next.value === 'ready' ? readyColumns(options.startDelayMs ?? 0, now) : {}, now);
}

/** Restore the task's statechart from its row. */
export function taskSnapshotOf(task: TaskRecord): TaskSnapshot {
  // Only the persisted value and context, whatever else the row's JSON holds.
  return taskMachine.resolveState({ value: task.snapshot.value, context: task.snapshot.context });
}

/** Decide one event for a task; null when its statechart does not accept the event in its current state. */
export function decideTaskEvent(task: TaskRecord, event: TaskMachineEvent, now: number, extra: TaskColumns = {}): DecidedStep | null {
  const snapshot = taskSnapshotOf(task);
  if (!taskStepAccepted(snapshot, event)) return null;
  const [next, actions] = transition(taskMachine, snapshot, event);
  const becameReady = next.value === 'ready' && snapshot.value === 'waiting';
  const step = toStep(event.type, next, becameReady ? { ...readyColumns(task.startDelayMs, now), ...extra } : extra, now);
  return { step, actions: toActions(actions as ReadonlyArray<{ type: string; params?: unknown }>) };
}

/** How dependants learn of a dependency's end, inside the finishing transaction (DESIGN §5). */
export function dependantDecider(now: number): DependantDecider {
  return (dependant, dependencyId, outcome, rootTaskId) => {
    const event: TaskMachineEvent =
      outcome === 'completed' ? { type: 'DEPENDENCY_COMPLETED', dependencyId } : { type: 'DEPENDENCY_FAILED', dependencyId, rootTaskId };
    return decideTaskEvent(dependant, event, now)?.step ?? null;
  };
}
