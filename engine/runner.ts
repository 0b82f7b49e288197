/**
 * A runner node: the process that claims tasks from the database and runs their agents. This module only
 * wires the parts together, each of which owns one thing:
 * - the supervisor statechart (actors/) owns the worker slots and when to claim;
 * - `TaskActors` is the one step path of task actors, whose actions are carried out by `runnerEffects`;
 * - `AgentRuns` runs agents on the pool for the slots and commits how they ended;
 * - `NodeLease` heartbeats, renews leases and fences the node when it cannot;
 * - `TimerLoop` delivers durable timers; `recoverLapsedLeases` takes over runs of dead nodes;
 * - `NodeJournal` writes the live actors' events and snapshots;
 * - `ClaimGate` says which ready tasks may not start now (usage limits, budgets).
 * Every periodic piece of work runs on the injected clock.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import os from 'node:os';
import { createActor, fromCallback, fromPromise, waitFor, type Actor, type AnyEventObject } from 'xstate';
import { defaultScalingPolicy, supervisorMachine, type ClaimedTask } from '../actors/supervisor.machine.js';
import { workerSlotMachine, type HandBackInput, type RunAgentInput, type SettleInput } from '../actors/worker-slot.machine.js';
import { AgentRuns } from './agent-runs.js';
import { ClaimGate } from './claim-holds.js';
import { every, systemClock, type Clock } from './clock.js';
import { redactDatabaseUrl, type DelegateConfig } from './config.js';
import { watchStoreForCommits } from './database-watch.js';
import { EventBus } from './events.js';
import { planLaunch } from './launch-plan.js';
import type { Logger } from './logger.js';
import { NodeJournal } from './node-journal.js';
import { NodeLease } from './node-lease.js';
import { OutputShipper } from './output-shipper.js';
import { createNotifier, type Notifier } from './notifier.js';
import { defaultLeaseMs, isLiveLocalNode } from './node-liveness.js';
import { AgentPool } from './pool/agent-pool.js';
import { taskLogPaths } from './pool/protocol.js';
import { localHostIdentity, processStartTime } from './process-info.js';
import { recoverLapsedLeases } from './recovery.js';
import { deriveMaxWorkers, machineProbe, resourceSampler, type ResourceProbeFactory } from './resource-monitor.js';
import { openStore, type DueTimer, type NodeRecord, type Store } from './store/store.js';
import type { ScheduleEvent } from '../actors/schedule.machine.js';
import { taskTimerStates, type TaskEvent } from '../actors/task.machine.js';
import { ScheduleActors, scheduleEffects } from './schedule-actors.js';
import { isScheduleId, scheduledTask } from './schedule-input.js';
import { TaskActors } from './task-actors.js';
import { liveActorEffects, runnerEffects } from './task-effects.js';
import { logDirOf } from './task-service.js';
import { TimerLoop } from './timer-loop.js';
import { delegateVersion } from './version.js';

/** Timing of a runner; tests shorten it. */
export interface RunnerTiming {
  /** A run's lease; renewed every third of it. */
  leaseMs: number;
  /** How often the database is checked for other processes' commits. */
  pollMs: number;
  /** How often CPU and memory are read for admission (the standing watch) and idleness is checked. */
  sampleMs: number;
  /** How often CPU and memory are read while a new slot's agent settles. */
  settleSampleMs: number;
  /** The longest a new slot's settling window holds back the next slot. */
  settleMaxMs: number;
  /** Idle slots are drained once no claim has found work for this long. */
  drainIdleMs: number;
  /** Grace between SIGTERM and SIGKILL of an agent's process group. */
  killGraceMs: number;
  /** How long a shutdown waits for slots to hand their tasks back. */
  shutdownMs: number;
  /** How often the output of live runs is shipped to the database, where other hosts share it. */
  shipOutputMs: number;
  /** How often the recovery sweep looks for runs of dead nodes. */
  sweepMs: number;
}

