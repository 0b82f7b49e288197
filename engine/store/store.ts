/**
 * The store: every read and write of the engine's durable state, as a narrow interface of verbs. No connection
 * or transaction type leaks out. State-changing writes are compare-and-set on the expected state and, for a run,
 * on owner + attempt (fencing), so a node that lost its lease cannot overwrite a newer attempt. Decisions
 * (which state comes next) are made by the statecharts; the store takes them as `TaskStep`s and commits each
 * step together with its history row in one transaction.
 */
import type { PersistedTask, TaskEvent as TaskMachineEvent, TaskState } from '../../actors/task.machine.js';
import type { ScheduleEvent } from '../../actors/schedule.machine.js';
import type { NewSchedule, ScheduleFence, ScheduleFilter, ScheduleFiring, ScheduleRecord, ScheduleRunRecord, ScheduleStep } from './schedule-records.js';
import { migrate } from './migrations.js';
import { openSqlDriver, type DriverOptions } from './sql-driver.js';
import { SqlStore } from './sql-store.js';

/** Task priority as users write it; stored as 0..2 so the claim index sorts P0 first. */
export type Priority = 'P0' | 'P1' | 'P2';
export const priorities: readonly Priority[] = ['P0', 'P1', 'P2'];

/** Lifecycle states that are not finished. */
export const unfinishedStates = ['queued', 'waiting', 'ready', 'running', 'paused'] as const;
export const finishedStates = ['completed', 'failed', 'cancelled'] as const;

/** A task as the store holds it. `snapshot` is the persisted statechart ({ value, context }). */
export interface TaskRecord {
  id: string;
  prompt: string;
  priority: Priority;
  state: TaskState;
  snapshot: PersistedTask;
  failReason: string | null;
  error: string | null;
  agent: string;
  model: string | null;
  permissionMode: string | null;
  allowedTools: string[];
  disallowedTools: string[];
  workingDirectory: string;
  timeoutMs: number;
  maxOutputBuffer: number;
  maxBudgetUsd: number | null;
  worktree: boolean;
  continueFrom: string | null;
  parentTaskId: string | null;
  retryOf: string | null;
  pendingDeps: number;
  /** A pipeline step waits this long after its dependencies complete. */
  startDelayMs: number;
  /** Ready, but not to be claimed before this time (epoch ms). */
  runAfter: number | null;
  /** Extra instructions of a resumed task (ResumeTask additionalContext). */
  additionalContext: string | null;
  /** A resumed task's agent session starts as a fork of this one. */
  forkSessionId: string | null;
  owner: string | null;
  attempt: number;
  leaseUntil: number | null;
  sessionId: string | null;
  exitCode: number | null;
  costUsd: number | null;
  numTurns: number | null;
  usage: unknown;
  result: string | null;
  resumeAt: number | null;
  createdAt: number;
  updatedAt: number;
  startedAt: number | null;
  endedAt: number | null;
}

/** Columns a step may set besides state and snapshot. */
export type TaskColumns = Partial<
  Pick<
    TaskRecord,
    | 'failReason'
    | 'error'
    | 'pendingDeps'
    | 'owner'
    | 'attempt'
    | 'leaseUntil'
    | 'sessionId'
    | 'exitCode'
    | 'costUsd'
    | 'numTurns'
    | 'usage'
    | 'result'
    | 'resumeAt'
    | 'runAfter'
    | 'startedAt'
    | 'endedAt'
  >
>;

/** The event a durable timer delivers: a task's or a schedule's (routed by the actor id's prefix). */
export type TimerEvent = TaskMachineEvent | ScheduleEvent;

/** A durable timer a step arms (its statechart's delayed `raise`) or cancels (its `cancel`), keyed per actor. */
export type TimerChange = { kind: 'arm'; key: string; event: TimerEvent; dueAt: number } | { kind: 'disarm'; key: string };

/** One decided lifecycle step of a task: the statechart's next snapshot plus the domain columns it implies. */
export interface TaskStep {
  /** The event type that caused it (history). */
  event: string;
  snapshot: PersistedTask;
  set: TaskColumns;
  /** Durable timers written in the same transaction. */
  timers?: TimerChange[];
  detail?: string | undefined;
}

/** Guard of a fenced write: the state the step was decided from, and for a run its owner and attempt. */
export interface TaskFence {
  state: string;
  owner?: string | undefined;
  attempt?: number | undefined;
}

/** A due timer, claimed by one node for delivery. */
export interface DueTimer {
  id: number;
  actorId: string;
  key: string;
  event: TimerEvent;
  dueAt: number;
  /** The actor's attempt when the timer was armed (a task's), or null. */
  attempt: number | null;
}

/** Which kind of actor an event is about. */
export type ActorKind = 'task' | 'slot' | 'node' | 'supervisor' | 'schedule';

