/**
 * The store: every read and write of the engine's durable state, as a narrow interface of verbs. No connection
 * or transaction type leaks out. State-changing writes are compare-and-set on the expected state and, for a run,
 * on owner + attempt (fencing), so a node that lost its lease cannot overwrite a newer attempt. Decisions
 * (which state comes next) are made by the statecharts; the store takes them as `TaskStep`s and commits each
 * step together with its history row in one transaction.
 */
import { migrate } from './migrations.js';
import { openSqlDriver, type DriverOptions } from './sql-driver.js';
import { SqlStore } from './sql-store.js';
import type {
  ActorSnapshotRow,
  Checkpoint,
  CommitOptions,
  DaySpend,
  DueTimer,
  EngineEvent,
  EventFilter,
  HostExclusivity,
  NewEngineEvent,
  NewTask,
  NewTaskNode,
  NodeRecord,
  NodeRegistration,
  OpenRun,
  OutputChunk,
  OutputMark,
  OwnedRun,
  RunProcess,
  RunUsageQuery,
  RunUsageSum,
  RunTakeover,
  ShippedChunk,
  SubmitDecider,
  TaskClaim,
  TaskEvent,
  TaskFence,
  TaskFilter,
  TaskLinks,
  TaskRecord,
  TaskRun,
  TaskStep,
  WorktreeRecord,
  UsageHold,
} from './records.js';

export * from './records.js';
export { usageBucketMs } from './usage.js';
import type { NewSchedule, ScheduleFilter, ScheduleRecord, ScheduleRunRecord, ScheduleStep, ScheduleStepCommit } from './schedule-records.js';

