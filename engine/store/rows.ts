/**
 * Rows to records and back: how each table's columns map onto the store's record types. No SQL runs here;
 * the store's modules read rows with it and encode the values they write.
 */
import {
  priorities,
  type ActorKind,
  type ActorSnapshotRow,
  type Checkpoint,
  type DueTimer,
  type EngineEvent,
  type NodeRecord,
  type OpenRun,
  type Priority,
  type TaskColumns,
  type TaskEvent,
  type TaskRecord,
  type TaskRun,
  type WorktreeRecord,
} from './records.js';
import type { PersistedTask, TaskState } from '../../actors/task.machine.js';
import type { TokenCounts } from '../agent.js';
import type { SqlRow, SqlValue } from './sql-driver.js';

/** A priority as stored: 0..2, so the claim index sorts P0 first. */
export const priorityNumber: Record<Priority, number> = { P0: 0, P1: 1, P2: 2 };

/** The `tasks` column of each field a step may set. */
export const columnNames: Record<keyof TaskColumns, string> = {
  failReason: 'fail_reason',
  error: 'error',
  pendingDeps: 'pending_deps',
  owner: 'owner',
  attempt: 'attempt',
  leaseUntil: 'lease_until',
  sessionId: 'session_id',
  exitCode: 'exit_code',
  result: 'result',
  resumeAt: 'resume_at',
  runAfter: 'run_after',
  startedAt: 'started_at',
  endedAt: 'ended_at',
};

/** A nullable text column. */
export function str(value: SqlValue | undefined): string | null {
  return value === null || value === undefined ? null : String(value);
}
/** A nullable number column. */
export function num(value: SqlValue | undefined): number | null {
  return value === null || value === undefined ? null : Number(value);
}
/** A nullable JSON column, parsed. */
export function json(value: SqlValue | undefined): unknown {
  return value === null || value === undefined ? null : JSON.parse(String(value));
}

/** A `tasks` row as a record. */
export function toTask(row: SqlRow): TaskRecord {
  return {
    id: String(row.id),
    prompt: String(row.prompt),
    priority: priorities[Number(row.priority)] ?? 'P2',
    state: String(row.state) as TaskState,
    snapshot: json(row.snapshot) as PersistedTask,
    failReason: str(row.fail_reason),
    error: str(row.error),
    agent: String(row.agent),
    model: str(row.model),
    permissionMode: str(row.permission_mode),
    allowedTools: (json(row.allowed_tools) as string[] | null) ?? [],
    disallowedTools: (json(row.disallowed_tools) as string[] | null) ?? [],
    workingDirectory: String(row.working_directory),
    timeoutMs: Number(row.timeout_ms),
    maxOutputBuffer: Number(row.max_output_buffer),
    maxBudgetUsd: num(row.max_budget_usd),
    worktree: Number(row.worktree) === 1,
    worktreePath: str(row.worktree_path),
    continueFrom: str(row.continue_from),
    parentTaskId: str(row.parent_task_id),
    retryOf: str(row.retry_of),
    pendingDeps: Number(row.pending_deps),
    startDelayMs: Number(row.start_delay_ms),
    runAfter: num(row.run_after),
    additionalContext: str(row.additional_context),
    forkSessionId: str(row.fork_session_id),
    scheduleId: str(row.schedule_id),
    owner: str(row.owner),
    attempt: Number(row.attempt),
    leaseUntil: num(row.lease_until),
    sessionId: str(row.session_id),
    exitCode: num(row.exit_code),
    costUsd: num(row.cost_usd),
    numTurns: num(row.num_turns),
    tokens: tokensOf(row),
    modelUsed: str(row.model_used),
    result: str(row.result),
    resumeAt: num(row.resume_at),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
    startedAt: num(row.started_at),
    endedAt: num(row.ended_at),
  };
}

/** A `nodes` row as a record. */
export function toNode(row: SqlRow): NodeRecord {
  return {
    id: String(row.id),
    host: String(row.host),
    pid: Number(row.pid),
    pidStart: num(row.pid_start),
    dataDir: String(row.data_dir),
    version: String(row.version),
    autostarted: Number(row.autostarted) === 1,
    startedAt: Number(row.started_at),
    heartbeatAt: Number(row.heartbeat_at),
  };
}