/** One event of the stream (DESIGN §9): a committed transition of one actor. */
export interface EngineEvent {
  /** Position in the stream; 0 for an in-process event not yet written. */
  id: number;
  at: number;
  actorId: string;
  kind: ActorKind;
  /** `kind:what`, e.g. `task:running`, `slot:busy`, `node:fenced`. */
  type: string;
  from: string | null;
  to: string;
  /** The statechart event that caused it (`CLAIM`, `TIMEOUT`, …). */
  cause: string;
  nodeId: string | null;
  attempt: number | null;
  detail: string | null;
}

/** An event to append. */
export type NewEngineEvent = Omit<EngineEvent, 'id'>;

/** Which events to read. */
export interface EventFilter {
  actorId?: string | undefined;
  /** Only events at or after this time (epoch ms). */
  sinceAt?: number | undefined;
}

/** The latest snapshot of a node-local actor, for the inspector. */
export interface ActorSnapshotRow {
  actorId: string;
  kind: ActorKind;
  nodeId: string | null;
  snapshot: string;
  updatedAt: number;
}

/** A run whose row has not ended, with its task and its node, as the recovery sweep judges it. */
export interface OpenRun {
  taskId: string;
  attempt: number;
  nodeId: string;
  /** The host identity the run's agent ran on. */
  host: string;
  pid: number | null;
  pidStart: number | null;
  /** The task as it is now: is this run still its live run? */
  taskState: TaskState;
  taskAttempt: number;
  taskOwner: string | null;
  leaseUntil: number | null;
  /** The run's node row, if it still exists. */
  node: NodeRecord | null;
}

/** What a new task is created with. */
export type NewTask = Pick<
  TaskRecord,
  | 'id'
  | 'prompt'
  | 'priority'
  | 'agent'
  | 'model'
  | 'permissionMode'
  | 'allowedTools'
  | 'disallowedTools'
  | 'workingDirectory'
  | 'timeoutMs'
  | 'maxOutputBuffer'
  | 'maxBudgetUsd'
  | 'worktree'
  | 'continueFrom'
  | 'parentTaskId'
  | 'retryOf'
  | 'startDelayMs'
  | 'additionalContext'
  | 'forkSessionId'
>;

/** One task of a batch insert; `dependsOn` names existing tasks or tasks earlier or later in the same batch. */
export interface NewTaskNode {
  task: NewTask;
  dependsOn: readonly string[];
}

/** Decides the step that creates a task, given its unfinished dependencies and a failed one if any. */
export type SubmitDecider = (task: NewTask, pendingDeps: number, failedDependency: string | null) => TaskStep;

/** What a finished attempt left behind (SPEC §8). */
export interface Checkpoint {
  taskId: string;
  attempt: number;
  createdAt: number;
  outcome: string;
  gitBranch: string | null;
  gitSha: string | null;
  gitDirty: string[];
  lastLines: string[];
  error: string | null;
  sessionId: string | null;
}

/** How a dependency's end reaches its dependants. */
export type DependencyOutcome = 'completed' | 'failed';

/** Decides the step of a dependant when one of its dependencies ends; null when the event does not apply. */
export type DependantDecider = (dependant: TaskRecord, dependencyId: string, outcome: DependencyOutcome, rootTaskId: string) => TaskStep | null;

/** One attempt of a task. */
export interface TaskRun {
  taskId: string;
  attempt: number;
  nodeId: string;
  host: string;
  pid: number | null;
  pidStart: number | null;
  sessionId: string | null;
  logPath: string;
  outputBytes: number;
  startedAt: number;
  endedAt: number | null;
  outcome: string | null;
  exitCode: number | null;
  costUsd: number | null;
}

/** How a run ended, written with the task's final step. */
export interface RunEnd {
  outcome: string;
  exitCode: number | null;
  outputBytes: number;
  costUsd: number | null;
  sessionId: string | null;
}

/** A lifecycle event in a task's history (its `task:*` events). */
export interface TaskEvent {
  at: number;
  event: string;
  from: string | null;
  to: string;
  nodeId: string | null;
  attempt: number;
  detail: string | null;
}

/** An engine process registered in the database. */
export interface NodeRecord {
  id: string;
  host: string;
  pid: number;
  pidStart: number | null;
  dataDir: string;
  version: string;
  autostarted: boolean;
  startedAt: number;
  heartbeatAt: number;
}

/** Task list filter. */
export interface TaskFilter {
  states?: readonly string[] | undefined;
  limit?: number | undefined;
}

/** What a runner claims a task with: who it is, when, for how long (database clock), and where the run's log goes. */
export interface TaskClaim {
  nodeId: string;
  host: string;
  now: number;
  leaseMs: number;
  logPath: (taskId: string) => string;
  /** Ready tasks not to claim (their snapshot cannot be restored). */
  skip?: ReadonlySet<string>;
}