export const defaultRunnerTiming: RunnerTiming = {
  leaseMs: defaultLeaseMs,
  pollMs: 50,
  sampleMs: 1000,
  settleSampleMs: defaultScalingPolicy.settleSampleMs,
  settleMaxMs: defaultScalingPolicy.settleMaxMs,
  drainIdleMs: defaultScalingPolicy.drainIdleMs,
  killGraceMs: 5000,
  shutdownMs: 15_000,
  shipOutputMs: 1000,
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
   * URLs of the modules that register agents, for the agent host that runs agents (it starts with no agents);
   * the caller has imported them itself, so the runner and its host know the same agents.
   */
  agentModules: readonly string[];
  /** In-process subscribers of this runner's events (a front door in the same process shares it). */
  bus?: EventBus;
  /** Reads CPU and memory for the supervisor's admission and settling (default: this machine). */
  resourceProbe?: ResourceProbeFactory;
}

/** How long a stopping runner waits for notifications still being delivered. */
const notifyGraceMs = 5000;

/**
 * How long a runner's statement keeps retrying an unreachable database server (a front door gives up after
 * 10 s). Longer, so that an agent's end or a journal batch survives a server restart; not forever, so that a
 * long outage shows in the log as the failures of what could not be done (about one line per loop and 30 s).
 * Its agents do not wait for this: the node fences itself after a lease period without renewal, on its own
 * timer. A stopping runner stops waiting altogether (`stopWaiting`).
 */
const unreachableDeadlineMs = 30_000;

function newNodeId(): string {
  return `node-${randomBytes(5).toString('hex')}`;
}

/** A running node. */
export class Runner {
  readonly nodeId = newNodeId();
  /** DELEGATE_HOST_ID, else hostname, boot and pid namespace: pids in run rows mean something only on the same one. */
  readonly host: string;
  /**
   * Whether runners of other hosts may share this database (a server URL, or DELEGATE_HOST_ID naming this host
   * among several): then the agent host ends a run's agent when no runner follows it, so they can take the run over,
   * and runs' output is shipped to the database, so their front doors can read it.
   */
  private readonly sharedWithOtherHosts: boolean;
  readonly maxWorkers: number;
  /** Committed events of this runner, as they happen. */
  readonly bus: EventBus;
  private readonly clock: Clock;
  private readonly timing: RunnerTiming;
  private readonly logDir: string;
  private readonly startedAt = Date.now();
  /** Stops of periodic work; each resolves once its round in flight has finished. */
  private readonly stops: Array<() => Promise<void>> = [];
  /** One-off work (the start-up sweep) shutdown waits for before it closes the store. */
  private readonly inFlight = new Set<Promise<unknown>>();
  /** Tasks whose snapshot cannot be restored: skipped by claims until the runner restarts. */
  private readonly poisoned = new Set<string>();
  /** Live runs of a dead runner this node adopted, waiting for a slot to follow them (served before claims). */
  private readonly adoptions: ClaimedTask[] = [];
  private supervisor: Actor<typeof supervisorMachine> | undefined;
  private pool: AgentPool | undefined;
  private actors!: TaskActors;
  private schedules!: ScheduleActors;
  private runs!: AgentRuns;
  private lease!: NodeLease;
  private timers!: TimerLoop;
  private journal!: NodeJournal;
  private notifier: Notifier | null = null;
  private gate!: ClaimGate;
  private lastDataVersion: number | null = null;
  private idleSince: number | null = null;
  private stopping: Promise<void> | undefined;
  private resolveStopped!: () => void;
  /** Resolves once the runner has shut down. */
  readonly stopped = new Promise<void>((resolve) => (this.resolveStopped = resolve));

  private constructor(
    private readonly options: RunnerOptions,
    private readonly store: Store,
    private readonly stopWaiting: AbortController,
  ) {
    this.clock = options.clock ?? systemClock;
    this.timing = { ...defaultRunnerTiming, leaseMs: options.config.leaseMs, ...options.timing };
    this.logDir = logDirOf(options.config.dataDir);
    this.maxWorkers = deriveMaxWorkers(options.config);
    this.bus = options.bus ?? new EventBus();
    this.host = localHostIdentity(options.config.hostId);
    this.sharedWithOtherHosts = options.config.hostId !== undefined || !options.config.databaseUrl.startsWith('file:');
  }

