/**
 * The store: every read and write of the engine's durable state, as a narrow interface of verbs. No connection
 * or transaction type leaks out. State-changing writes are compare-and-set on the expected state and, for a run,
 * on owner + attempt (fencing), so a node that lost its lease cannot overwrite a newer attempt. Decisions
 * (which state comes next) are made by the statecharts; the store takes them as `TaskStep`s and commits each
 * step together with its history row in one transaction.
 */
import { migrate } from './migrations.js';
import { openSqlDriver, type DriverChoice, type SqlDriver, type SqlExecutor, type SqlValue } from './sql-driver.js';
import { UsageError } from '../errors.js';
import { columnNames, encodeColumn, placeholders, priorityNumber, toCheckpoint, toNode, toOpenRun, toRun, toTask, toTaskEvent } from './rows.js';
import { topologicalOrder } from './task-graph.js';

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
  state: string;
  snapshot: unknown;
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

/** One decided lifecycle step of a task: the statechart's next snapshot plus the domain columns it implies. */
export interface TaskStep {
  /** The event type that caused it (history). */
  event: string;
  snapshot: { value: string; context: unknown };
  set: TaskColumns;
  detail?: string | undefined;
}

/** Guard of a fenced write: the state the step was decided from, and for a run its owner and attempt. */
export interface TaskFence {
  state: string;
  owner?: string | undefined;
  attempt?: number | undefined;
  /** Only if the run's lease lapsed before this time (a takeover must not race a renewal). */
  leaseLapsedBy?: number | undefined;
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
  taskState: string;
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

/** A lifecycle event in a task's history. */
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

/** The store's verbs. */
export interface Store {
  readonly kind: 'embedded' | 'client';
  /** Insert a task and its dependency edges in one transaction; unknown dependencies are a UsageError. */
  insertTask(task: NewTask, dependsOn: readonly string[], now: number, decide: (pendingDeps: number, failedDependency: string | null) => TaskStep): Promise<TaskRecord>;
  /**
   * Insert several tasks and their edges in one transaction. Dependencies may name existing tasks or tasks of
   * the batch; unknown ids and cycles are UsageErrors and nothing is written. Returns the tasks in batch order.
   */
  insertTaskGraph(nodes: readonly NewTaskNode[], now: number, decide: SubmitDecider): Promise<TaskRecord[]>;
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
  claimNextTask(claim: { nodeId: string; host: string; now: number; leaseMs: number; logPath: (taskId: string) => string }, decide: (task: TaskRecord) => TaskStep): Promise<TaskRecord | null>;
  /**
   * Commit one step guarded by `fence`; false (and nothing written) when the task moved on or another node owns
   * it. When the step finishes the task, dependants are decided with `decideDependant` in the same transaction.
   */
  commitTaskStep(
    id: string,
    fence: TaskFence,
    step: TaskStep,
    options: { now: number; nodeId?: string | null; runEnd?: RunEnd; checkpoint?: Checkpoint; decideDependant?: DependantDecider },
  ): Promise<boolean>;
  /** Record the agent process of a run (pid + start time, so a reused pid is never taken for it). */
  recordRunProcess(taskId: string, attempt: number, process: { pid: number; pidStart: number | null; sessionId: string | null }): Promise<void>;
  /** Every run whose row has not ended (the recovery sweep's work list). */
  openRuns(): Promise<OpenRun[]>;
  /**
   * Move a live run to another owner before its agent is killed, so a stalled owner that wakes meanwhile can
   * neither renew it nor settle it. Fenced on owner + attempt and, unless its owner is known dead, a lapsed lease.
   */
  takeOverRun(run: { taskId: string; attempt: number; from: string; to: string; leaseUntil: number; leaseLapsedBy?: number }): Promise<boolean>;
  /** End a run row (cancelled, aborted or lost) that no task step ended. */
  endRun(taskId: string, attempt: number, outcome: string, now: number): Promise<void>;
  /** Paused tasks whose usage-limit reset has come. */
  duePausedTasks(now: number): Promise<TaskRecord[]>;
  /** Remove this node's row only if nothing is unfinished, atomically; false when work arrived meanwhile. */
  removeNodeIfIdle(id: string): Promise<boolean>;
  /** Record the agent session a run reported (so an interrupted run can be resumed in it). */
  recordRunSession(taskId: string, attempt: number, sessionId: string): Promise<void>;
  /**
   * Extend the leases of the runs this node is running (`runs`); returns every run it owns. A run it owns but
   * no longer runs (its slot failed) is not renewed, so the recovery sweep takes it back.
   */
  renewLeases(nodeId: string, leaseUntil: number, runs: ReadonlyArray<{ id: string; attempt: number }>): Promise<Array<{ id: string; attempt: number }>>;
  /** The runs this node owns right now (cheap; used to notice cancels and lost leases). */
  ownedRuns(nodeId: string): Promise<Array<{ id: string; attempt: number }>>;
  /** Register a node. With `exclusiveOnHost`, refuse when another live node of this host and data dir exists. */
  registerNode(node: NodeRecord, exclusiveOnHost?: { isAlive: (other: NodeRecord) => boolean }): Promise<{ registered: true } | { registered: false; existing: NodeRecord }>;
  /** Refresh the heartbeat; false when the row is gone (another node decided this one was dead). */
  heartbeatNode(id: string, now: number): Promise<boolean>;
  removeNode(id: string): Promise<void>;
  listNodes(host?: string): Promise<NodeRecord[]>;
  /** Changes when another connection commits; null where unsupported (poll instead). */
  dataVersion(): Promise<number | null>;
  close(): Promise<void>;
}

/** Write one fenced step and its history row; false when the fence did not match. */
async function applyStep(tx: SqlExecutor, id: string, fence: TaskFence, step: TaskStep, now: number, nodeId: string | null): Promise<boolean> {
  const sets = ['state = ?', 'snapshot = ?', 'updated_at = ?'];
  const args: SqlValue[] = [step.snapshot.value, JSON.stringify(step.snapshot), now];
  for (const key of Object.keys(step.set) as Array<keyof TaskColumns>) {
    sets.push(`${columnNames[key]} = ?`);
    args.push(encodeColumn(key, step.set[key]));
  }
  let where = 'id = ? AND state = ?';
  args.push(id, fence.state);
  if (fence.owner !== undefined) {
    where += ' AND owner = ?';
    args.push(fence.owner);
  }
  if (fence.attempt !== undefined) {
    where += ' AND attempt = ?';
    args.push(fence.attempt);
  }
  if (fence.leaseLapsedBy !== undefined) {
    where += ' AND lease_until < ?';
    args.push(fence.leaseLapsedBy);
  }
  const updated = await tx.all(`UPDATE tasks SET ${sets.join(', ')} WHERE ${where} RETURNING attempt`, args);
  if (updated.length === 0) return false;
  await tx.run(
    `INSERT INTO task_events (task_id, at, event, from_state, to_state, node_id, attempt, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
    [id, now, step.event, fence.state, step.snapshot.value, nodeId, Number(updated[0]?.attempt ?? 0), step.detail ?? null],
  );
  return true;
}

/**
 * Deliver a finished task's outcome to its dependants, transitively for failures, in the caller's transaction.
 * Work is proportional to the edges touched (DESIGN §5), never to the table size.
 */
async function cascadeToDependants(
  tx: SqlExecutor,
  rootId: string,
  rootOutcome: DependencyOutcome,
  decide: DependantDecider,
  now: number,
  nodeId: string | null,
): Promise<void> {
  const pending: Array<{ id: string; outcome: DependencyOutcome }> = [{ id: rootId, outcome: rootOutcome }];
  for (let next = 0; next < pending.length; next++) {
    const { id, outcome } = pending[next]!;
    const rows = await tx.all(
      `SELECT t.* FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = ? AND t.state IN (${placeholders(unfinishedStates.length)})`,
      [id, ...unfinishedStates],
    );
    for (const row of rows) {
      const dependant = toTask(row);
      const step = decide(dependant, id, outcome, rootId);
      if (!step) continue;
      const applied = await applyStep(tx, dependant.id, { state: dependant.state }, step, now, nodeId);
      if (applied && step.snapshot.value === 'failed') pending.push({ id: dependant.id, outcome: 'failed' });
    }
  }
}

class SqlStore implements Store {
  constructor(private readonly db: SqlDriver) {}

  get kind(): 'embedded' | 'client' {
    return this.db.kind;
  }

  async insertTask(task: NewTask, dependsOn: readonly string[], now: number, decide: (pendingDeps: number, failedDependency: string | null) => TaskStep): Promise<TaskRecord> {
    const [inserted] = await this.insertTaskGraph([{ task, dependsOn }], now, (_task, pending, failed) => decide(pending, failed));
    return inserted!;
  }

  async insertTaskGraph(nodes: readonly NewTaskNode[], now: number, decide: SubmitDecider): Promise<TaskRecord[]> {
    const order = topologicalOrder(nodes);
    const batchIds = new Set(nodes.map((node) => node.task.id));
    return this.db.write(async (tx) => {
      const external = [...new Set(nodes.flatMap((node) => node.dependsOn.filter((dep) => !batchIds.has(dep))))];
      const states = new Map<string, string>();
      if (external.length > 0) {
        const rows = await tx.all(`SELECT id, state FROM tasks WHERE id IN (${placeholders(external.length)})`, external);
        for (const row of rows) states.set(String(row.id), String(row.state));
        const unknown = external.find((dep) => !states.has(dep));
        if (unknown) throw new UsageError('not_found', `dependsOn: task ${unknown} does not exist`);
      }
      for (const node of order) {
        const { task } = node;
        const deps = [...new Set(node.dependsOn)];
        let pendingDeps = 0;
        let failedDependency: string | null = null;
        for (const dep of deps) {
          const state = states.get(dep);
          if (state === 'failed' || state === 'cancelled') failedDependency ??= dep;
          else if (state !== 'completed') pendingDeps++;
        }
        const step = decide(task, pendingDeps, failedDependency);
        await tx.run(
          `INSERT INTO tasks (id, prompt, priority, state, snapshot, agent, model, permission_mode, allowed_tools, disallowed_tools,
             working_directory, timeout_ms, max_output_buffer, max_budget_usd, worktree, continue_from, parent_task_id, retry_of,
             pending_deps, start_delay_ms, additional_context, fork_session_id, created_at, updated_at)
           VALUES (${placeholders(24)})`,
          [
            task.id,
            task.prompt,
            priorityNumber[task.priority],
            'queued',
            JSON.stringify(step.snapshot),
            task.agent,
            task.model,
            task.permissionMode,
            JSON.stringify(task.allowedTools),
            JSON.stringify(task.disallowedTools),
            task.workingDirectory,
            task.timeoutMs,
            task.maxOutputBuffer,
            task.maxBudgetUsd,
            task.worktree ? 1 : 0,
            task.continueFrom,
            task.parentTaskId,
            task.retryOf,
            pendingDeps,
            task.startDelayMs,
            task.additionalContext,
            task.forkSessionId,
            now,
            now,
          ],
        );
        for (const dep of deps) await tx.run(`INSERT INTO task_deps (task_id, depends_on) VALUES (?, ?)`, [task.id, dep]);
        // The insert is the `queued` state; the submit step moves it on within the same transaction.
        const applied = await applyStep(tx, task.id, { state: 'queued' }, step, now, null);
        if (!applied) throw new Error(`internal: submit step of ${task.id} did not apply`);
        states.set(task.id, step.snapshot.value);
      }
      const rows = await tx.all(`SELECT * FROM tasks WHERE id IN (${placeholders(nodes.length)})`, nodes.map((node) => node.task.id));
      const byId = new Map(rows.map((row) => [String(row.id), toTask(row)]));
      return nodes.map((node) => byId.get(node.task.id)!);
    });
  }

  async latestCheckpoint(taskId: string): Promise<Checkpoint | null> {
    const rows = await this.db.all(`SELECT * FROM checkpoints WHERE task_id = ? ORDER BY attempt DESC LIMIT 1`, [taskId]);
    const row = rows[0];
    if (!row) return null;
    return toCheckpoint(row);
  }

  async getTask(id: string): Promise<TaskRecord | null> {
    const rows = await this.db.all(`SELECT * FROM tasks WHERE id = ?`, [id]);
    return rows[0] ? toTask(rows[0]) : null;
  }

  async listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    const limit = filter.limit ?? 50;
    const states = filter.states ?? [];
    const where = states.length > 0 ? `WHERE state IN (${placeholders(states.length)})` : '';
    const rows = await this.db.all(`SELECT * FROM tasks ${where} ORDER BY created_at DESC, id DESC LIMIT ?`, [...states, limit]);
    return rows.map(toTask);
  }

  async dependenciesOf(id: string): Promise<string[]> {
    const rows = await this.db.all(`SELECT depends_on FROM task_deps WHERE task_id = ? ORDER BY depends_on`, [id]);
    return rows.map((row) => String(row.depends_on));
  }

  async dependantsOf(id: string): Promise<string[]> {
    const rows = await this.db.all(`SELECT task_id FROM task_deps WHERE depends_on = ? ORDER BY task_id`, [id]);
    return rows.map((row) => String(row.task_id));
  }

  async taskEvents(id: string): Promise<TaskEvent[]> {
    const rows = await this.db.all(`SELECT * FROM task_events WHERE task_id = ? ORDER BY id`, [id]);
    return rows.map(toTaskEvent);
  }

  async taskRuns(id: string): Promise<TaskRun[]> {
    const rows = await this.db.all(`SELECT * FROM task_runs WHERE task_id = ? ORDER BY attempt`, [id]);
    return rows.map(toRun);
  }

  async countUnfinished(): Promise<number> {
    const rows = await this.db.all(`SELECT COUNT(*) AS n FROM tasks WHERE state IN (${placeholders(unfinishedStates.length)})`, [
      ...unfinishedStates,
    ]);
    return Number(rows[0]?.n ?? 0);
  }

  async claimNextTask(
    claim: { nodeId: string; host: string; now: number; leaseMs: number; logPath: (taskId: string) => string },
    decide: (task: TaskRecord) => TaskStep,
  ): Promise<TaskRecord | null> {
    const readySql = `SELECT * FROM tasks WHERE state = 'ready' AND (run_after IS NULL OR run_after <= ?) ORDER BY priority, created_at LIMIT 1`;
    // Most polls find nothing: look first without taking the write lock that every other runner needs too.
    if ((await this.db.all(readySql, [claim.now])).length === 0) return null;
    return this.db.write(async (tx) => {
      const rows = await tx.all(readySql, [claim.now]);
      if (!rows[0]) return null;
      const task = toTask(rows[0]);
      const step = decide(task);
      const attempt = task.attempt + 1;
      const leaseUntil = claim.now + claim.leaseMs;
      step.set = { ...step.set, owner: claim.nodeId, attempt, leaseUntil, startedAt: claim.now };
      const applied = await applyStep(tx, task.id, { state: 'ready' }, step, claim.now, claim.nodeId);
      if (!applied) return null;
      await tx.run(
        `INSERT INTO task_runs (task_id, attempt, node_id, host, log_path, started_at) VALUES (?, ?, ?, ?, ?, ?)`,
        [task.id, attempt, claim.nodeId, claim.host, claim.logPath(task.id), claim.now],
      );
      const claimed = await tx.all(`SELECT * FROM tasks WHERE id = ?`, [task.id]);
      return toTask(claimed[0]!);
    });
  }

  async commitTaskStep(
    id: string,
    fence: TaskFence,
    step: TaskStep,
    options: { now: number; nodeId?: string | null; runEnd?: RunEnd; checkpoint?: Checkpoint; decideDependant?: DependantDecider },
  ): Promise<boolean> {
    const nodeId = options.nodeId ?? null;
    return this.db.write(async (tx) => {
      const applied = await applyStep(tx, id, fence, step, options.now, nodeId);
      if (!applied) return false;
      if (options.runEnd && fence.attempt !== undefined) {
        const end = options.runEnd;
        await tx.run(
          `UPDATE task_runs SET ended_at = ?, outcome = ?, exit_code = ?, output_bytes = ?, cost_usd = ?, session_id = COALESCE(?, session_id)
           WHERE task_id = ? AND attempt = ?`,
          [options.now, end.outcome, end.exitCode, end.outputBytes, end.costUsd, end.sessionId, id, fence.attempt],
        );
      }
      const checkpoint = options.checkpoint;
      if (checkpoint) {
        await tx.run(
          `INSERT OR REPLACE INTO checkpoints (task_id, attempt, created_at, outcome, git_branch, git_sha, git_dirty, last_lines, error, session_id)
           VALUES (${placeholders(10)})`,
          [
            checkpoint.taskId,
            checkpoint.attempt,
            checkpoint.createdAt,
            checkpoint.outcome,
            checkpoint.gitBranch,
            checkpoint.gitSha,
            JSON.stringify(checkpoint.gitDirty),
            JSON.stringify(checkpoint.lastLines),
            checkpoint.error,
            checkpoint.sessionId,
          ],
        );
      }
      const next = step.snapshot.value;
      if (options.decideDependant && (next === 'completed' || next === 'failed' || next === 'cancelled')) {
        await cascadeToDependants(tx, id, next === 'completed' ? 'completed' : 'failed', options.decideDependant, options.now, nodeId);
      }
      return true;
    });
  }

  async recordRunProcess(taskId: string, attempt: number, process: { pid: number; pidStart: number | null; sessionId: string | null }): Promise<void> {
    await this.db.run(`UPDATE task_runs SET pid = ?, pid_start = ?, session_id = COALESCE(?, session_id) WHERE task_id = ? AND attempt = ?`, [
      process.pid,
      process.pidStart,
      process.sessionId,
      taskId,
      attempt,
    ]);
  }

  async openRuns(): Promise<OpenRun[]> {
    const rows = await this.db.all(
      `SELECT r.task_id, r.attempt AS run_attempt, r.node_id, r.host AS run_host, r.pid AS run_pid, r.pid_start AS run_pid_start,
              t.state AS task_state, t.attempt AS task_attempt, t.owner AS task_owner, t.lease_until,
              n.id, n.host, n.pid, n.pid_start, n.data_dir, n.version, n.autostarted, n.started_at, n.heartbeat_at
       FROM task_runs r
       JOIN tasks t ON t.id = r.task_id
       LEFT JOIN nodes n ON n.id = r.node_id
       WHERE r.ended_at IS NULL`,
    );
    return rows.map(toOpenRun);
  }

  async takeOverRun(run: { taskId: string; attempt: number; from: string; to: string; leaseUntil: number; leaseLapsedBy?: number }): Promise<boolean> {
    const lapsed = run.leaseLapsedBy !== undefined ? ' AND lease_until < ?' : '';
    const result = await this.db.write((tx) =>
      tx.run(`UPDATE tasks SET owner = ?, lease_until = ? WHERE id = ? AND state = 'running' AND owner = ? AND attempt = ?${lapsed}`, [
        run.to,
        run.leaseUntil,
        run.taskId,
        run.from,
        run.attempt,
        ...(run.leaseLapsedBy !== undefined ? [run.leaseLapsedBy] : []),
      ]),
    );
    return result.changes > 0;
  }

  async endRun(taskId: string, attempt: number, outcome: string, now: number): Promise<void> {
    await this.db.write((tx) =>
      tx.run(`UPDATE task_runs SET ended_at = ?, outcome = ? WHERE task_id = ? AND attempt = ? AND ended_at IS NULL`, [now, outcome, taskId, attempt]),
    );
  }

  async duePausedTasks(now: number): Promise<TaskRecord[]> {
    const rows = await this.db.all(`SELECT * FROM tasks WHERE state = 'paused' AND resume_at <= ? ORDER BY resume_at LIMIT 500`, [now]);
    return rows.map(toTask);
  }

  async removeNodeIfIdle(id: string): Promise<boolean> {
    const result = await this.db.write((tx) =>
      tx.run(`DELETE FROM nodes WHERE id = ? AND NOT EXISTS (SELECT 1 FROM tasks WHERE state IN (${placeholders(unfinishedStates.length)}))`, [
        id,
        ...unfinishedStates,
      ]),
    );
    return result.changes > 0;
  }

  async recordRunSession(taskId: string, attempt: number, sessionId: string): Promise<void> {
    await this.db.run(`UPDATE task_runs SET session_id = ? WHERE task_id = ? AND attempt = ?`, [sessionId, taskId, attempt]);
  }

  async renewLeases(nodeId: string, leaseUntil: number, runs: ReadonlyArray<{ id: string; attempt: number }>): Promise<Array<{ id: string; attempt: number }>> {
    const rows = await this.db.write(async (tx) => {
      for (const run of runs) {
        await tx.run(`UPDATE tasks SET lease_until = ? WHERE id = ? AND owner = ? AND attempt = ? AND state = 'running'`, [leaseUntil, run.id, nodeId, run.attempt]);
      }
      return tx.all(`SELECT id, attempt FROM tasks WHERE owner = ? AND state = 'running'`, [nodeId]);
    });
    return rows.map((row) => ({ id: String(row.id), attempt: Number(row.attempt) }));
  }

  async ownedRuns(nodeId: string): Promise<Array<{ id: string; attempt: number }>> {
    const rows = await this.db.all(`SELECT id, attempt FROM tasks WHERE owner = ? AND state = 'running'`, [nodeId]);
    return rows.map((row) => ({ id: String(row.id), attempt: Number(row.attempt) }));
  }

  async registerNode(
    node: NodeRecord,
    exclusiveOnHost?: { isAlive: (other: NodeRecord) => boolean },
  ): Promise<{ registered: true } | { registered: false; existing: NodeRecord }> {
    return this.db.write(async (tx) => {
      if (exclusiveOnHost) {
        const others = (await tx.all(`SELECT * FROM nodes WHERE host = ? AND data_dir = ?`, [node.host, node.dataDir])).map(toNode);
        const live = others.find((other) => other.id !== node.id && exclusiveOnHost.isAlive(other));
        if (live) return { registered: false as const, existing: live };
      }
      await tx.run(
        `INSERT INTO nodes (id, host, pid, pid_start, data_dir, version, autostarted, started_at, heartbeat_at) VALUES (${placeholders(9)})`,
        [node.id, node.host, node.pid, node.pidStart, node.dataDir, node.version, node.autostarted ? 1 : 0, node.startedAt, node.heartbeatAt],
      );
      return { registered: true as const };
    });
  }

  async heartbeatNode(id: string, now: number): Promise<boolean> {
    const result = await this.db.write((tx) => tx.run(`UPDATE nodes SET heartbeat_at = ? WHERE id = ?`, [now, id]));
    return result.changes > 0;
  }

  async removeNode(id: string): Promise<void> {
    await this.db.write((tx) => tx.run(`DELETE FROM nodes WHERE id = ?`, [id]));
  }

  async listNodes(host?: string): Promise<NodeRecord[]> {
    const rows = host
      ? await this.db.all(`SELECT * FROM nodes WHERE host = ? ORDER BY started_at`, [host])
      : await this.db.all(`SELECT * FROM nodes ORDER BY started_at`);
    return rows.map(toNode);
  }

  dataVersion(): Promise<number | null> {
    return this.db.dataVersion();
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

/** Open (and migrate) the store for a database URL. */
export async function openStore(url: string, options: { authToken?: string | undefined; driver?: DriverChoice; now?: number } = {}): Promise<Store> {
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
