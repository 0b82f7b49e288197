/**
 * The one step path of durable task actors (DESIGN §1): load → decide with XState's `transition()` → one
 * fenced transaction that commits the row, the snapshot, the event, the timers and the cascade to dependants →
 * run the returned actions through one effect table. The statechart's actions are the only source of effects:
 * every action type has exactly one handler here, per kind of process (a runner, a front door).
 *
 * Each task has one mailbox per process, so two events for one task never interleave in this process; across
 * processes the fence (state, owner, attempt) makes a stale decision commit nothing, and the step is decided
 * again on the row as it is now.
 */
import type { TaskActionParams, TaskActionType, TaskEvent } from '../actors/task.machine.js';
import type { GitState } from './checkpoint.js';
import type { Clock } from './clock.js';
import type { EventBus } from './events.js';
import type { Logger } from './logger.js';
import { ifCommitUnknown, isCommitUnknown } from './errors.js';
import { Mailboxes } from './mailboxes.js';
import type { Checkpoint, EngineEvent, RunEnd, Store, TaskClaim, TaskColumns, TaskFence, TaskRecord, TaskStep, UsageHold } from './store/store.js';
import { decideTaskEvent, dependantDecider, type DecidedStep, type TaskAction } from './task-steps.js';

/** What an effect handler is told about the committed step that asked for it. */
export interface EffectContext {
  taskId: string;
  /** The task as the step committed it. */
  task: TaskRecord;
  step: TaskStep;
  now: number;
  /** What the agent host saw when the agent ended, when this step commits a run's outcome. */
  runReport?: RunReport | undefined;
}

/**
 * What the agent host reports of a run at its end that a checkpoint needs: the git state of its directory and
 * the last lines of its output, so the step between a run's end and the next claim spawns no git and reads no
 * log file of its own.
 */
export interface RunReport {
  git?: GitState | undefined;
  lastLines?: string[] | undefined;
}

/** What commit-phase effects add to the step's own transaction. */
export interface CommitAdditions {
  checkpoint?: Checkpoint;
  usageHold?: UsageHold;
}

/**
 * How one action type is carried out. `commit` effects are prepared before the commit and written in the step's
 * own transaction (a checkpoint is durable exactly when the final state is); `act` effects run after it.
 */
export type EffectHandler<K extends TaskActionType> =
  | { phase: 'commit'; prepare(params: TaskActionParams[K], context: Omit<EffectContext, 'task'> & { before: TaskRecord }): Promise<CommitAdditions> }
  | { phase: 'act'; run(params: TaskActionParams[K], context: EffectContext): unknown };

/** The effect table: one handler for every action the task machine can return. */
export type TaskEffects = { [K in TaskActionType]: EffectHandler<K> };

/** How a step ended. */
export type StepResult =
  | { committed: true; task: TaskRecord; events: EngineEvent[]; results: Map<TaskActionType, unknown> }
  | { committed: false; reason: 'gone' | 'moved-on' | 'refused' | 'poisoned' | 'contended'; task: TaskRecord | null; error?: string };

/** How one event is meant to reach its task. */
export interface StepOptions {
  /** The task the event was meant for; when the row no longer matches (another attempt, another owner), the event is dropped. */
  expect?: (task: TaskRecord) => boolean;
  /** Domain columns the step sets besides what the statechart decides (cost, session id of a run). */
  extra?: TaskColumns;
  /** A line for the history, e.g. why a lease was lost. */
  detail?: string;
  /** How the run ended, written to its run row in the same commit. */
  runEnd?: RunEnd;
  /** The durable timer this event comes from: deleted in the same commit, so it fires once. */
  timerId?: number;
  /** What the agent host saw when the agent ended (its checkpoint needs no git and no log read of its own). */
  runReport?: RunReport | undefined;
}

/** What a node claims with; `extra` adds columns to the CLAIM step (the pre-assigned agent session). */
export interface ClaimRequest extends Omit<TaskClaim, 'now' | 'skip'> {
  extra(candidate: TaskRecord): TaskColumns;
}