  /** Start a runner; with `autostarted`, returns the live one instead when another already runs here. */
  static async start(options: RunnerOptions): Promise<{ runner: Runner } | { alreadyRunning: NodeRecord }> {
    // A stopping runner stops waiting for an unreachable server: its runs' leases lapse and the next runner
    // recovers them, where waiting would hold up the stop for every write the shutdown makes.
    const stopWaiting = new AbortController();
    const store = await openStore(options.config.databaseUrl, {
      authToken: options.config.databaseToken,
      onWait: (message) => options.logger.warn(message),
      unreachableDeadlineMs,
      stopWaiting: stopWaiting.signal,
    });
    const runner = new Runner(options, store, stopWaiting);
    const now = await store.dbNow();
    const registration = await store.registerNode(
      runner.nodeRecord(),
      options.autostarted ? { isAlive: (other) => isLiveLocalNode(other, now, runner.timing.leaseMs, runner.host) } : undefined,
    );
    if (!registration.registered) {
      await store.close();
      return { alreadyRunning: registration.existing };
    }
    runner.run();
    return { runner };
  }

  private nodeRecord(): NodeRecord {
    return {
      id: this.nodeId,
      host: this.host,
      pid: process.pid,
      pidStart: processStartTime(process.pid),
      dataDir: this.options.config.dataDir,
      version: delegateVersion,
      autostarted: this.options.autostarted,
      startedAt: this.startedAt,
      heartbeatAt: 0,
    };
  }

  private get log(): Logger {
    return this.options.logger;
  }

  /** Send to the supervisor unless it is shutting down (steps may still be finishing). */
  private tell(event: Parameters<Actor<typeof supervisorMachine>['send']>[0]): void {
    if (!this.stopping) this.supervisor?.send(event);
  }

  /** Stop this node's agent of a run (cancelled, timed out, taken over, or the node fenced itself). */
  private revoke(taskId: string, attempt: number, reason: string): void {
    if (!this.runs.has(taskId, attempt)) return;
    this.log.info('run revoked; stopping its agent', { task: taskId, attempt, reason });
    this.journal.node('node:lease-lost', reason, taskId, attempt);
    this.tell({ type: 'TASK_REVOKED', taskId, attempt, reason });
  }

