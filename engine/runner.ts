/**
 * A runner node: the process that claims tasks from the database and runs their agents. It wires the
 * supervisor statechart (which owns the worker slots and the claim loop) to the store and the agent pool,
 * watches the database for other processes' writes, renews its leases, and exits when idle.
 *
 * Every task step here follows decide → commit → act (DESIGN §1): the statechart decides, the store commits
 * the step fenced by owner + attempt, and only then does anything happen to a process.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { createActor, fromCallback, fromPromise, waitFor, type Actor, type AnyEventObject } from 'xstate';
import { supervisorMachine, type ClaimedTask } from '../actors/supervisor.machine.js';
import { workerSlotMachine, type HandBackInput, type RunAgentInput, type SettleInput } from '../actors/worker-slot.machine.js';
import { agentByName, type AgentResult } from './agent.js';
import { systemClock, type Clock } from './clock.js';
import { redactDatabaseUrl, type DelegateConfig } from './config.js';
import type { Logger } from './logger.js';
import { AgentPool } from './pool/agent-pool.js';
import { ChildCommand, taskLogPaths, type LaunchRequest, type RunOutcome } from './pool/protocol.js';
import { isProcessAlive, killGroupById, killProcessGroup, localHostIdentity, processGroupsWithEnv, processStartTime } from './process-info.js';
import { defaultLeaseMs, isLiveLocalNode } from './node-liveness.js';
import { deriveMaxWorkers, ResourceMonitor } from './resource-monitor.js';
import { openStore, type Checkpoint, type NodeRecord, type OpenRun, type Store, type TaskColumns, type TaskRecord } from './store/store.js';
import { captureGitState, checkpointLines, composePrompt, formatCheckpointContext } from './checkpoint.js';
import { decideTaskEvent, dependantDecider, type TaskAction } from './task-steps.js';
import { logDirOf } from './task-service.js';
import type { TaskEvent as TaskMachineEvent } from '../actors/task.machine.js';
import { delegateVersion } from './version.js';

/** Timing of a runner; tests shorten it. */
export interface RunnerTiming {
  /** A run's lease; renewed every third of it. */
  leaseMs: number;
  /** How often the database is checked for other processes' commits. */
  pollMs: number;
  /** How often CPU and memory are sampled and idleness is checked. */
  sampleMs: number;
  /** Grace between SIGTERM and SIGKILL of an agent's process group. */
  killGraceMs: number;
  /** How long a shutdown waits for slots to hand their tasks back. */
  shutdownMs: number;
  /** How often the recovery sweep looks for runs of dead nodes. */
  sweepMs: number;
}

export const defaultRunnerTiming: RunnerTiming = {
  leaseMs: defaultLeaseMs,
  pollMs: 50,
  sampleMs: 1000,
  killGraceMs: 5000,
  shutdownMs: 15_000,
  sweepMs: 2000,
};

/** How to start a runner. */
export interface RunnerOptions {
  config: DelegateConfig;
  logger: Logger;
  /** Started by a front door: exit at once if another runner for this data dir is alive on this host. */
  autostarted: boolean;
  clock?: Clock;
  timing?: Partial<RunnerTiming>;
  /** The environment agents resolve their binaries from (default process.env). */
  env?: NodeJS.ProcessEnv;
  /**
   * URLs of the modules that register agents, for the pool's worker threads (which start with no agents); the
   * caller has imported them itself, so the runner and its threads know the same agents.
   */
  agentModules: readonly string[];
}

/** What the slot's runAgent actor receives: a launch request, or why there could be none. */
type LaunchPlan = { request: LaunchRequest } | { error: string };

function newNodeId(): string {
  return `node-${randomBytes(5).toString('hex')}`;
}

/** The environment variable that marks an agent's processes with their run. */
export const runMarkerVariable = 'DELEGATE_RUN';

/** The marker value of one run. */
export function runMarker(taskId: string, attempt: number): string {
  return `${taskId}#${attempt}`;
}

