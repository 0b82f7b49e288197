/**
 * The records of the store: what its verbs take and return (tasks, steps and fences, runs, nodes, timers,
 * events, checkpoints). Plain types and the few constants that describe them; no SQL.
 */
import type { PersistedTask, TaskEvent as TaskMachineEvent, TaskState } from '../../actors/task.machine.js';
import type { ScheduleEvent } from '../../actors/schedule.machine.js';
import type { TokenCounts } from '../agent.js';

/** Task priority as users write it; stored as 0..2 so the claim index sorts P0 first. */
export type Priority = 'P0' | 'P1' | 'P2';
/** The priorities in stored order: index = stored number. */
export const priorities: readonly Priority[] = ['P0', 'P1', 'P2'];

/** Lifecycle states that are not finished. */
export const unfinishedStates = ['queued', 'waiting', 'ready', 'running', 'paused'] as const;
/** Lifecycle states a task never leaves. */
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
  /** The worktree the task runs in (its working directory is in it); null when it runs in place. */
  worktreePath: string | null;
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
  /** The schedule that started it, if one did (its daily budget applies). */
  scheduleId: string | null;
  owner: string | null;
  attempt: number;
  leaseUntil: number | null;
  sessionId: string | null;
  exitCode: number | null;
  /** Cost, turns and tokens summed over the task's runs (every attempt costs money), null while none reported any. */
  costUsd: number | null;
  numTurns: number | null;
  tokens: TokenCounts | null;
  /** The model its latest reporting run said it used (`model` is the one it asked for). */
  modelUsed: string | null;
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
> &
  Partial<Pick<TaskRecord, 'worktreePath'>>;

/** One task of a batch insert; `dependsOn` names existing tasks or tasks earlier or later in the same batch. */
export interface NewTaskNode {
  task: NewTask;
  dependsOn: readonly string[];
  /** A worktree made for this task, stored with it (`task.worktreePath` names it). */
  worktree?: NewWorktree | undefined;
}

/** A git worktree made for a task (`worktree: true`), shared by the tasks that carry its work on. */
export interface WorktreeRecord {
  path: string;
  /** The checkout it was made from, where it is merged. */
  repo: string;
  branch: string;
  /** The branch checked out in `repo` when it was made; null for a detached HEAD. */
  baseBranch: string | null;
  baseSha: string;
  /** The task it was made for. */
  taskId: string;
  createdAt: number;
  mergedAt: number | null;
  removedAt: number | null;
}

/** A worktree as it is first stored. */
export type NewWorktree = Omit<WorktreeRecord, 'mergedAt' | 'removedAt'>;

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
  numTurns: number | null;
  tokens: TokenCounts | null;
  /** The model the run reported, else the one its task asked for. */
  model: string | null;
}

/**
 * Which ended runs to sum and how to group them: not at all, by the quarter-hour they ended in (`bucket`, which a
 * caller folds into days of any time zone), or by their task's agent or schedule.
 */
export interface RunUsageQuery {
  /** Only runs that ended at or after this time (epoch ms). */
  sinceAt?: number | undefined;
  group: 'none' | 'bucket' | 'agent' | 'schedule';
}

/** What the runs of one group used; sums are null when no run of the group reported them. */
export interface RunUsageSum {
  /** The bucket number (its start is `key × usageBucketMs`), agent name or schedule id; null for `none` and for tasks of no schedule. */
  key: string | number | null;
  runs: number;
  costUsd: number | null;
  numTurns: number | null;
  tokens: TokenCounts | null;
}

/** How a run ended, written with the task's final step; what it used is summed onto its task in the same write. */
export interface RunEnd {
  outcome: string;
  exitCode: number | null;
  outputBytes: number;
  costUsd: number | null;
  sessionId: string | null;
  numTurns?: number | null | undefined;
  tokens?: TokenCounts | null | undefined;
  model?: string | null | undefined;
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
/** What a task depends on and what depends on it, ids sorted. */
export interface TaskLinks {
  dependsOn: string[];
  dependants: string[];
}

export interface TaskFilter {
  states?: readonly string[] | undefined;
  limit?: number | undefined;
  /**
   * Only tasks listed after this one in newest-first order (a keyset cursor: the last task of the previous page),
   * so a page deep in a long history costs what the first one does.
   */
  after?: { createdAt: number; id: string } | undefined;
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
  /** Ready tasks that may not start now (usage limits, budgets); none when absent. */
  hold?: ClaimHold;
}

/** Which ready tasks may not be claimed now: those of held agents or stopped schedules, or all of them. */
export interface ClaimHold {
  /** No task starts (the daily budget is spent). */
  all: boolean;
  /** Agents at a usage limit on the claiming runner's account. */
  agents: readonly string[];
  /** Schedules whose daily budget is spent: their tasks wait. */
  schedules: readonly string[];
}

/** An agent and account at a usage limit: none of its tasks start before `until` (epoch ms, injected clock). */
export interface UsageHold {
  agent: string;
  /** Whose limit it is (DELEGATE_ACCOUNT, else derived from the environment). */
  account: string;
  until: number;
  /** The agent's name for the limit (`five_hour`, `seven_day`, …), when it gave one. */
  limitType: string | null;
  /** The task whose run hit the limit. */
  taskId: string | null;
}

/** What the runs that ended since a time cost (US dollars), in all and per schedule. */
export interface DaySpend {
  totalUsd: number;
  bySchedule: Record<string, number>;
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
  /** A usage-limit hold the step puts on its agent and account. */
  usageHold?: UsageHold;
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

/** A chunk of a task's text log a runner ships to the database. */
export interface ShippedChunk {
  taskId: string;
  /** The host whose log file it came from. */
  host: string;
  /** The byte offset in that file the chunk reaches. */
  fileEnd: number;
  /** Bytes of the log it stands for (its text, or a cut marker's share of the cap). */
  bytes: number;
  text: string;
}

/** A stored chunk of a task's output, in order. */
export interface OutputChunk {
  seq: number;
  text: string;
}

/** Where a host's shipping of a task's log stopped, and the task's output bytes in the database. */
export interface OutputMark {
  fileEnd: number;
  bytes: number;
}