  private run(): void {
    const { store, clock, timing, nodeId } = this;
    this.journal = new NodeJournal(store, clock, this.bus, nodeId, this.log);
    this.gate = new ClaimGate(store, clock, ClaimGate.options(this.options.config), this.log, () => this.tell({ type: 'WAKE' }));
    this.stops.push(async () => this.gate.stop());
    this.actors = new TaskActors(
      store,
      clock,
      nodeId,
      runnerEffects({
        nodeId,
        logDir: this.logDir,
        account: this.options.config.account,
        startRun: (task, attempt) => {
          this.runs.register(task.id, attempt);
          this.log.info('claimed task', { task: task.id, attempt, priority: task.priority });
          const env = this.options.env ?? process.env;
          return planLaunch(task, {
            store,
            config: this.options.config,
            logDir: this.logDir,
            killGraceMs: timing.killGraceMs,
            env,
            agentModules: this.options.agentModules,
            keepaliveMs: this.sharedWithOtherHosts ? timing.leaseMs : null,
          });
        },
        revokeRun: (taskId, attempt, reason) => this.revoke(taskId, attempt, reason),
        wake: () => this.tell({ type: 'WAKE' }),
      }),
      this.bus,
      this.log,
    );
    this.schedules = new ScheduleActors(
      store,
      clock,
      nodeId,
      scheduleEffects({
        wake: () => this.tell({ type: 'WAKE' }),
        cancelTask: (taskId, reason) => this.actors.send(taskId, { type: 'CANCEL', reason }),
        unfinishedTasks: (id) => store.unfinishedScheduleTasks(id),
      }),
      this.bus,
      this.log,
      { newTask: (schedule) => scheduledTask(schedule, this.options.config) },
    );
    this.pool = new AgentPool({ maxThreads: Math.min(2, os.availableParallelism()), concurrentTasksPerWorker: this.maxWorkers });
    // Where other hosts share the database, their front doors read the output from it: ship it as it comes.
    const shipper = this.sharedWithOtherHosts ? new OutputShipper({ store, host: this.host, logDir: this.logDir, log: this.log }) : null;
    this.runs = new AgentRuns({
      store,
      actors: this.actors,
      pool: this.pool,
      clock,
      nodeId,
      logDir: this.logDir,
      log: this.log,
      ...(shipper ? { agentGone: (taskId: string) => shipper.flush(taskId) } : {}),
    });
    if (shipper) this.stops.push(every(clock, timing.shipOutputMs, () => shipper.ship(this.runs.list().map((run) => run.id))));
    this.lease = new NodeLease({
      store,
      clock,
      nodeId,
      leaseMs: timing.leaseMs,
      runs: this.runs,
      log: this.log,
      record: () => this.nodeRecord(),
      revoke: (taskId, attempt, reason) => this.revoke(taskId, attempt, reason),
      fence: (fenced) => {
        this.journal.node(fenced ? 'node:fenced' : 'node:unfenced');
        this.tell({ type: 'FENCE', fenced });
      },
    });
    this.timers = new TimerLoop(store, clock, nodeId, (timers) => this.deliverTimers(timers), this.log, {
      lockMs: timing.leaseMs,
      fallbackMs: Math.max(timing.sweepMs, 1000),
    });
    const runs = this.runs;
    const liveEffects = liveActorEffects(this.log, clock);
    const slot = workerSlotMachine.provide({
      actors: {
        runAgent: fromCallback<AnyEventObject, RunAgentInput>(({ input, sendBack, receive }) => runs.runAgent(input, sendBack, receive)),
        settle: fromPromise<void, SettleInput>(({ input }) => runs.settle(input)),
        handBack: fromPromise<void, HandBackInput>(({ input }) => runs.handBack(input)),
      },
      actions: liveEffects.slot,
    });
    const supervisor = createActor(
      supervisorMachine.provide({
        actors: {
          workerSlot: slot,
          claimNext: fromPromise<ClaimedTask | null, { nodeId: string }>(() => this.claimNext()),
          sampleResources: resourceSampler(this.options.resourceProbe ?? machineProbe, clock),
        },
        actions: liveEffects.supervisor,
      }),
      {
        id: 'supervisor',
        input: {
          nodeId,
          maxWorkers: this.maxWorkers,
          tickMs: timing.leaseMs / 3,
          scaling: {
            cpuThreshold: this.options.config.cpuThreshold,
            memoryReserve: this.options.config.memoryReserve,
            watchMs: timing.sampleMs,
            settleSampleMs: timing.settleSampleMs,
            settleMaxMs: timing.settleMaxMs,
            drainIdleMs: timing.drainIdleMs,
          },
        },
        clock,
        inspect: this.journal.inspect,
      },
    );
    this.supervisor = supervisor;
    supervisor.subscribe({
      error: (error: unknown) => {
        // Without its supervisor this node runs nothing: stop, so leases lapse and other runners take over.
        this.log.error('supervisor failed; shutting down', { error: String(error), stack: (error as Error)?.stack?.split('\n').slice(0, 4).join(' | ') });
        void this.shutdown('supervisor failed');
      },
    });
    // A local commit may have armed a timer or readied a task (a timer's START_DUE or RESUME_DUE, a RELEASE).
    const unsubscribe = this.bus.subscribe((event) => {
      if (event.kind !== 'task' && event.kind !== 'schedule') return;
      // A run that ended changed the day's spend, or put a usage-limit hold on its agent.
      if (event.kind === 'task' && event.from === 'running') this.gate.runEnded(event.to);
      // Only a step into these states arms a timer: the rest only disarm one, and the loop, finding nothing due
      // when it wakes for it, reads again; a look after every step was a query per step.
      if (event.kind === 'schedule' || taskTimerStates.has(event.to)) this.timers.poke();
      if (event.type === 'task:ready') this.tell({ type: 'WAKE' });
    });
    this.stops.push(async () => void unsubscribe());
    // Task ends and pauses this runner committed (its bus carries only its own steps, so no other runner sends them).
    const notifier = createNotifier(this.options.config.notify, (id) => store.getTask(id), this.log.child('notify'), { env: this.options.env ?? process.env });
    if (notifier) {
      this.notifier = notifier;
      // Subscribed until the end of shutdown (close() then ignores events): a run that ends while slots stop is announced too.
      this.bus.subscribe((event) => notifier.onEvent(event));
    }
    supervisor.start();
    this.journal.node('node:started', `pid ${process.pid}, up to ${this.maxWorkers} slots`);
    this.log.info('runner started', { node: nodeId, pid: process.pid, maxWorkers: this.maxWorkers, db: redactDatabaseUrl(this.options.config.databaseUrl) });
    this.lease.start();
    this.timers.start();
    const logged = (what: string, work: () => Promise<unknown>) => async () => {
      try {
        await work();
      } catch (error) {
        this.log.error(`${what} failed`, { error: String(error) });
      }
    };
    // On a server each look is a request (the newest event id): four a second wakes a runner within a quarter
    // second of another host's commit without hammering the server. On a file, writes to it wake the look.
    this.stops.push(watchStoreForCommits(clock, store, timing.pollMs, logged('database watch', () => this.watchDatabase())));
    this.stops.push(every(clock, timing.sweepMs, logged('recovery sweep', () => this.sweep())));
    // On start too: runs of a runner that died on this host are taken over at once, not after the next tick.
    const startupSweep = logged('recovery sweep', () => this.sweep())();
    this.inFlight.add(startupSweep);
    void startupSweep.finally(() => this.inFlight.delete(startupSweep));
    // CPU and memory are read by the supervisor's own `sampleResources` actor; this loop only checks idleness.
    this.stops.push(every(clock, timing.sampleMs, logged('idle check', () => this.checkIdle())));
  }