/** The store's verbs. */
export interface Store {
  readonly kind: 'embedded' | 'client';
  /** The database's local file (which every commit writes); null in memory and on a server. */
  readonly file: string | null;
  /** Insert a task and its dependency edges in one transaction; unknown dependencies are a UsageError. */
  insertTask(task: NewTask, dependsOn: readonly string[], now: number, decide: (pendingDeps: number, failedDependency: string | null) => TaskStep): Promise<TaskRecord>;
  /**
   * Insert several tasks and their edges in one transaction. Dependencies may name existing tasks or tasks of
   * the batch; unknown ids and cycles are UsageErrors and nothing is written. Returns the tasks in batch order
   * and the events of their submit steps.
   */
  insertTaskGraph(nodes: readonly NewTaskNode[], now: number, decide: SubmitDecider): Promise<{ tasks: TaskRecord[]; events: EngineEvent[] }>;
  /** The checkpoint of a task's latest finished attempt. */
  latestCheckpoint(taskId: string): Promise<Checkpoint | null>;
  getTask(id: string): Promise<TaskRecord | null>;
  listTasks(filter?: TaskFilter): Promise<TaskRecord[]>;
  dependenciesOf(id: string): Promise<string[]>;
  dependantsOf(id: string): Promise<string[]>;
  /** Both, for many tasks in two queries (a page of views): every id of `ids` has an entry. */
  taskLinks(ids: readonly string[]): Promise<Map<string, TaskLinks>>;
  taskEvents(id: string): Promise<TaskEvent[]>;
  taskRuns(id: string): Promise<TaskRun[]>;
  /** Cost, turns and tokens of ended runs, summed per group (a read on the runs' end-time index). */
  sumRunUsage(query: RunUsageQuery): Promise<RunUsageSum[]>;
  /** Count tasks that are not finished (anywhere, any owner). */
  countUnfinished(): Promise<number>;
  /**
   * Claim the best ready task (P0 first, then oldest) for `nodeId` in one write: the step from `decide` is
   * committed guarded by `state = 'ready'`, with owner, attempt and lease, and the run row is created.
   */
  claimNextTask(claim: TaskClaim, decide: (task: TaskRecord) => TaskStep | null): Promise<{ task: TaskRecord; events: EngineEvent[] } | null>;
  /**
   * Commit one step guarded by `fence` with its event, its timers and, when it finishes the task, its dependants'
   * steps (decided with `decideDependant`), all in one transaction. Returns the events written, or null (and
   * nothing written) when the task moved on, another node owns it, or the consumed timer is gone.
   */
  commitTaskStep(id: string, fence: TaskFence, step: TaskStep, options: CommitOptions): Promise<EngineEvent[] | null>;
  /** Record the agent process of a run (pid + start time, so a reused pid is never taken for it). */
  recordRunProcess(taskId: string, attempt: number, process: RunProcess): Promise<void>;
  /** Every run whose row has not ended (the recovery sweep's work list), and the database's clock to judge leases by. */
  openRuns(): Promise<{ now: number; runs: OpenRun[] }>;
  /**
   * Move a live run to another owner before its agent is killed, so a stalled owner that wakes meanwhile can
   * neither renew it nor settle it. Fenced on owner + attempt and, unless its owner is known dead, a lapsed lease.
   */
  takeOverRun(run: RunTakeover): Promise<boolean>;
  /** End a run row (cancelled, aborted or lost) that no task step ended. */
  endRun(taskId: string, attempt: number, outcome: string, now: number): Promise<void>;
  /** Remove this node's row only if nothing is unfinished, atomically; false when work arrived meanwhile. */
  removeNodeIfIdle(id: string): Promise<boolean>;
  /** Record the agent session a run reported (so an interrupted run can be resumed in it). */
  recordRunSession(taskId: string, attempt: number, sessionId: string): Promise<void>;
  /** Append chunks of tasks' output (one transaction). */
  appendOutput(chunks: readonly ShippedChunk[]): Promise<void>;
  /** Where `host` stopped shipping a task's log, and how many output bytes of the task the database holds. */
  outputMark(taskId: string, host: string): Promise<OutputMark>;
  /** A task's output chunks after `afterSeq`, oldest first. */
  outputAfter(taskId: string, afterSeq: number, limit: number): Promise<OutputChunk[]>;
  /**
   * Extend the leases of the runs this node is running (`runs`); returns every run it owns. A run it owns but
   * no longer runs (its slot failed) is not renewed, so the recovery sweep takes it back.
   */
  renewLeases(nodeId: string, leaseMs: number, runs: readonly OwnedRun[]): Promise<OwnedRun[]>;
  /** The runs this node owns right now (cheap; used to notice cancels and lost leases). */
  ownedRuns(nodeId: string): Promise<OwnedRun[]>;
  /** Register a node. With `exclusiveOnHost`, refuse when another live node of this host and data dir exists. */
  registerNode(node: NodeRecord, exclusiveOnHost?: HostExclusivity): Promise<NodeRegistration>;
  /** Refresh the heartbeat (database clock); false when the row is gone (another node decided this one was dead). */
  heartbeatNode(id: string): Promise<boolean>;
  removeNode(id: string): Promise<void>;
  listNodes(host?: string): Promise<NodeRecord[]>;
  /** The database's clock (epoch ms): the one time source of leases and heartbeats across hosts. */
  dbNow(): Promise<number>;
  /** When the next timer may be delivered (its due time, or when another node's claim of it lapses); null when none. */
  nextTimerDueAt(): Promise<number | null>;
  /** Lock up to `limit` due timers for `nodeId` for `lockMs`, so no other node delivers them meanwhile. */
  claimDueTimers(nodeId: string, now: number, lockMs: number, limit: number): Promise<DueTimer[]>;
  /** Delete a timer whose event its actor refused (it moved on). */
  dropTimer(id: number): Promise<void>;
  /** Whether a timer is still armed. */
  timerExists(id: number): Promise<boolean>;
  /** Events after `afterId`, oldest first. */
  eventsAfter(afterId: number, filter: EventFilter, limit: number): Promise<EngineEvent[]>;
  /** The newest `limit` events of one actor, oldest first. */
  recentActorEvents(actorId: string, limit: number): Promise<EngineEvent[]>;
  /** The id of the newest event (0 when there is none). */
  lastEventId(): Promise<number>;
  /** The latest snapshots of the node-local actors (supervisors, slots) of registered nodes. */
  liveActorSnapshots(): Promise<ActorSnapshotRow[]>;
  /** Append node-local actors' events and keep their latest snapshots, in one transaction. */
  recordNodeActors(events: readonly NewEngineEvent[], snapshots: readonly ActorSnapshotRow[]): Promise<void>;
  /** Insert a schedule with its first step (its first timer) in one transaction. */
  insertSchedule(schedule: NewSchedule, step: ScheduleStep, now: number): Promise<{ schedule: ScheduleRecord; events: EngineEvent[] }>;
  getSchedule(id: string): Promise<ScheduleRecord | null>;
  /** Newest schedules first. */
  listSchedules(filter?: ScheduleFilter): Promise<ScheduleRecord[]>;
  /** The schedules of `ids` that exist, in no particular order. */
  getSchedules(ids: readonly string[]): Promise<ScheduleRecord[]>;
  /**
   * Commit schedule steps in one transaction, each guarded by its fence, with its event, its timers, the timer it
   * consumes and, for a firing, its run rows and its task. All of them or none: null (nothing written) when any
   * one's schedule moved on, its timer is gone, or another node already recorded one of its slots.
   */
  commitScheduleSteps(commits: readonly ScheduleStepCommit[]): Promise<EngineEvent[][] | null>;
  /** A schedule's run history, newest slot first, with each task's state. */
  scheduleRuns(id: string, limit: number): Promise<ScheduleRunRecord[]>;
  /** Ids of a schedule's tasks that are not finished. */
  unfinishedScheduleTasks(id: string): Promise<string[]>;
  /** Which of the schedules `ids` have a task that is not finished. */
  busySchedules(ids: readonly string[]): Promise<string[]>;
  /** How many schedules are active (a runner with any must not idle out). */
  countActiveSchedules(): Promise<number>;
  /** A worktree by path. */
  getWorktree(path: string): Promise<WorktreeRecord | null>;
  /** Worktrees not yet removed, newest first. */
  listWorktrees(): Promise<WorktreeRecord[]>;
  /** The tasks that run in a worktree, oldest first. */
  worktreeTasks(path: string): Promise<Array<{ id: string; state: string }>>;
  /** Record that a worktree was merged or removed. */
  markWorktree(path: string, what: 'merged' | 'removed', at: number): Promise<void>;
  /** Usage-limit holds in force at `now` (injected clock), every account's, soonest to end first. */
  usageHolds(now: number): Promise<UsageHold[]>;
  /** What the runs that ended at or after `since` cost, in all and per schedule (a day's spend for budgets). */
  spendSince(since: number): Promise<DaySpend>;
  /** Daily budgets (US dollars) of the schedules that have one, by schedule id. */
  scheduleBudgets(): Promise<Record<string, number>>;
  /**
   * Changes when another connection commits: `PRAGMA data_version` on a file; on a server the newest event id
   * (which this process's own commits change too). Null only from a driver that has neither.
   */
  dataVersion(): Promise<number | null>;
  close(): Promise<void>;
}

/**
 * Open (and migrate) the store for a database URL. Opening an up-to-date database does not write, so it does not
 * wait for another process's writer. Fails with a StoreError (`not_a_database`, `newer_schema`, `locked`,
 * `unreachable`) that names it. Every statement of the store waits for an unreachable server for up to
 * `unreachableDeadlineMs` (default 10 s, what a front door waits).
 */
export async function openStore(url: string, options: DriverOptions & { now?: number } = {}): Promise<Store> {
  const driver = await openSqlDriver(url, options);
  try {
    await driver.open();
    await migrate(driver, options.now ?? Date.now());
  } catch (error) {
    await driver.close().catch(() => undefined);
    throw error;
  }
  return new SqlStore(driver);
}
