/**
 * Agent runs of one node: what its worker slots invoke. A run is registered when its claim commits (the
 * `startAgent` effect) and forgotten when its end is committed or its agent was stopped; that registry is the
 * node's only run state besides its statecharts, and it is what the node renews leases for. A run's end
 * becomes one task event, committed fenced by owner + attempt through the task's step path.
 */
import type { AnyEventObject } from 'xstate';
import type { CancelRunEvent, HandBackInput, RunAgentInput, SettleInput } from '../actors/worker-slot.machine.js';
import type { Clock } from './clock.js';
import { failedToStart, type LaunchPlan } from './launch-plan.js';
import type { Logger } from './logger.js';
import type { AgentPool, LaunchHandle } from './pool/agent-pool.js';
import { ChildCommand, type RunOutcome } from './pool/protocol.js';
import { removeRunDir } from './pool/run-files.js';
import { commitOutcome, runEndOf } from './run-outcome.js';
import type { Store, TaskRecord } from './store/store.js';
import type { TaskActors } from './task-actors.js';

/** What a slot's run reports when it ends: the launcher's outcome, or the pool thread died under it. */
export type RunReport = { outcome: RunOutcome } | { threadFailed: string };

/** One run of this node. */
interface LocalRun {
  attempt: number;
  launch: LaunchHandle | null;
}

/** What agent runs need. */
export interface AgentRunsDeps {
  store: Store;
  actors: TaskActors;
  pool: AgentPool;
  clock: Clock;
  nodeId: string;
  /** Where runs' files are (removed once a run's end is committed). */
  logDir: string;
  log: Logger;
  /** A run's agent is gone: called before the step that ends or hands back the run (ships the rest of its output). */
  agentGone?: (taskId: string) => Promise<void>;
}

/** The agent runs of one node. */
export class AgentRuns {
  readonly #runs = new Map<string, LocalRun>();
  /** Writes started from launcher callbacks (and run directories being removed), which shutdown waits for before it closes the store. */
  readonly #writes = new Set<Promise<unknown>>();

  constructor(private readonly deps: AgentRunsDeps) {}

