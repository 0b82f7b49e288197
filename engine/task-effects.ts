/**
 * The effect tables: for every action the task statechart can return, what a process does about it once the
 * step is committed (DESIGN §1, act) or what it writes with the step (a checkpoint). A runner and a front door
 * differ in what they can reach: a runner owns agents and a supervisor; a front door owns neither.
 */
import type { GrowthSettledNotice, SlotAddedNotice } from '../actors/supervisor.machine.js';
import { captureGitState, checkpointLines, readLastLines } from './checkpoint.js';
import { systemClock, type Clock } from './clock.js';
import type { LaunchPlan } from './launch-plan.js';
import type { Logger } from './logger.js';
import type { LocalOrphans } from './orphans.js';
import { taskLogPaths } from './pool/protocol.js';
import type { TaskRecord } from './store/store.js';
import type { EffectHandler, TaskEffects } from './task-actors.js';

/**
 * recordCheckpoint: what the attempt left behind — the git state of its directory, the last lines of its log,
 * its error and agent session — prepared before the commit and written in it, so a finished task always has it.
 * A run's end reports its git state and the last lines its agent printed; those are the log's tail when they fill
 * the checkpoint or this is the first attempt. Otherwise (fewer lines in a later attempt, whose log also holds
 * the attempts before it and their headers) and without a report (a run handed back), the log is read.
 */
export function checkpointEffect(logDir: string): EffectHandler<'recordCheckpoint'> {
  return {
    phase: 'commit',
    async prepare(params, { before, step, now, runReport }) {
      const [git, lastLines] = await Promise.all([
        runReport?.git ?? captureGitState(before.workingDirectory),
        logTailOf(runReport?.lastLines, params.attempt) ?? readLastLines(taskLogPaths(logDir, before.id).text, checkpointLines),
      ]);
      return {
        checkpoint: {
          taskId: before.id,
          attempt: params.attempt,
          createdAt: now,
          outcome: step.snapshot.value,
          gitBranch: git.branch,
          gitSha: git.sha,
          gitDirty: git.dirty,
          lastLines,
          error: step.snapshot.context.error,
          sessionId: step.set.sessionId ?? before.sessionId,
        },
      };
    },
  };
}

/**
 * holdAgent: the usage limit is the account's, so a hold on the task's agent and this process's account is
 * written with the step that pauses the task — durable, and seen by every runner sharing the database.
 */
export function usageHoldEffect(account: string): EffectHandler<'holdAgent'> {
  return {
    phase: 'commit',
    async prepare(params, { before }) {
      return { usageHold: { agent: before.agent, account, until: params.until, limitType: params.limitType, taskId: before.id } };
    },
  };
}

/** The log's last `checkpointLines` lines, when a run's reported lines are known to be exactly that; else null. */
function logTailOf(reported: string[] | undefined, attempt: number): string[] | null {
  if (!reported) return null;
  return reported.length >= checkpointLines || attempt === 1 ? reported.slice(-checkpointLines) : null;
}

/** What a runner node reaches: its own runs, its supervisor, and the launch of claimed tasks. */
export interface RunnerEffectTargets {
  nodeId: string;
  logDir: string;
  /** Whose usage limits this runner's agents count against. */
  account: string;
  /** A claim committed: the run is this node's; build its launch for a slot. */
  startRun(task: TaskRecord, attempt: number): Promise<LaunchPlan>;
  /** Stop this node's agent of `attempt` (its slot aborts and waits for the process group to be gone). */
  revokeRun(taskId: string, attempt: number, reason: string): void;
  /** Something may be claimable now. */
  wake(): void;
}

/** The runner's effect table. */
export function runnerEffects(targets: RunnerEffectTargets): TaskEffects {
  return {
    startAgent: { phase: 'act', run: (params, { task }) => targets.startRun(task, params.attempt) },
    // Another node's agent is stopped by that node, which finds the run no longer its own (its fence fails).
    killAgent: {
      phase: 'act',
      run: (params, { taskId, step }) => {
        if (params.owner === targets.nodeId) targets.revokeRun(taskId, params.attempt, step.event === 'TIMEOUT' ? 'timed out' : step.event.toLowerCase());
      },
    },
    notifyDependants: { phase: 'act', run: () => targets.wake() },
    recordCheckpoint: checkpointEffect(targets.logDir),
    holdAgent: usageHoldEffect(targets.account),
  };
}

/**
 * A front door's effect table. It never claims. The agent of a task it cancels is stopped by its runner, which
 * sees that its run is no longer its own — or by the front door itself when that runner died on this host;
 * runners see readied dependants through the database.
 */
export function frontDoorEffects(logDir: string, orphans: Pick<LocalOrphans, 'stopAgent'>, account: string): TaskEffects {
  return {
    startAgent: {
      phase: 'act',
      run: () => {
        throw new Error('internal: a front door committed a CLAIM');
      },
    },
    killAgent: { phase: 'act', run: (params, { taskId }) => orphans.stopAgent(taskId, params.attempt, params.owner) },
    notifyDependants: { phase: 'act', run: () => undefined },
    recordCheckpoint: checkpointEffect(logDir),
    // A front door commits a usage limit when it collects the run of a runner that died on its host.
    holdAgent: usageHoldEffect(account),
  };
}

/**
 * The effects of a runner's live actors: the supervisor and its slots report errors, and the supervisor reports
 * how its pool grows and shrinks — one log line per added slot, so a ramp shows as timestamped steps; everything
 * else they do is their own statechart's (spawning, raising) or their invoked actors'.
 */
export function liveActorEffects(log: Logger, clock: Clock = systemClock) {
  // When each slot was added, for how long its settling window held growth back.
  const addedAt = new Map<string, number>();
  const mib = (bytes: number) => Math.round(bytes / (1024 * 1024));
  return {
    supervisor: {
      reportError: (_: unknown, params: { error: unknown }) => log.error('claim failed', { error: String(params.error) }),
      slotAdded: (_: unknown, params: SlotAddedNotice) => {
        addedAt.set(params.slotId, clock.now());
        log.info('slot added', { slot: params.slotId, slots: params.slots, busy: params.busy });
      },
      growthSettled: (_: unknown, params: GrowthSettledNotice) => {
        const since = addedAt.get(params.slotId);
        addedAt.delete(params.slotId);
        log.info('slot settled; the pool may grow again', {
          slot: params.slotId,
          end: params.end,
          afterMs: since === undefined ? undefined : clock.now() - since,
          cpuPercent: params.reading ? Math.round(params.reading.cpuPercent) : undefined,
          availableMiB: params.reading ? mib(params.reading.availableBytes) : undefined,
        });
      },
      slotsDrained: (_: unknown, params: { slotIds: string[] }) => log.info('queue idle; idle slots drained', { slots: params.slotIds.join(',') }),
    },
    slot: {
      reportError: (_: unknown, params: { error: unknown }) =>
        log.error('slot step failed; the lease lapses and recovery takes the task back', { error: String(params.error) }),
    },
  };
}