  private async sweep(): Promise<void> {
    if (this.lease.fenced || this.stopping) return;
    const { store, actors, runs, nodeId, host, timing, log } = this;
    const recovered = await recoverLapsedLeases({
      store,
      actors,
      runs,
      nodeId,
      host,
      leaseMs: timing.leaseMs,
      killGraceMs: timing.killGraceMs,
      // The other host's agent host ends the agent a lease period after its runner stopped following it (at most a
      // third of a lease after the last renewal), plus its kill grace, plus a check interval.
      otherHostGraceMs: Math.ceil(timing.leaseMs / 3) + timing.killGraceMs + 1000,
      logDir: this.logDir,
      log,
      adopt: ({ taskId, attempt, pid, pidStart }) => {
        runs.register(taskId, attempt);
        this.journal.node('node:adopted', `agent pid ${pid}`, taskId, attempt);
        this.adoptions.push({ taskId, attempt, launch: { request: { kind: 'adopt', taskId, attempt, logDir: this.logDir, killGraceMs: timing.killGraceMs, pid, pidStart } } });
      },
      collect: async ({ taskId, attempt }, outcome) => {
        runs.register(taskId, attempt);
        this.journal.node('node:collected', `outcome ${outcome.end}`, taskId, attempt);
        await runs.settle({ taskId, attempt, outcome: { kind: 'exited', detail: { outcome } } });
      },
    });
    if (recovered > 0) this.tell({ type: 'WAKE' });
  }

  /** Schedules that came due together fire in one transaction; every other timer takes its own step. */
  private async deliverTimers(timers: DueTimer[]): Promise<void> {
    const isDue = (timer: DueTimer) => isScheduleId(timer.actorId) && (timer.event as ScheduleEvent).type === 'DUE';
    const due = timers.filter(isDue);
    if (due.length > 0) {
      const schedules = abbreviatedList(due.map((timer) => timer.actorId));
      try {
        const fired = await this.schedules.fireDue(due.map((timer) => ({ scheduleId: timer.actorId, timerId: timer.id })));
        if (fired > 0) this.log.info('schedules fired', { count: fired, schedules });
      } catch (error) {
        // Left locked: they are claimed again once the lock lapses; the other timers go on.
        this.log.error('schedule timers not delivered', { schedules, error: String(error) });
      }
    }
    for (const timer of timers.filter((timer) => !isDue(timer))) {
      try {
        await this.deliverTimer(timer);
      } catch (error) {
        // Left locked: it is claimed again once the lock lapses.
        this.log.error('timer delivery failed', { actor: timer.actorId, timer: timer.key, error: String(error) });
      }
    }
  }