  /** Resolves once every write started from a launcher callback has finished. */
  async idle(): Promise<void> {
    await Promise.all(this.#writes);
  }

  #track(write: Promise<unknown>, what: string, taskId: string): void {
    const tracked = write.catch((error: unknown) => this.deps.log.warn(`could not ${what}`, { task: taskId, error: String(error) }));
    this.#writes.add(tracked);
    void tracked.finally(() => this.#writes.delete(tracked));
  }

  /** The claim of attempt `attempt` committed: this node runs it now. */
  register(taskId: string, attempt: number): void {
    this.#runs.set(taskId, { attempt, launch: null });
  }

  /** Whether this node runs attempt `attempt` of the task. */
  has(taskId: string, attempt: number): boolean {
    return this.#runs.get(taskId)?.attempt === attempt;
  }

  /** The runs of this node, as `{ id, attempt }`. */
  list(): Array<{ id: string; attempt: number }> {
    return [...this.#runs].map(([id, run]) => ({ id, attempt: run.attempt }));
  }

  get size(): number {
    return this.#runs.size;
  }

  /** Forget a run, unless the task's entry is already a newer attempt. */
  forget(taskId: string, attempt: number): void {
    if (this.#runs.get(taskId)?.attempt === attempt) this.#runs.delete(taskId);
  }

  /**
   * Runs this node had before a query of its owned runs that the query no longer shows: cancelled, timed out
   * or taken over elsewhere. Runs registered after `before` was taken are not judged by the query.
   */
  revoked(before: ReadonlyArray<{ id: string; attempt: number }>, owned: ReadonlyArray<{ id: string; attempt: number }>): Array<{ id: string; attempt: number }> {
    const still = new Set(owned.map((run) => `${run.id}#${run.attempt}`));
    return before.filter((run) => !still.has(`${run.id}#${run.attempt}`) && this.has(run.id, run.attempt));
  }

  /** The slot's `runAgent` actor: launch on the pool, report the pid and session, kill on CANCEL or when the slot leaves the run. */
  runAgent(input: RunAgentInput, sendBack: (event: AnyEventObject) => void, receive: (listener: (event: AnyEventObject) => void) => void): () => void {
    const plan = input.launch as LaunchPlan;
    if ('error' in plan) {
      queueMicrotask(() => sendBack({ type: 'AGENT_EXITED', outcome: { outcome: failedToStart(plan.error) } satisfies RunReport }));
      return () => undefined;
    }
    const { store } = this.deps;
    let finished = false;
    let sessionRecorded = false;
    const handle = this.deps.pool.launch(plan.request, (message) => {
      if (message.cmd === ChildCommand.Progress && message.value.sessionId && !sessionRecorded) {
        // Once the agent has reported its session, an interrupted run can be resumed in it.
        sessionRecorded = true;
        this.#track(store.recordRunSession(input.taskId, input.attempt, message.value.sessionId), 'record agent session', input.taskId);
      }
      if (message.cmd !== ChildCommand.Started) return;
      const { pid, pidStartTime } = message.value;
      this.#track(store.recordRunProcess(input.taskId, input.attempt, { pid, pidStart: pidStartTime, sessionId: null }), 'record agent pid', input.taskId);
      sendBack({ type: 'AGENT_STARTED', pid });
    });
    const run = this.#runs.get(input.taskId);
    if (run?.attempt === input.attempt) run.launch = handle;
    receive((event) => {
      if (event.type === 'CANCEL') handle.cancel((event as CancelRunEvent).reason);
    });
    handle.done.then(
      (outcome) => {
        finished = true;
        // A run stopped on purpose (revoked, fenced, shut down) has nothing to settle; its agent is gone now, so
        // its run row ends (a no-op when the step that took it already ended it).
        if (outcome.end === 'cancelled') {
          this.forget(input.taskId, input.attempt);
          this.#removeFiles(input.taskId, input.attempt);
          if (this.deps.agentGone) this.#track(this.deps.agentGone(input.taskId), 'ship the output of a stopped run', input.taskId);
          this.#track(store.endRun(input.taskId, input.attempt, 'cancelled', this.deps.clock.now()), 'end a stopped run', input.taskId);
        }
        sendBack({ type: 'AGENT_EXITED', outcome: { outcome } satisfies RunReport });
      },
      (error: unknown) => {
        finished = true;
        sendBack({ type: 'AGENT_EXITED', outcome: { threadFailed: String(error) } satisfies RunReport });
      },
    );
    return () => {
      if (!finished) handle.cancel('run stopped by the runner');
    };
  }

  /** The slot's `settle` actor: commit how the run ended, fenced by owner + attempt, dependants in the same commit. */
  async settle(input: SettleInput): Promise<void> {
    const report = input.outcome.kind === 'exited' ? (input.outcome.detail as RunReport) : { threadFailed: String(input.outcome.detail) };
    try {
      if ('threadFailed' in report) {
        // The launcher's thread died, not the agent (which its group kill took down): the task goes back to
        // the queue as an interrupted run instead of failing for something it did not do.
        this.deps.log.error('agent pool thread failed under a run; handing the task back', { task: input.taskId, error: report.threadFailed });
        await this.#release(input.taskId, input.attempt, `pool thread failed: ${report.threadFailed}`, 'lost');
        return;
      }
      const { outcome } = report;
      if (outcome.end === 'lost') {
        this.deps.log.warn('the run ended without an outcome (its agent host was killed); handing the task back', { task: input.taskId, error: outcome.error });
        await this.#release(input.taskId, input.attempt, outcome.error ?? 'run lost', 'lost');
        return;
      }
      await this.deps.agentGone?.(input.taskId);
      const result = await commitOutcome(this.deps.actors, this.deps.clock.now(), input.taskId, this.#owned(input.attempt), outcome);
      if (!result) return;
      // Committed, or no longer this node's to commit: the outcome in the run's files is not needed any more.
      if (result.committed || result.reason !== 'contended') this.#removeFiles(input.taskId, input.attempt);
      if (result.committed) {
        this.deps.log.info('task settled', { task: input.taskId, attempt: input.attempt, state: result.task.state, reason: result.task.failReason ?? undefined });
      } else {
        this.deps.log.info('run ended after the task moved on; outcome dropped', { task: input.taskId, attempt: input.attempt, state: result.task?.state });
      }
    } finally {
      this.forget(input.taskId, input.attempt);
    }
  }

  /** The slot's `handBack` actor (shutdown): once the agent is gone, give the task back to the queue. */
  async handBack(input: HandBackInput): Promise<void> {
    try {
      // Not before the agent is gone: another runner may claim the task the moment it is back in the queue.
      const outcome = await this.#runs.get(input.taskId)?.launch?.done.catch(() => undefined);
      await this.#release(input.taskId, input.attempt, 'runner stopping', 'cancelled', outcome);
    } finally {
      this.forget(input.taskId, input.attempt);
    }
  }

  /** RELEASE: the task goes back to the queue as an interrupted run; `end` is what its run row says. */
  async #release(taskId: string, attempt: number, detail: string, end: 'cancelled' | 'lost', outcome?: RunOutcome): Promise<void> {
    // An agent that got as far as a result before it was stopped has cost money: that goes on the run too.
    const runEnd = runEndOf(end, outcome);
    await this.deps.agentGone?.(taskId);
    const result = await this.deps.actors.send(taskId, { type: 'RELEASE' }, { expect: this.#owned(attempt), detail, runEnd });
    if (result.committed || result.reason !== 'contended') this.#removeFiles(taskId, attempt);
    if (result.committed) this.deps.log.info('task handed back', { task: taskId, attempt });
  }

  /** Tracked like a write, so a shutdown does not leave a directory half removed. */
  #removeFiles(taskId: string, attempt: number): void {
    // On the loop's next turn: the slot this run freed claims its next task and launches it first. The unlinks
    // sat between the settle's commit and that claim: 0.35 ms of it at p50 and ~3 ms at p90 on a busy ext4.
    const removed = new Promise((resolve) => setImmediate(resolve)).then(() => removeRunDir(this.deps.logDir, taskId, attempt));
    this.#track(removed, 'remove a run directory', taskId);
  }

  #owned(attempt: number): (task: TaskRecord) => boolean {
    return (task) => task.state === 'running' && task.owner === this.deps.nodeId && task.attempt === attempt;
  }
}