/** An outcome for a run that never reached a process. */
function failedToStart(error: string): RunOutcome {
  return { end: 'spawn_error', exitCode: null, signal: null, error, result: { sawResult: false, isError: false }, outputBytes: 0, lastLines: [] };
}

/**
 * How long to pause when the reported reset time has already passed (clock skew, a stale message): resuming at
 * once would hit the limit again and loop.
 */
export const minUsageLimitPauseMs = 60_000;

/** The task event a run's outcome means; null when there is nothing to record (we cancelled it ourselves). */
export function outcomeEvent(outcome: RunOutcome, now: number): TaskMachineEvent | null {
  switch (outcome.end) {
    case 'cancelled':
      return null;
    case 'timeout':
    case 'output_limit':
    case 'spawn_error':
      return { type: 'AGENT_FAILED', reason: outcome.end, error: outcome.error ?? outcome.end, exitCode: outcome.exitCode };
    case 'exited': {
      const result: AgentResult = outcome.result;
      if (result.usageLimitResetAt !== undefined) {
        const resetAt = result.usageLimitResetAt > now ? result.usageLimitResetAt : now + minUsageLimitPauseMs;
        return { type: 'USAGE_LIMIT', resetAt };
      }
      const error = result.isError ? `agent reported an error: ${(result.resultText ?? '').split('\n')[0]?.slice(0, 300) ?? ''}` : outcome.error;
      return { type: 'AGENT_EXITED', exitCode: outcome.exitCode, sawResult: result.sawResult, isError: result.isError, ...(error ? { error } : {}) };
    }
  }
}

/** Columns a run's outcome fills in on the task. */
function outcomeColumns(outcome: RunOutcome): TaskColumns {
  const result = outcome.result;
  return {
    exitCode: outcome.exitCode,
    ...(result.sessionId ? { sessionId: result.sessionId } : {}),
    ...(result.costUsd !== undefined ? { costUsd: result.costUsd } : {}),
    ...(result.numTurns !== undefined ? { numTurns: result.numTurns } : {}),
    ...(result.usage !== undefined ? { usage: result.usage } : {}),
    ...(result.resultText !== undefined ? { result: result.resultText } : {}),
  };
}