/** A `task_runs` row as a record. */
export function toRun(row: SqlRow): TaskRun {
  return {
    taskId: String(row.task_id),
    attempt: Number(row.attempt),
    nodeId: String(row.node_id),
    host: String(row.host),
    pid: num(row.pid),
    pidStart: num(row.pid_start),
    sessionId: str(row.session_id),
    logPath: String(row.log_path),
    outputBytes: Number(row.output_bytes),
    startedAt: Number(row.started_at),
    endedAt: num(row.ended_at),
    outcome: str(row.outcome),
    exitCode: num(row.exit_code),
    costUsd: num(row.cost_usd),
    numTurns: num(row.num_turns),
    tokens: tokensOf(row),
    model: str(row.model),
  };
}

/** The token columns of a `tasks` or `task_runs` row; null when none is known. */
export function tokensOf(row: SqlRow): TokenCounts | null {
  const counts = [row.input_tokens, row.output_tokens, row.cache_creation_tokens, row.cache_read_tokens].map(num);
  if (counts.every((count) => count === null)) return null;
  const [input, output, cacheCreation, cacheRead] = counts.map((count) => count ?? 0) as [number, number, number, number];
  return { input, output, cacheCreation, cacheRead };
}

/** A row of the open-runs join (run, its task, its node if any) as the recovery sweep's record. */
export function toOpenRun(row: SqlRow): OpenRun {
  return {
    taskId: String(row.task_id),
    attempt: Number(row.run_attempt),
    nodeId: String(row.node_id),
    host: String(row.run_host),
    pid: num(row.run_pid),
    pidStart: num(row.run_pid_start),
    taskState: String(row.task_state) as TaskState,
    taskAttempt: Number(row.task_attempt),
    taskOwner: str(row.task_owner),
    leaseUntil: num(row.lease_until),
    node: row.id === null || row.id === undefined ? null : toNode(row),
  };
}

/** An `events` row of a task as a history entry. */
export function toTaskEvent(row: SqlRow): TaskEvent {
  return {
    at: Number(row.at),
    event: String(row.cause),
    from: str(row.from_state),
    to: String(row.to_state),
    nodeId: str(row.node_id),
    attempt: Number(row.attempt ?? 0),
    detail: str(row.detail),
  };
}

/** An `events` row as a record. */
export function toEngineEvent(row: SqlRow): EngineEvent {
  return {
    id: Number(row.id),
    at: Number(row.at),
    actorId: String(row.actor_id),
    kind: String(row.kind) as ActorKind,
    type: String(row.type),
    from: str(row.from_state),
    to: String(row.to_state),
    cause: String(row.cause),
    nodeId: str(row.node_id),
    attempt: num(row.attempt),
    detail: str(row.detail),
  };
}

/** An `actor_snapshots` row as a record. */
export function toActorSnapshot(row: SqlRow): ActorSnapshotRow {
  return {
    actorId: String(row.actor_id),
    kind: String(row.kind) as ActorKind,
    nodeId: str(row.node_id),
    snapshot: String(row.snapshot),
    updatedAt: Number(row.updated_at),
  };
}

/** A claimed `timers` row as a record. */
export function toDueTimer(row: SqlRow): DueTimer {
  return {
    id: Number(row.id),
    actorId: String(row.actor_id),
    key: String(row.key),
    event: json(row.event) as DueTimer['event'],
    dueAt: Number(row.due_at),
    attempt: num(row.attempt),
  };
}

/** A `checkpoints` row as a record. */
export function toCheckpoint(row: SqlRow): Checkpoint {
  return {
    taskId: String(row.task_id),
    attempt: Number(row.attempt),
    createdAt: Number(row.created_at),
    outcome: String(row.outcome),
    gitBranch: str(row.git_branch),
    gitSha: str(row.git_sha),
    gitDirty: (json(row.git_dirty) as string[] | null) ?? [],
    lastLines: (json(row.last_lines) as string[] | null) ?? [],
    error: str(row.error),
    sessionId: str(row.session_id),
  };
}

/** The SQL value of a step column. */
export function encodeColumn(value: unknown): SqlValue {
  if (value === undefined || value === null) return null;
  return value as SqlValue;
}

/** `?, ?, …` for `count` values. */
export function placeholders(count: number): string {
  return Array.from({ length: count }, () => '?').join(', ');
}

/** A `worktrees` row as a record. */
export function toWorktree(row: SqlRow): WorktreeRecord {
  return {
    path: String(row.path),
    repo: String(row.repo),
    branch: String(row.branch),
    baseBranch: str(row.base_branch),
    baseSha: String(row.base_sha),
    taskId: String(row.task_id),
    createdAt: Number(row.created_at),
    mergedAt: num(row.merged_at),
    removedAt: num(row.removed_at),
  };
}
