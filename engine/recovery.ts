/**
 * The recovery sweep (DESIGN §4), over every run whose row has not ended. A run is recovered when its node is
 * gone — a process on this host that no longer exists, or a node whose lease lapsed — or when it is this
 * node's own but no slot runs it any more. A run that is still its task's live run is first taken over (a
 * fenced write, so a stalled owner that wakes can neither renew nor settle it), then its agent is killed if it
 * runs here, and only then does LEASE_LOST let the statechart requeue the task or fail it as `crashed`. A run
 * whose task moved on (cancelled while its runner was dead) just has its agent killed and its row ended.
 * Lease times are compared with the database's clock, so hosts with skewed clocks agree.
 *
 * A run whose runner died on this host costs no agent work (DESIGN §10): if its agent host still runs it, the
 * run is adopted (this node follows the same files); if it ended and the host left its outcome, the outcome is
 * collected and committed as if the runner had lived. Only a run whose agent is gone without an outcome, or
 * whose host is elsewhere, is lost and resumed.
 */
import type { AgentRuns } from './agent-runs.js';
import type { Logger } from './logger.js';
import { runMarker, runMarkerVariable } from './launch-plan.js';
import { readJsonIfExists, readOutcome, removeRunDir, runDirOf, runFiles, runLiveness, type ProcessRef, type ShimStarted } from './pool/run-files.js';
import type { RunOutcome } from './pool/protocol.js';
import { isProcessAlive, killGroupById, killProcessGroup, processGroupsWithEnv, processStartTime } from './process-info.js';
import type { OpenRun, Store } from './store/store.js';
import type { TaskActors } from './task-actors.js';

/** What the sweep needs. */
export interface RecoveryDeps {
  store: Store;
  actors: TaskActors;
  runs: AgentRuns;
  nodeId: string;
  host: string;
  leaseMs: number;
  killGraceMs: number;
  /**
   * How long after its lease lapsed a run of another host may be taken over: this host cannot see that host's
   * processes, so it waits until the run's agent host has ended its agent (it does, once no runner touched its
   * keepalive for a lease period; see ShimSpec.keepaliveMs).
   */
  otherHostGraceMs: number;
  logDir: string;
  log: Logger;
  /** Follow the live run this node just adopted. */
  adopt(run: { taskId: string; attempt: number; pid: number; pidStart: number | null }): void;
  /** Commit the outcome a dead runner's run left, as this node's own run's. */
  collect(run: { taskId: string; attempt: number }, outcome: RunOutcome): Promise<void>;
}

/**
 * Adopt or collect a run of a runner that died on this host. `gone`: its agent is gone without an outcome.
 * `later`: it was being started when its runner died; the next sweep sees whether it did.
 */
async function rescue(deps: RecoveryDeps, run: OpenRun): Promise<'rescued' | 'later' | 'gone'> {
  const runDir = runDirOf(deps.logDir, run.taskId, run.attempt);
  const agent = run.pid !== null ? { pid: run.pid, pidStart: run.pidStart } : (startedAgent(runDir) ?? agentByMarker(run));
  const liveness = runLiveness(runDir, agent);
  if (liveness === 'gone') return 'gone';
  if (liveness === 'starting') return 'later';
  const adopted = await deps.store.takeOverRun({ taskId: run.taskId, attempt: run.attempt, from: run.nodeId, to: deps.nodeId, leaseMs: deps.leaseMs, requireLapsed: false });
  // Another node of this host got there first: it follows the run now.
  if (!adopted) return 'rescued';
  const outcome = readOutcome(runDir);
  if (outcome || !agent) {
    // An outcome written since the first look, or a run whose host still runs it but whose agent cannot be
    // named yet: collected, or resumed as lost, as what its files say by now.
    deps.log.warn('collected the outcome of a run whose runner died', { task: run.taskId, attempt: run.attempt, owner: run.nodeId, end: outcome?.end ?? 'lost' });
    await deps.collect(run, outcome ?? { end: 'lost', exitCode: null, signal: null, error: 'its runner died before the agent was known', result: { sawResult: false, isError: false }, outputBytes: 0, lastLines: [] });
  } else {
    deps.log.warn('adopted a live run whose runner died', { task: run.taskId, attempt: run.attempt, owner: run.nodeId, agent: agent.pid });
    deps.adopt({ taskId: run.taskId, attempt: run.attempt, pid: agent.pid, pidStart: agent.pidStart });
  }
  return 'rescued';
}

/** Kill what is left of a run's agent on this host: its recorded process group, and any process carrying its marker. */
async function killRunAgent(run: OpenRun, graceMs: number): Promise<boolean> {
  let gone = run.pid === null || (await killProcessGroup(run.pid, run.pidStart, graceMs));
  for (const group of processGroupsWithEnv(runMarkerVariable, runMarker(run.taskId, run.attempt))) {
    gone = (await killGroupById(group, graceMs)) && gone;
  }
  return gone;
}