/** A running node. */
export class Runner {
  readonly nodeId = newNodeId();
  /** Hostname, boot and pid namespace: pids in run rows mean something only on the same one. */
  readonly host = localHostIdentity();
  private readonly clock: Clock;
  private readonly timing: RunnerTiming;
  private readonly logDir: string;
  /** Runs this node committed a claim for and has not settled: taskId → attempt. */
  private readonly localRuns = new Map<string, number>();
  /** Agent launches in flight, by `taskId#attempt`; `done` resolves once the agent's process group is gone. */
  private readonly launches = new Map<string, { done: Promise<RunOutcome> }>();
  private readonly timers: NodeJS.Timeout[] = [];
  private supervisor: Actor<typeof supervisorMachine> | undefined;
  private pool: AgentPool | undefined;
  private lastDataVersion: number | null = null;
  private idleSince: number | null = null;
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  /** Resolves once the runner has shut down. */
  readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));
  readonly maxWorkers: number;

  private constructor(
    private readonly options: RunnerOptions,
    private readonly store: Store,
  ) {
    this.clock = options.clock ?? systemClock;
    this.timing = { ...defaultRunnerTiming, leaseMs: options.config.leaseMs, ...options.timing };
    this.logDir = logDirOf(options.config.dataDir);
    this.maxWorkers = deriveMaxWorkers(options.config);
  }

  /** Start a runner; with `autostarted`, returns the live one instead when another already runs here. */
  static async start(options: RunnerOptions): Promise<{ runner: Runner } | { alreadyRunning: NodeRecord }> {
    const { config } = options;
    const store = await openStore(config.databaseUrl, { authToken: config.databaseToken });
    const runner = new Runner(options, store);
    const now = runner.clock.now();
    const registration = await store.registerNode(
      runner.nodeRecord(now),
      options.autostarted ? { isAlive: (other) => isLiveLocalNode(other, now, runner.timing.leaseMs) } : undefined,
    );
    if (!registration.registered) {
      await store.close();
      return { alreadyRunning: registration.existing };
    }
    runner.run();
    return { runner };
  }

  private readonly startedAt = Date.now();

  private nodeRecord(now: number): NodeRecord {
    return {
      id: this.nodeId,
      host: this.host,
      pid: process.pid,
      pidStart: processStartTime(process.pid),
      dataDir: this.options.config.dataDir,
      version: delegateVersion,
      autostarted: this.options.autostarted,
      startedAt: this.startedAt,
      heartbeatAt: now,
    };
  }

  /** Steps running on timers; shutdown waits for them before it closes the store they use. */
  private readonly inFlight = new Set<Promise<unknown>>();

  private background(step: Promise<unknown>): Promise<void> {
    const tracked = step.then(
      () => undefined,
      (error: unknown) => this.log.error('background step failed', { error: String(error) }),
    );
    this.inFlight.add(tracked);
    void tracked.finally(() => this.inFlight.delete(tracked));
    return tracked;
  }

  /** Send to the supervisor unless it is shutting down (background steps may still be finishing). */
  private tell(event: Parameters<Actor<typeof supervisorMachine>['send']>[0]): void {
    if (!this.stopping) this.supervisor?.send(event);
  }

  private get log(): Logger {
    return this.options.logger;
  }

  private run(): void {
    const pool = new AgentPool({
      maxThreads: Math.min(2, os.availableParallelism()),
      concurrentTasksPerWorker: this.maxWorkers,
      agentModules: this.options.agentModules,
    });
    this.pool = pool;
    const slot = workerSlotMachine.provide({
      actors: {
        runAgent: fromCallback<AnyEventObject, RunAgentInput>(({ input, sendBack }) => this.runAgent(input, sendBack)),
        settle: fromPromise<void, SettleInput>(({ input }) => this.settle(input)),
        handBack: fromPromise<void, HandBackInput>(({ input }) => this.handBack(input)),
      },
    });
    const supervisor = createActor(
      supervisorMachine.provide({
        actors: {
          workerSlot: slot,
          claimNext: fromPromise<ClaimedTask | null, { nodeId: string }>(() => this.claimNext()),
        },
        actions: {
          reportError: (_, params) => this.log.error('claim failed', { error: String((params as { error?: unknown })?.error) }),
        },
      }),
      { input: { nodeId: this.nodeId, maxWorkers: this.maxWorkers, tickMs: this.timing.leaseMs / 3 } },
    );
    this.supervisor = supervisor;
    supervisor.subscribe({
      error: (error: unknown) => {
        // Without its supervisor this node runs nothing: stop, so leases lapse and other runners take over.
        this.log.error('supervisor failed; shutting down', { error: String(error), stack: (error as Error)?.stack?.split('\n').slice(0, 4).join(' | ') });
        void this.shutdown('supervisor failed');
      },
    });
    supervisor.start();
    this.log.info('runner started', { node: this.nodeId, pid: process.pid, maxWorkers: this.maxWorkers, db: redactDatabaseUrl(this.options.config.databaseUrl) });
    supervisor.send({ type: 'WAKE' });
    const every = (ms: number, fn: () => Promise<void>): void => {
      let busy = false;
      const timer = setInterval(() => {
        if (busy || this.stopping) return;
        busy = true;
        this.background(fn()).finally(() => (busy = false));
      }, ms);
      this.timers.push(timer);
    };
    every(this.store.kind === 'embedded' ? this.timing.pollMs : Math.max(this.timing.pollMs, 1000), () => this.watchDatabase());
    every(this.timing.leaseMs / 3, () => this.renew());
    every(this.timing.sweepMs, async () => void (await this.recoverLapsedLeases()));
    // On start too: runs of a runner that died on this host are taken over at once, not after the next tick.
    void this.background(this.recoverLapsedLeases());
    const monitor = new ResourceMonitor(this.options.config);
    every(this.timing.sampleMs, async () => {
      const sample = await monitor.sample();
      // Never starve: with nothing running here, one agent may always start.
      this.tell({ type: 'RESOURCES', admissible: sample.admissible || this.localRuns.size === 0 });
      // Delayed pipeline steps become claimable with time, not with a commit.
      this.tell({ type: 'WAKE' });
      await this.resumeDuePausedTasks();
      await this.checkIdle();
    });
  }

  /** Another process committed (a new task, a cancel): claim, and drop runs this node no longer owns. */
  private async watchDatabase(): Promise<void> {
    const version = await this.store.dataVersion();
    if (version !== null && version === this.lastDataVersion) return;
    this.lastDataVersion = version;
    this.tell({ type: 'WAKE' });
    await this.dropRevokedRuns(await this.ownedSnapshot(() => this.store.ownedRuns(this.nodeId)));
  }

  /** Renew leases and the heartbeat. */
  private async renew(): Promise<void> {
    const now = this.clock.now();
    const alive = await this.store.heartbeatNode(this.nodeId, now);
    if (!alive) {
      // Another node took this one for dead (it stalled past its lease) and took its runs; carry on as a node.
      this.log.warn('node row disappeared; another node took this one for dead; registering again');
      await this.store.registerNode(this.nodeRecord(now));
    }
    const local = [...this.localRuns].map(([id, attempt]) => ({ id, attempt }));
    await this.dropRevokedRuns(await this.ownedSnapshot(() => this.store.renewLeases(this.nodeId, now + this.timing.leaseMs, local)));
  }

  /** Run a query of owned runs, remembering which local runs existed before it (later claims are not judged by it). */
  private async ownedSnapshot(query: () => Promise<Array<{ id: string; attempt: number }>>): Promise<{ before: Map<string, number>; owned: Set<string> }> {
    const before = new Map(this.localRuns);
    const owned = new Set((await query()).map((run) => `${run.id}#${run.attempt}`));
    return { before, owned };
  }

  private async dropRevokedRuns({ before, owned }: { before: Map<string, number>; owned: Set<string> }): Promise<void> {
    for (const [taskId, attempt] of before) {
      if (owned.has(`${taskId}#${attempt}`) || this.localRuns.get(taskId) !== attempt) continue;
      this.log.info('run revoked (cancelled or taken over); stopping its agent', { task: taskId, attempt });
      this.forgetLocalRun(taskId, attempt);
      this.tell({ type: 'TASK_REVOKED', taskId, attempt, reason: 'no longer owned' });
    }
  }

  private async claimNext(): Promise<ClaimedTask | null> {
    if (this.stopping) return null;
    const now = this.clock.now();
    const task = await this.store.claimNextTask(
      { nodeId: this.nodeId, host: this.host, now, leaseMs: this.timing.leaseMs, logPath: (id) => taskLogPaths(this.logDir, id).text },
      (candidate) => {
        // Pre-assign the agent session id, so even a run cut short by a crash can be resumed.
        const decided = decideTaskEvent(candidate, { type: 'CLAIM', node: this.nodeId }, now, { sessionId: candidate.sessionId ?? randomUUID() });
        if (!decided) throw new Error(`task ${candidate.id} is ready but its statechart refuses CLAIM`);
        return decided.step;
      },
    );
    if (!task) return null;
    this.localRuns.set(task.id, task.attempt);
    this.log.info('claimed task', { task: task.id, attempt: task.attempt, priority: task.priority });
    return { taskId: task.id, attempt: task.attempt, launch: await this.planLaunch(task) };
  }

  /**
   * What to run for a claimed task: its prompt with the context it continues from (a dependency's checkpoint,
   * a resumed task's checkpoint and extra instructions, or a note that its last run was cut short), and which
   * agent session to use — a pre-assigned new one, a fork of the resumed task's, or the interrupted one's.
   */
  private async planLaunch(task: TaskRecord): Promise<LaunchPlan> {
    try {
      const agent = agentByName(task.agent);
      const blocks: string[] = [];
      if (task.continueFrom) {
        const checkpoint = await this.store.latestCheckpoint(task.continueFrom);
        if (checkpoint) blocks.push(formatCheckpointContext(checkpoint, 'the task this one continues,'));
      }
      if (task.parentTaskId) {
        const checkpoint = await this.store.latestCheckpoint(task.parentTaskId);
        if (checkpoint) blocks.push(formatCheckpointContext(checkpoint, 'the earlier run this task resumes,'));
        if (task.additionalContext) blocks.push(`=== Additional instructions for this run ===\n${task.additionalContext}`);
      }
      const { context } = task.snapshot;
      // An interrupted run continues its own agent session, if the agent got far enough to create one.
      const runs = context.interrupted === true ? await this.store.taskRuns(task.id) : [];
      const startedSession = runs.some((run) => run.attempt < task.attempt && run.sessionId !== null);
      if (context.interrupted === true) {
        blocks.push(
          '=== Note ===\nAn earlier run of this task was interrupted before it finished (its runner stopped). Continue from where it left off; check the working directory for work already done.',
        );
      }
      const session =
        startedSession && task.sessionId
          ? { resumeSessionId: task.sessionId }
          : task.forkSessionId
            ? { forkFromSessionId: task.forkSessionId, sessionId: task.sessionId ?? undefined }
            : { sessionId: task.sessionId ?? undefined };
      const command = agent.buildCommand(
        {
          taskId: task.id,
          attempt: task.attempt,
          prompt: composePrompt(task.prompt, blocks),
          workingDirectory: task.workingDirectory,
          model: task.model ?? undefined,
          permissionMode: task.permissionMode ?? this.options.config.permissionMode,
          allowedTools: task.allowedTools,
          disallowedTools: task.disallowedTools,
          maxBudgetUsd: task.maxBudgetUsd ?? undefined,
          ...session,
        },
        this.options.env ?? process.env,
      );
      // Marks the agent's processes as this run's, so the recovery sweep finds them even if their pid was never recorded.
      command.env = { ...command.env, [runMarkerVariable]: runMarker(task.id, task.attempt) };
      return {
        request: {
          taskId: task.id,
          attempt: task.attempt,
          agent: task.agent,
          command,
          cwd: task.workingDirectory,
          logDir: this.logDir,
          timeoutMs: task.timeoutMs,
          maxOutputBuffer: task.maxOutputBuffer,
          killGraceMs: this.timing.killGraceMs,
          baseEnv: { ...(this.options.env ?? process.env) },
        },
      };
    } catch (error) {
      return { error: error instanceof Error ? error.message : String(error) };
    }
  }

  private runAgent(input: RunAgentInput, sendBack: (event: { type: 'AGENT_STARTED'; pid: number } | { type: 'AGENT_EXITED'; outcome: unknown }) => void): () => void {
    const plan = input.launch as LaunchPlan;
    if ('error' in plan) {
      queueMicrotask(() => sendBack({ type: 'AGENT_EXITED', outcome: failedToStart(plan.error) }));
      return () => undefined;
    }
    let finished = false;
    let sessionRecorded = false;
    const key = `${input.taskId}#${input.attempt}`;
    const handle = this.pool!.launch(plan.request, (message) => {
      if (message.cmd === ChildCommand.Progress && message.value.sessionId && !sessionRecorded) {
        // Once the agent has reported its session, an interrupted run can be resumed in it.
        sessionRecorded = true;
        this.store
          .recordRunSession(input.taskId, input.attempt, message.value.sessionId)
          .catch((error: unknown) => this.log.warn('could not record agent session', { task: input.taskId, error: String(error) }));
      }
      if (message.cmd !== ChildCommand.Started) return;
      const { pid, pidStartTime } = message.value;
      this.store
        .recordRunProcess(input.taskId, input.attempt, { pid, pidStart: pidStartTime, sessionId: null })
        .catch((error: unknown) => this.log.warn('could not record agent pid', { task: input.taskId, error: String(error) }));
      sendBack({ type: 'AGENT_STARTED', pid });
    });
    this.launches.set(key, handle);
    void handle.done.finally(() => this.launches.delete(key));
    handle.done.then(
      (outcome) => {
        finished = true;
        // A run this node stopped (revoked or shut down) is ended here; no task step will end it.
        if (outcome.end === 'cancelled') void this.background(this.store.endRun(input.taskId, input.attempt, 'cancelled', this.clock.now()));
        sendBack({ type: 'AGENT_EXITED', outcome });
      },
      (error: unknown) => {
        finished = true;
        sendBack({ type: 'AGENT_EXITED', outcome: failedToStart(`launcher failed: ${String(error)}`) });
      },
    );
    // Leaving the slot's active state (cancel, lost lease, shutdown) kills the agent's process group.
    return () => {
      if (!finished) handle.cancel('run stopped by the runner');
    };
  }

  /** Commit how a run ended, fenced by owner + attempt; dependants learn of it in the same transaction. */
  private async settle(input: SettleInput): Promise<void> {
    const outcome = input.outcome.kind === 'exited' ? (input.outcome.detail as RunOutcome) : failedToStart(`runner error: ${String(input.outcome.detail)}`);
    try {
      const event = outcomeEvent(outcome, this.clock.now());
      if (!event) return;
      for (let tries = 0; tries < 3; tries++) {
        const task = await this.store.getTask(input.taskId);
        if (!task || task.state !== 'running' || task.owner !== this.nodeId || task.attempt !== input.attempt) {
          this.log.info('run ended after the task moved on; outcome dropped', { task: input.taskId, attempt: input.attempt, state: task?.state });
          return;
        }
        const now = this.clock.now();
        const decided = decideTaskEvent(task, event, now, outcomeColumns(outcome));
        if (!decided) return;
        const next = decided.step.snapshot.value;
        const checkpoint =
          next === 'completed' || next === 'failed'
            ? await this.checkpointOf(task, input.attempt, next, outcome, decided.step.set.error ?? null, now)
            : undefined;
        const applied = await this.store.commitTaskStep(
          task.id,
          { state: 'running', owner: this.nodeId, attempt: input.attempt },
          decided.step,
          {
            now,
            nodeId: this.nodeId,
            runEnd: { outcome: outcome.end, exitCode: outcome.exitCode, outputBytes: outcome.outputBytes, costUsd: outcome.result.costUsd ?? null, sessionId: outcome.result.sessionId ?? null },
            ...(checkpoint ? { checkpoint } : {}),
            decideDependant: dependantDecider(now),
          },
        );
        if (applied) {
          this.log.info('task settled', { task: task.id, attempt: input.attempt, state: decided.step.snapshot.value, reason: decided.step.set.failReason ?? undefined });
          this.act(decided.actions);
          return;
        }
      }
    } finally {
      this.forgetLocalRun(input.taskId, input.attempt);
    }
  }

  /** Forget a local run, unless the task's entry is already a newer attempt of this node. */
  private forgetLocalRun(taskId: string, attempt: number): void {
    if (this.localRuns.get(taskId) === attempt) this.localRuns.delete(taskId);
  }

  /**
   * The recovery sweep (DESIGN §4), over every run whose row has not ended. A run is recovered when its node is
   * gone — a process on this host that no longer exists, or a node whose lease lapsed — or when it is this
   * node's own but no slot runs it any more. A run that is still its task's live run is first taken over (a
   * fenced write, so a stalled owner that wakes can neither renew nor settle it), then its agent is killed if it
   * runs here, and only then does LEASE_LOST let the statechart requeue the task or fail it as `crashed`. A run
   * whose task moved on (cancelled while its runner was dead) just has its agent killed and its row ended.
   */
  async recoverLapsedLeases(): Promise<number> {
    const now = this.clock.now();
    let recovered = 0;
    for (const run of await this.store.openRuns()) {
      const mine = run.nodeId === this.nodeId;
      if (mine && this.localRuns.get(run.taskId) === run.attempt) continue;
      const current = run.taskState === 'running' && run.taskAttempt === run.attempt;
      const live = current && run.taskOwner === run.nodeId;
      // An earlier sweep of this node took the run over but could not kill its agent: finish the job.
      const takenOver = current && !mine && run.taskOwner === this.nodeId;
      const nodeDeadHere = run.node !== null && run.node.host === this.host && !isProcessAlive(run.node.pid, run.node.pidStart);
      const nodeGone = run.node === null || nodeDeadHere || now - run.node.heartbeatAt > 3 * this.timing.leaseMs;
      const lapsed = run.leaseUntil !== null && run.leaseUntil < now;
      if (live ? !(nodeDeadHere || lapsed) : !(takenOver || nodeGone || mine)) continue;
      if (live) {
        const taken = await this.store.takeOverRun({
          taskId: run.taskId,
          attempt: run.attempt,
          from: run.nodeId,
          to: this.nodeId,
          leaseUntil: now + this.timing.leaseMs,
          ...(nodeDeadHere ? {} : { leaseLapsedBy: now }),
        });
        if (!taken) continue;
      }
      if (run.host === this.host && !(await this.killRunAgent(run))) {
        // Still ours (taken over): the next sweep tries again.
        this.log.error('could not kill the agent of a lost run', { task: run.taskId, attempt: run.attempt, pid: run.pid });
        continue;
      }
      if (!live && !takenOver) {
        await this.store.endRun(run.taskId, run.attempt, 'lost', now);
        continue;
      }
      const task = await this.store.getTask(run.taskId);
      if (!task) continue;
      const decided = decideTaskEvent(task, { type: 'LEASE_LOST' }, now);
      if (!decided) continue;
      decided.step.detail = nodeDeadHere
        ? `runner ${run.nodeId} (pid ${run.node?.pid}) died`
        : mine
          ? `run ${run.attempt} of this runner had no slot any more`
          : `lease of ${run.nodeId} lapsed`;
      const applied = await this.store.commitTaskStep(task.id, { state: 'running', owner: this.nodeId, attempt: run.attempt }, decided.step, {
        now,
        nodeId: this.nodeId,
        runEnd: { outcome: 'lost', exitCode: null, outputBytes: 0, costUsd: null, sessionId: null },
        decideDependant: dependantDecider(now),
      });
      if (applied) {
        recovered++;
        this.log.warn('took over a lost run', { task: task.id, attempt: run.attempt, owner: run.nodeId, next: decided.step.snapshot.value });
        this.act(decided.actions);
      }
    }
    await this.forgetDeadNodes(now);
    if (recovered > 0) this.tell({ type: 'WAKE' });
    return recovered;
  }

  /** Kill what is left of a run's agent on this host: its recorded process group, and any process carrying its marker. */
  private async killRunAgent(run: OpenRun): Promise<boolean> {
    let gone = run.pid === null || (await killProcessGroup(run.pid, run.pidStart, this.timing.killGraceMs));
    for (const group of processGroupsWithEnv(runMarkerVariable, runMarker(run.taskId, run.attempt))) {
      gone = (await killGroupById(group, this.timing.killGraceMs)) && gone;
    }
    return gone;
  }

  /** Remove node rows of processes that are gone and own nothing any more (keeps `delegate status` honest). */
  private async forgetDeadNodes(now: number): Promise<void> {
    for (const node of await this.store.listNodes()) {
      if (node.id === this.nodeId) continue;
      const deadHere = node.host === this.host && !isProcessAlive(node.pid, node.pidStart);
      const silent = now - node.heartbeatAt > 3 * this.timing.leaseMs;
      if (!deadHere && !silent) continue;
      if ((await this.store.ownedRuns(node.id)).length > 0) continue;
      await this.store.removeNode(node.id);
      this.log.info('forgot a dead node', { node: node.id, pid: node.pid, host: node.host });
    }
  }

  /** The checkpoint of a finished attempt: read before the commit, written in it. */
  private async checkpointOf(task: TaskRecord, attempt: number, outcomeState: string, outcome: RunOutcome, error: string | null, now: number): Promise<Checkpoint> {
    const git = await captureGitState(task.workingDirectory);
    return {
      taskId: task.id,
      attempt,
      createdAt: now,
      outcome: outcomeState,
      gitBranch: git.branch,
      gitSha: git.sha,
      gitDirty: git.dirty,
      lastLines: outcome.lastLines.slice(-checkpointLines),
      error,
      sessionId: outcome.result.sessionId ?? null,
    };
  }

  /** Shutdown: give the task back to the queue so another runner (or this one, restarted) runs it again. */
  private async handBack(input: HandBackInput): Promise<void> {
    try {
      // Not before the agent is gone: another runner may claim the task the moment it is back in the queue.
      await this.launches.get(`${input.taskId}#${input.attempt}`)?.done.catch(() => undefined);
      const task = await this.store.getTask(input.taskId);
      if (!task || task.state !== 'running' || task.owner !== this.nodeId || task.attempt !== input.attempt) return;
      const now = this.clock.now();
      const decided = decideTaskEvent(task, { type: 'RELEASE' }, now);
      if (!decided) return;
      await this.store.commitTaskStep(task.id, { state: 'running', owner: this.nodeId, attempt: input.attempt }, decided.step, { now, nodeId: this.nodeId });
      this.log.info('task handed back', { task: task.id, attempt: input.attempt });
    } finally {
      this.forgetLocalRun(input.taskId, input.attempt);
    }
  }

  /**
   * Act on the effects a committed step's statechart asked for (DESIGN §1: only after the commit). Some are
   * carried by the structure instead: the claim itself starts the agent, the resume time is the task's
   * resume_at, the checkpoint is written in the step's own commit, and a cancel's kill is done by the owner.
   */
  private act(actions: readonly TaskAction[]): void {
    for (const action of actions) {
      switch (action.type) {
        case 'notifyDependants':
          // The commit readied any dependants it could; claim them now rather than at the next poll.
          this.tell({ type: 'WAKE' });
          break;
        // A cancel is committed by a front door, which cannot reach the agent: the owning runner sees the run is
        // no longer its own (watchDatabase) and stops it.
        case 'killAgent':
        case 'startAgent':
        case 'scheduleResume':
        case 'recordCheckpoint':
          break;
      }
    }
  }

  /** Paused tasks (usage limit) whose reset time has come go back to the queue. */
  private async resumeDuePausedTasks(): Promise<void> {
    const now = this.clock.now();
    for (const task of await this.store.duePausedTasks(now)) {
      const decided = decideTaskEvent(task, { type: 'RESUME_DUE' }, now);
      if (decided && (await this.store.commitTaskStep(task.id, { state: 'paused' }, decided.step, { now, nodeId: this.nodeId }))) {
        this.tell({ type: 'WAKE' });
      }
    }
  }

  private async checkIdle(): Promise<void> {
    const idleExitMs = this.options.config.idleExitMs;
    if (idleExitMs === 0) return;
    const now = this.clock.now();
    if (this.localRuns.size > 0 || (await this.store.countUnfinished()) > 0) {
      this.idleSince = null;
      return;
    }
    this.idleSince ??= now;
    if (now - this.idleSince < idleExitMs) return;
    // Deregister in the same transaction that finds nothing to do: a front door that queued a task meanwhile
    // either sees this runner gone (and starts another) or this runner sees its task (and stays).
    if (await this.store.removeNodeIfIdle(this.nodeId)) void this.shutdown(`idle for ${idleExitMs} ms`);
    else this.idleSince = null;
  }

  /** Stop claiming, stop the slots (running tasks are handed back), release the node. Idempotent. */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info('runner stopping', { node: this.nodeId, reason });
      for (const timer of this.timers) clearInterval(timer);
      const supervisor = this.supervisor;
      if (supervisor) {
        supervisor.send({ type: 'SHUTDOWN' });
        try {
          await waitFor(supervisor, (snapshot) => snapshot.status === 'done', { timeout: this.timing.shutdownMs });
        } catch {
          this.log.warn('slots did not stop in time', { timeoutMs: this.timing.shutdownMs });
        }
        supervisor.stop();
      }
      await this.pool?.close().catch(() => undefined);
      await Promise.all(this.inFlight);
      await this.store.removeNode(this.nodeId).catch(() => undefined);
      await this.store.close().catch(() => undefined);
      this.log.info('runner stopped', { node: this.nodeId });
      this.resolveStopped();
    })();
    return this.stopping;
  }
}