/** A decision that cannot be restored from its row (a corrupt snapshot) is reported, never thrown into a claim. */
function safeDecide(task: TaskRecord, event: TaskEvent, now: number, extra: TaskColumns): DecidedStep | null | Error {
  try {
    return decideTaskEvent(task, event, now, extra);
  } catch (error) {
    return error instanceof Error ? error : new Error(String(error));
  }
}

/** The task as a committed step leaves it. */
function afterStep(task: TaskRecord, step: TaskStep): TaskRecord {
  return { ...task, ...step.set, state: step.snapshot.value, snapshot: step.snapshot } as TaskRecord;
}

/** The fence of every step: exactly the row the decision was made on (state, and for a run its owner and attempt). */
function rowFence(task: TaskRecord): TaskFence {
  return task.state === 'running' ? { state: task.state, owner: task.owner ?? undefined, attempt: task.attempt } : { state: task.state };
}

/** Task actors of one process: their mailboxes, their steps and their effects. */
export class TaskActors {
  readonly #mailboxes = new Mailboxes();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** The node committing steps (null for a front door). */
    private readonly nodeId: string | null,
    private readonly effects: TaskEffects,
    private readonly bus: EventBus,
    private readonly log: Logger,
  ) {}

  /** Deliver `event` to task `taskId` through its mailbox. */
  send(taskId: string, event: TaskEvent, options: StepOptions = {}): Promise<StepResult> {
    return this.#mailboxes.run(taskId, () => this.#step(taskId, event, options));
  }

  /** Wait until every step queued so far has finished (shutdown). */
  idle(): Promise<void> {
    return this.#mailboxes.idle();
  }

  async #step(taskId: string, event: TaskEvent, options: StepOptions): Promise<StepResult> {
    for (let tries = 0; tries < 5; tries++) {
      const task = await this.store.getTask(taskId);
      if (!task) return { committed: false, reason: 'gone', task: null };
      if (options.expect && !options.expect(task)) return this.#drop(options, { committed: false, reason: 'moved-on', task });
      const now = this.clock.now();
      const decided = safeDecide(task, event, now, options.extra ?? {});
      if (decided instanceof Error) {
        this.log.error('task snapshot cannot be restored; event dropped', { task: taskId, event: event.type, error: decided.message });
        return this.#drop(options, { committed: false, reason: 'poisoned', task, error: decided.message });
      }
      if (!decided) return this.#drop(options, { committed: false, reason: 'refused', task });
      if (options.detail !== undefined) decided.step.detail = options.detail;
      const additions = await this.#prepare(decided, task, now, options.runReport);
      let events: EngineEvent[] | null;
      try {
        events = await this.store.commitTaskStep(taskId, rowFence(task), decided.step, {
          now,
          nodeId: this.nodeId,
          ...(options.runEnd ? { runEnd: options.runEnd } : {}),
          ...(options.timerId !== undefined ? { timerId: options.timerId } : {}),
          ...additions,
          decideDependant: dependantDecider(now),
        });
      } catch (error) {
        // A COMMIT whose answer was lost may have been applied. A step that leaves its state cannot be applied
        // twice (its fence is that state, and a run's owner and attempt), so a caller that judges a task that
        // moved on itself (`expect`: a runner settling or handing back its run) looks again rather than give up:
        // a run's end lost this way would otherwise run the task again. A step that stays in its state (a
        // dependency counted down) could apply twice, and a front door's user is told it may not have been saved.
        const lookAgain = isCommitUnknown(error) && options.expect !== undefined && decided.step.snapshot.value !== task.state;
        if (!lookAgain) throw error;
        this.log.warn('the answer to a commit was lost; reading the task again to see whether it was applied', { task: taskId, event: event.type });
        continue;
      }
      if (!events) {
        // A timer another node already delivered is gone: nothing to decide again.
        if (options.timerId !== undefined && !(await this.store.timerExists(options.timerId))) return { committed: false, reason: 'moved-on', task };
        continue;
      }
      return this.#afterCommit(taskId, afterStep(task, decided.step), decided, events, now);
    }
    return { committed: false, reason: 'contended', task: await this.store.getTask(taskId) };
  }

  /**
   * Claim the best ready task for this node in one write (DESIGN §3), skipping tasks whose snapshot cannot be
   * restored so one corrupt row never blocks the queue. The committed CLAIM's actions run like any step's.
   */
  async claim(request: ClaimRequest, poisoned: Set<string>): Promise<StepResult | null> {
    const now = this.clock.now();
    let decided: DecidedStep | null = null;
    let chosen: TaskRecord | null = null;
    const { extra, ...claim } = request;
    const claiming = this.store.claimNextTask({ ...claim, now, skip: poisoned }, (candidate) => {
      const decision = safeDecide(candidate, { type: 'CLAIM', node: request.nodeId }, now, extra(candidate));
      if (decision instanceof Error || decision === null) {
        poisoned.add(candidate.id);
        this.log.error('ready task cannot be claimed; skipped until this runner restarts', {
          task: candidate.id,
          error: decision instanceof Error ? decision.message : 'its statechart refuses CLAIM',
        });
        return null;
      }
      decided = decision;
      chosen = candidate;
      return decision.step;
    });
    const claimed = await ifCommitUnknown(claiming, () => this.#claimedAfterAll(chosen, request.nodeId, now));
    if (!claimed || !decided) return null;
    return this.#afterCommit(claimed.task.id, claimed.task, decided, claimed.events, now);
  }

  /**
   * A claim whose COMMIT went unanswered (a server that stopped at that moment): the task is read again. Claimed
   * by this node, it is run now rather than left to its lease's lapse and run a second time; otherwise nothing
   * was claimed, and the task is still ready for whoever claims it (as when no candidate was chosen at all).
   */
  async #claimedAfterAll(candidate: TaskRecord | null, nodeId: string, now: number): Promise<{ task: TaskRecord; events: EngineEvent[] } | null> {
    if (!candidate) return null;
    this.log.info('the answer to a claim was lost; reading the task again to see whether it was claimed', { task: candidate.id });
    const task = await this.store.getTask(candidate.id);
    if (!task || task.state !== 'running' || task.owner !== nodeId || task.attempt !== candidate.attempt + 1) return null;
    const events = await this.store.eventsAfter(0, { actorId: task.id, sinceAt: now }, 100);
    return { task, events: events.filter((event) => event.type === 'task:running' && event.attempt === task.attempt) };
  }

  async #prepare(decided: DecidedStep, before: TaskRecord, now: number, runReport?: RunReport): Promise<CommitAdditions> {
    let additions: CommitAdditions = {};
    for (const action of decided.actions) {
      const handler = this.effects[action.type] as EffectHandler<typeof action.type>;
      if (handler.phase !== 'commit') continue;
      additions = { ...additions, ...(await handler.prepare(action.params as never, { taskId: before.id, before, step: decided.step, now, runReport })) };
    }
    return additions;
  }

  #afterCommit(taskId: string, task: TaskRecord, decided: DecidedStep, events: EngineEvent[], now: number): StepResult {
    this.bus.publish(events);
    const results = new Map<TaskActionType, unknown>();
    for (const action of decided.actions) results.set(action.type, this.#act(action, { taskId, task, step: decided.step, now }));
    return { committed: true, task, events, results };
  }

  #act(action: TaskAction, context: EffectContext): unknown {
    const handler = this.effects[action.type] as EffectHandler<typeof action.type>;
    if (handler.phase !== 'act') return undefined;
    try {
      const result = handler.run(action.params as never, context);
      if (result instanceof Promise) {
        return result.catch((error: unknown) => {
          this.log.error('effect failed', { task: context.taskId, effect: action.type, error: String(error) });
          return undefined;
        });
      }
      return result;
    } catch (error) {
      // The step is committed; a failed effect is redone by recovery (a run without an agent is swept).
      this.log.error('effect failed', { task: context.taskId, effect: action.type, error: String(error) });
      return undefined;
    }
  }

  /** A refused or stale timer event is deleted, so it does not fire again. */
  async #drop(options: StepOptions, result: StepResult): Promise<StepResult> {
    if (options.timerId !== undefined) await this.store.dropTimer(options.timerId);
    return result;
  }
}