/** The agent of a run as its host wrote it in `started.json`, if it did. */
function startedAgent(runDir: string): ProcessRef | null {
  try {
    const started = readJsonIfExists<ShimStarted>(runFiles(runDir).started);
    return started ? { pid: started.pid, pidStart: started.pidStartTime } : null;
  } catch {
    return null;
  }
}

/**
 * The agent of a run whose runner died before it recorded the agent's pid: the one process group that carries the
 * run's marker (the agent leads its group, so the group id is its pid). Null when there is none, or no single one.
 */
function agentByMarker(run: OpenRun): ProcessRef | null {
  const groups = processGroupsWithEnv(runMarkerVariable, runMarker(run.taskId, run.attempt));
  if (groups.length !== 1) return null;
  const pid = groups[0]!;
  return { pid, pidStart: processStartTime(pid) };
}

/** Run the sweep once; returns how many tasks it recovered. */
export async function recoverLapsedLeases(deps: RecoveryDeps): Promise<number> {
  const { store, nodeId, host, leaseMs, log } = deps;
  const { now, runs } = await store.openRuns();
  let recovered = 0;
  for (const run of runs) {
    const mine = run.nodeId === nodeId;
    if (mine && deps.runs.has(run.taskId, run.attempt)) continue;
    // The run row names the node that holds the run now (a takeover moves it), so a node that took a run over
    // and died before it requeued the task is judged like any other dead owner.
    const live = run.taskState === 'running' && run.taskAttempt === run.attempt && run.taskOwner === run.nodeId;
    const nodeDeadHere = run.node !== null && run.node.host === host && !isProcessAlive(run.node.pid, run.node.pidStart);
    const nodeGone = run.node === null || nodeDeadHere || now - run.node.heartbeatAt > 3 * leaseMs;
    const lapsed = run.leaseUntil !== null && run.leaseUntil + (run.host === host ? 0 : deps.otherHostGraceMs) < now;
    if (live ? !(nodeDeadHere || lapsed) : !(nodeGone || mine)) continue;
    // Only a run whose agent ran on this host can be adopted or collected: its pid and files are here.
    if (live && nodeDeadHere && run.host === host) {
      const rescued = await rescue(deps, run);
      if (rescued === 'later') continue;
      if (rescued === 'rescued') {
        recovered++;
        continue;
      }
    }
    if (live && !(await store.takeOverRun({ taskId: run.taskId, attempt: run.attempt, from: run.nodeId, to: nodeId, leaseMs, requireLapsed: !nodeDeadHere }))) continue;
    if (run.host === host && !(await killRunAgent(run, deps.killGraceMs))) {
      // Still ours (taken over, its lease running): a sweep after the lease lapses tries again.
      log.error('could not kill the agent of a lost run', { task: run.taskId, attempt: run.attempt, pid: run.pid });
      continue;
    }
    if (!live) {
      await store.endRun(run.taskId, run.attempt, 'lost', now);
      continue;
    }
    const detail = nodeDeadHere ? `runner ${run.nodeId} (pid ${run.node?.pid}) died` : mine ? `run ${run.attempt} of this runner had no slot any more` : `lease of ${run.nodeId} lapsed`;
    const result = await deps.actors.send(
      run.taskId,
      { type: 'LEASE_LOST' },
      {
        expect: (task) => task.state === 'running' && task.owner === nodeId && task.attempt === run.attempt,
        detail,
        runEnd: { outcome: 'lost', exitCode: null, outputBytes: 0, costUsd: null, sessionId: null },
      },
    );
    if (result.committed) {
      recovered++;
      await removeRunDir(deps.logDir, run.taskId, run.attempt);
      log.warn('took over a lost run', { task: run.taskId, attempt: run.attempt, owner: run.nodeId, next: result.task.state });
    }
  }
  await forgetDeadNodes(deps, now);
  return recovered;
}

/** Remove node rows of processes that are gone and own nothing any more (keeps `delegate status` honest). */
async function forgetDeadNodes(deps: RecoveryDeps, now: number): Promise<void> {
  for (const node of await deps.store.listNodes()) {
    if (node.id === deps.nodeId) continue;
    const deadHere = node.host === deps.host && !isProcessAlive(node.pid, node.pidStart);
    const silent = now - node.heartbeatAt > 3 * deps.leaseMs;
    if (!deadHere && !silent) continue;
    if ((await deps.store.ownedRuns(node.id)).length > 0) continue;
    await deps.store.removeNode(node.id);
    deps.log.info('forgot a dead node', { node: node.id, pid: node.pid, host: node.host });
  }
}