  /** A due durable timer: its event goes to its actor (a task, or a `sched-…` schedule), and the step that takes it deletes it. */
  private async deliverTimer(timer: DueTimer): Promise<void> {
    if (isScheduleId(timer.actorId)) {
      const fired = await this.schedules.send(timer.actorId, timer.event as ScheduleEvent, timer.id);
      if (fired.committed) this.log.info('schedule timer fired', { schedule: timer.actorId, state: fired.schedule.state, next: fired.schedule.nextRunAt });
      return;
    }
    const result = await this.actors.send(timer.actorId, timer.event as TaskEvent, { timerId: timer.id, expect: (task) => timer.attempt === null || task.attempt === timer.attempt });
    if (result.committed) this.log.info('timer fired', { task: timer.actorId, timer: timer.key, state: result.task.state });
  }

  /** Another process committed (a new task, a cancel, a timer): claim, look at timers, drop runs this node lost. */
  private async watchDatabase(): Promise<void> {
    const version = await this.store.dataVersion();
    if (version !== null && version === this.lastDataVersion) return;
    this.lastDataVersion = version;
    this.tell({ type: 'WAKE' });
    this.timers.poke();
    const before = this.runs.list();
    if (before.length === 0) return;
    const owned = await this.store.ownedRuns(this.nodeId);
    for (const run of this.runs.revoked(before, owned)) this.revoke(run.id, run.attempt, 'no longer owned');
  }

  private async claimNext(): Promise<ClaimedTask | null> {
    if (this.stopping || this.lease.fenced) return null;
    // A run already under way on this host needs a slot before new work takes one.
    const adoption = this.adoptions.shift();
    if (adoption) return adoption;
    const result = await this.actors.claim(
      {
        nodeId: this.nodeId,
        host: this.host,
        leaseMs: this.timing.leaseMs,
        logPath: (id) => taskLogPaths(this.logDir, id).text,
        hold: await this.gate.hold(),
        // Pre-assign the agent session id, so even a run cut short by a crash can be resumed.
        extra: (candidate) => ({ sessionId: candidate.sessionId ?? randomUUID() }),
      },
      this.poisoned,
    );
    if (!result?.committed) return null;
    // The claim's startAgent effect registered the run and planned its launch.
    const launch = await result.results.get('startAgent');
    return { taskId: result.task.id, attempt: result.task.attempt, launch };
  }

  private async checkIdle(): Promise<void> {
    const idleExitMs = this.options.config.idleExitMs;
    if (idleExitMs === 0) return;
    const now = this.clock.now();
    // An active schedule keeps its runner up: its next slot must find one to fire.
    if (this.runs.size > 0 || (await this.store.countUnfinished()) > 0 || (await this.store.countActiveSchedules()) > 0) {
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
      this.stopWaiting.abort();
      await Promise.all([...this.stops.splice(0).map((stop) => stop()), this.lease.stop(), this.timers.stop(), ...this.inFlight]);
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
      await Promise.all([this.actors.idle(), this.schedules.idle(), this.runs.idle()]);
      // Before the store closes (notices read their task); bounded, so a dead webhook cannot hold the shutdown.
      await this.notifier?.close(notifyGraceMs);
      this.journal.node('node:stopped', reason);
      await this.journal.close();
      await this.store.removeNode(this.nodeId).catch(() => undefined);
      await this.store.close().catch(() => undefined);
      this.log.info('runner stopped', { node: this.nodeId });
      this.resolveStopped();
    })();
    return this.stopping;
  }
}

/** Up to five ids, then how many more: one log line for a burst of a thousand. */
function abbreviatedList(ids: readonly string[]): string {
  return ids.length <= 5 ? ids.join(',') : `${ids.slice(0, 5).join(',')} and ${ids.length - 5} more`;
}
