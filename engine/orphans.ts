/**
 * Runs whose runner died on this host, as a front door sees them (DESIGN §10, SPEC §2). A front door never
 * follows an agent, but it can do what needs no following, so no view lies about a task:
 * - the agent ended and left its outcome: commit it, as the runner would have;
 * - the agent is gone without one: hand the task back (LEASE_LOST), to be resumed;
 * - the agent still runs: say so, and make sure a runner comes to adopt it.
 * And a cancel of a task whose runner died here kills the agent's process group itself.
 */
import type { Clock } from './clock.js';
import { runMarker, runMarkerVariable } from './launch-plan.js';
import type { Logger } from './logger.js';
import { readOutcome, removeRunDir, runDirOf, runLiveness } from './pool/run-files.js';
import { isProcessAlive, killGroupById, killProcessGroup, localHostIdentity, processGroupsWithEnv } from './process-info.js';
import { commitOutcome } from './run-outcome.js';
import type { NodeRecord, Store, TaskRecord, TaskRun } from './store/store.js';
import type { TaskActors } from './task-actors.js';

/** Who stops the agent of a task cancelled while it ran. */
export type AgentStop = 'runner' | 'here' | 'requested';

/** A running task's run, and whether the runner that owns it is a dead process of this host. */
interface OwnedRun {
  run: TaskRun;
  runnerDeadHere: boolean;
}

/** What a look at running tasks found. */
export interface Reconciled {
  /** Tasks this look moved on (an outcome committed, or handed back): read them again. */
  changed: Set<string>;
  /** Tasks whose runner died but whose agent still runs: a runner must come to adopt them. */
  adrift: Set<string>;
}

/** Orphaned runs of this host, for a front door. */
export class LocalOrphans {
  /** Wired after construction: the actors' effect table needs this object first. */
  actors!: TaskActors;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly logDir: string,
    private readonly killGraceMs: number,
    private readonly log: Logger,
  ) {}

  async #ownedRun(task: TaskRecord, nodes: readonly NodeRecord[]): Promise<OwnedRun | null> {
    const run = (await this.store.taskRuns(task.id)).find((candidate) => candidate.attempt === task.attempt);
    if (!run || run.endedAt !== null) return null;
    if (run.host !== localHostIdentity()) return { run, runnerDeadHere: false };
    const node = nodes.find((candidate) => candidate.id === task.owner);
    return { run, runnerDeadHere: !node || !isProcessAlive(node.pid, node.pidStart) };
  }

  /** Commit what can be committed of running tasks whose runner died on this host; report the rest. */
  async reconcile(tasks: readonly TaskRecord[]): Promise<Reconciled> {
    const found: Reconciled = { changed: new Set(), adrift: new Set() };
    const running = tasks.filter((task) => task.state === 'running');
    if (running.length === 0) return found;
    const nodes = await this.store.listNodes(localHostIdentity());
    for (const task of running) {
      const owned = await this.#ownedRun(task, nodes);
      if (!owned?.runnerDeadHere) continue;
      const { run } = owned;
      const expect = (now: TaskRecord): boolean => now.state === 'running' && now.owner === task.owner && now.attempt === task.attempt;
      const runDir = runDirOf(this.logDir, task.id, task.attempt);
      const outcome = readOutcome(runDir);
      const liveness = outcome ? 'ended' : runLiveness(runDir, run.pid !== null ? { pid: run.pid, pidStart: run.pidStart } : null);
      if (outcome) {
        const result = await commitOutcome(this.actors, this.clock.now(), task.id, expect, outcome);
        if (result?.committed) this.log.info('committed the outcome a dead runner left', { task: task.id, attempt: task.attempt });
        if (!result || result.committed || result.reason !== 'contended') await removeRunDir(this.logDir, task.id, task.attempt);
        found.changed.add(task.id);
      } else if (liveness !== 'gone') {
        // Its agent host still runs it (or is starting it): a runner must come and follow it.
        found.adrift.add(task.id);
      } else {
        // Gone without a word: leftovers of its group go, and the task is resumed by the next runner.
        await this.#killRun(run);
        const result = await this.actors.send(task.id, { type: 'LEASE_LOST' }, {
          expect,
          detail: `runner ${task.owner} died and its agent is gone; found by a front door`,
          runEnd: { outcome: 'lost', exitCode: null, outputBytes: 0, costUsd: null, sessionId: null },
        });
        if (result.committed) await removeRunDir(this.logDir, task.id, task.attempt);
        found.changed.add(task.id);
      }
    }
    return found;
  }

  /** Stop the agent of a task just cancelled while it ran: its runner does it, or this front door when that runner died here. */
  async stopAgent(taskId: string, attempt: number, owner: string | null): Promise<AgentStop> {
    const nodes = await this.store.listNodes(localHostIdentity());
    const run = (await this.store.taskRuns(taskId)).find((candidate) => candidate.attempt === attempt);
    if (!run || run.host !== localHostIdentity()) return 'requested';
    // The run row names the node that holds the run now (an adoption moves it); the statechart's owner is the
    // one that claimed it.
    const node = nodes.find((candidate) => candidate.id === run.nodeId) ?? nodes.find((candidate) => candidate.id === owner);
    if (node && isProcessAlive(node.pid, node.pidStart)) return 'runner';
    await this.#killRun(run);
    await this.store.endRun(taskId, attempt, 'cancelled', this.clock.now());
    await removeRunDir(this.logDir, taskId, attempt);
    return 'here';
  }

  /** Kill what is left of a run: its agent's process group (pid and start time checked), and its marked processes. */
  async #killRun(run: TaskRun): Promise<void> {
    if (run.pid !== null) await killProcessGroup(run.pid, run.pidStart, this.killGraceMs);
    for (const group of processGroupsWithEnv(runMarkerVariable, runMarker(run.taskId, run.attempt))) await killGroupById(group, this.killGraceMs);
  }
}