/** What a committed step carries besides itself: the run it ends, the checkpoint, how dependants are decided. */
export interface CommitOptions {
  now: number;
  nodeId?: string | null;
  /** How the run ended; a step that leaves `running` ends the run row in any case. */
  runEnd?: RunEnd;
  checkpoint?: Checkpoint;
  decideDependant?: DependantDecider;
  /** The timer this step consumes: deleted in the same transaction, or nothing is written (it fired elsewhere). */
  timerId?: number;
}

/** A run's agent process (pid + start time, so a reused pid is never taken for it). */
export interface RunProcess {
  pid: number;
  pidStart: number | null;
  sessionId: string | null;
}

/** A run moved from one owner to another, fenced on its owner and attempt. */
export interface RunTakeover {
  taskId: string;
  attempt: number;
  from: string;
  to: string;
  /** The new owner's lease, from the database's clock. */
  leaseMs: number;
  /** Only if the run's lease has lapsed by the database's clock (a takeover must not race a renewal). */
  requireLapsed: boolean;
}

/** A running task a node owns, by id and attempt. */
export interface OwnedRun {
  id: string;
  attempt: number;
}

/** How registerNode tells whether another node of the same host and data dir is alive. */
export interface HostExclusivity {
  isAlive: (other: NodeRecord) => boolean;
}

/** Registered, or refused because of a live node of the same host and data dir. */
export type NodeRegistration = { registered: true } | { registered: false; existing: NodeRecord };

/** The store's verbs. */
export interface Store {
  readonly kind: 'embedded' | 'client';
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
  taskEvents(id: string): Promise<TaskEvent[]>;
  taskRuns(id: string): Promise<TaskRun[]>;
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
  /** Take over a live run and its run row for a node that will follow its still-running agent (adoption). */
  adoptRun(run: RunTakeover): Promise<boolean>;
  /** End a run row (cancelled, aborted or lost) that no task step ended. */
  endRun(taskId: string, attempt: number, outcome: string, now: number): Promise<void>;
  /** Remove this node's row only if nothing is unfinished, atomically; false when work arrived meanwhile. */
  removeNodeIfIdle(id: string): Promise<boolean>;
  /** Record the agent session a run reported (so an interrupted run can be resumed in it). */
  recordRunSession(taskId: string, attempt: number, sessionId: string): Promise<void>;
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
  /** The id of the newest event (0 when there is none). */
  lastEventId(): Promise<number>;
  /** Append node-local actors' events and keep their latest snapshots, in one transaction. */
  recordNodeActors(events: readonly NewEngineEvent[], snapshots: readonly ActorSnapshotRow[]): Promise<void>;
  /** Insert a schedule with its first step (its first timer) in one transaction. */
  insertSchedule(schedule: NewSchedule, step: ScheduleStep, now: number): Promise<{ schedule: ScheduleRecord; events: EngineEvent[] }>;
  getSchedule(id: string): Promise<ScheduleRecord | null>;
  /** Newest schedules first. */
  listSchedules(filter?: ScheduleFilter): Promise<ScheduleRecord[]>;
  /**
   * Commit one schedule step guarded by `fence`, with its event, its timers, the timer it consumes and, for a
   * firing, its run rows and its task, all in one transaction. Null (nothing written) when the schedule moved on,
   * the timer is gone, or another node already recorded one of the slots.
   */
  commitScheduleStep(id: string, fence: ScheduleFence, step: ScheduleStep, options: { now: number; nodeId?: string | null; timerId?: number; firing?: ScheduleFiring }): Promise<EngineEvent[] | null>;
  /** A schedule's run history, newest slot first, with each task's state. */
  scheduleRuns(id: string, limit: number): Promise<ScheduleRunRecord[]>;
  /** Ids of a schedule's tasks that are not finished. */
  unfinishedScheduleTasks(id: string): Promise<string[]>;
  /** How many schedules are active (a runner with any must not idle out). */
  countActiveSchedules(): Promise<number>;
  /** Changes when another connection commits; null where unsupported (poll instead). */
  dataVersion(): Promise<number | null>;
  close(): Promise<void>;
}

/**
 * Open (and migrate) the store for a database URL. Opening an up-to-date database does not write, so it does not
 * wait for another process's writer. Fails with a StoreError (`not_a_database`, `newer_schema`, `locked`) that names it.
 */
export async function openStore(url: string, options: DriverOptions & { now?: number } = {}): Promise<Store> {
  const driver = openSqlDriver(url, options);
  try {
    await driver.open();
    await migrate(driver, options.now ?? Date.now());
  } catch (error) {
    await driver.close().catch(() => undefined);
    throw error;
  }
  return new SqlStore(driver);
}
