/**
 * SQL of the `tasks` and `task_deps` tables: inserting a batch, reading tasks, and committing fenced steps with
 * everything a step writes in its transaction — its event, its timers, the end of the run it leaves, and the
 * cascade to dependants. Functions run on the executor they are given; SqlStore picks the transaction.
 */
import { UsageError } from '../errors.js';
import { insertCheckpoint } from './checkpoints.js';
import { upsertUsageHold } from './holds.js';
import { dbNowSql } from './db-clock.js';
import { appendEvents } from './events.js';
import { columnNames, encodeColumn, placeholders, priorityNumber, toTask, toTaskEvent } from './rows.js';
import { insertRun, recordRunEnd } from './runs.js';
import { applyTimerChanges, consumeTimer } from './timers.js';
import { insertWorktree } from './worktrees.js';
import { together, type SqlExecutor, type SqlRow, type SqlValue } from './sql-driver.js';
import {
  unfinishedStates,
  type CommitOptions,
  type DependantDecider,
  type DependencyOutcome,
  type EngineEvent,
  type NewTask,
  type NewTaskNode,
  type SubmitDecider,
  type ClaimHold,
  type TaskClaim,
  type TaskColumns,
  type TaskEvent,
  type TaskFence,
  type TaskFilter,
  type TaskLinks,
  type TaskRecord,
  type TaskStep,
  type RunEnd,
} from './records.js';

/**
 * Write one fenced step with its event and its timers, and end the run row of its attempt when the step knows
 * how the agent ended (`runEnd`). A step that leaves `running` without knowing (a cancel, a timeout) leaves
 * the run open: its agent may still be alive, and whoever sees it gone ends the run (its runner, or the
 * recovery sweep). A claim (`leaseMs`) starts the lease by the database's clock in the same UPDATE, and gets
 * the whole row back. Null when the fence did not match. `also` makes the caller's own statements once the fence
 * matched; they and the step's other writes are sent together (see `together`).
 */
export async function applyStep(
  tx: SqlExecutor,
  id: string,
  fence: TaskFence,
  step: TaskStep,
  now: number,
  nodeId: string | null,
  write: { runEnd?: RunEnd | undefined; leaseMs?: number; also?: () => ReadonlyArray<Promise<unknown>> } = {},
): Promise<{ event: EngineEvent; row: SqlRow } | null> {
  const sets = ['state = ?', 'snapshot = ?', 'updated_at = ?'];
  const args: SqlValue[] = [step.snapshot.value, JSON.stringify(step.snapshot), now];
  for (const key of Object.keys(step.set) as Array<keyof TaskColumns>) {
    sets.push(`${columnNames[key]} = ?`);
    args.push(encodeColumn(step.set[key]));
  }
  if (write.leaseMs !== undefined) {
    sets.push(`lease_until = ${dbNowSql} + ?`);
    args.push(write.leaseMs);
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
  const [row] = await tx.all(`UPDATE tasks SET ${sets.join(', ')} WHERE ${where} RETURNING ${write.leaseMs !== undefined ? '*' : 'attempt'}`, args);
  if (!row) return null;
  const attempt = Number(row.attempt ?? 0);
  // The step's event first: events that `also` appends (a cascade's) come after it in the stream.
  const [event] = await together([
    appendStepEvent(tx, id, fence.state, step, now, nodeId, attempt),
    step.timers?.length ? applyTimerChanges(tx, id, attempt, step.timers, now) : Promise.resolve(),
    write.runEnd ? recordRunEnd(tx, id, attempt, write.runEnd, now) : Promise.resolve(),
    ...(write.also?.() ?? []),
  ]);
  return { event, row };
}

/** The event of a committed step, appended in its transaction. */
async function appendStepEvent(tx: SqlExecutor, id: string, from: string, step: TaskStep, now: number, nodeId: string | null, attempt: number): Promise<EngineEvent> {
  const to = step.snapshot.value;
  const [event] = await appendEvents(tx, [{ at: now, actorId: id, kind: 'task', type: `task:${to}`, from, to, cause: step.event, nodeId, attempt, detail: step.detail ?? null }]);
  return event!;
}

/**
 * Deliver a finished task's outcome to its dependants, transitively for failures, in the caller's transaction.
 * Work is proportional to the edges touched (DESIGN §5), never to the table size.
 */
export async function cascadeToDependants(
  tx: SqlExecutor,
  rootId: string,
  rootOutcome: DependencyOutcome,
  decide: DependantDecider,
  now: number,
  nodeId: string | null,
): Promise<EngineEvent[]> {
  const events: EngineEvent[] = [];
  const pending: Array<{ id: string; outcome: DependencyOutcome }> = [{ id: rootId, outcome: rootOutcome }];
  for (let next = 0; next < pending.length; next++) {
    const { id, outcome } = pending[next]!;
    const rows = await tx.all(
      `SELECT t.* FROM task_deps d JOIN tasks t ON t.id = d.task_id WHERE d.depends_on = ? AND t.state IN (${placeholders(unfinishedStates.length)})`,
      [id, ...unfinishedStates],
    );
    // Each dependant's step is its own; on a server they travel together instead of two round trips apiece.
    const steps = rows.flatMap((row) => {
      const dependant = toTask(row);
      const step = decide(dependant, id, outcome, rootId);
      return step ? [{ dependant, step }] : [];
    });
    const applied = await together(steps.map(({ dependant, step }) => applyStep(tx, dependant.id, { state: dependant.state }, step, now, nodeId)));
    steps.forEach(({ dependant, step }, index) => {
      const done = applied[index];
      if (done) events.push(done.event);
      if (done && step.snapshot.value === 'failed') pending.push({ id: dependant.id, outcome: 'failed' });
    });
  }
  return events;
}

/**
 * Insert a batch and its edges on `tx` (one write transaction). `order` is the batch in topologicalOrder;
 * unknown external dependencies are a UsageError. Returns the tasks in batch order.
 */
export async function insertTaskGraph(
  tx: SqlExecutor,
  nodes: readonly NewTaskNode[],
  order: readonly NewTaskNode[],
  now: number,
  decide: SubmitDecider,
): Promise<{ tasks: TaskRecord[]; events: EngineEvent[] }> {
  const events: EngineEvent[] = [];
  const inserted = new Map<string, TaskRecord>();
  const batchIds = new Set(nodes.map((node) => node.task.id));
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
    if (node.worktree) await insertWorktree(tx, node.worktree);
    const row = await insertSubmittedTask(tx, task, step, pendingDeps, now);
    for (const dep of deps) await tx.run(`INSERT INTO task_deps (task_id, depends_on) VALUES (?, ?)`, [task.id, dep]);
    inserted.set(task.id, toTask(row));
    events.push(await appendStepEvent(tx, task.id, 'queued', step, now, null, Number(row.attempt ?? 0)));
    states.set(task.id, step.snapshot.value);
  }
  return { tasks: nodes.map((node) => inserted.get(node.task.id)!), events };
}

/**
 * The task row as its submit step leaves it (`queued` → `ready`, `waiting` or `failed`), with the timers that
 * step arms; its event says it came from `queued`. One INSERT rather than a `queued` row and an UPDATE: every
 * DelegateTask, graph task and schedule firing pays for it.
 */
async function insertSubmittedTask(tx: SqlExecutor, task: NewTask, step: TaskStep, pendingDeps: number, now: number): Promise<SqlRow> {
  const columns = new Map<string, SqlValue>([
    ['id', task.id],
    ['prompt', task.prompt],
    ['priority', priorityNumber[task.priority]],
    ['state', step.snapshot.value],
    ['snapshot', JSON.stringify(step.snapshot)],
    ['agent', task.agent],
    ['model', task.model],
    ['permission_mode', task.permissionMode],
    ['allowed_tools', JSON.stringify(task.allowedTools)],
    ['disallowed_tools', JSON.stringify(task.disallowedTools)],
    ['working_directory', task.workingDirectory],
    ['timeout_ms', task.timeoutMs],
    ['max_output_buffer', task.maxOutputBuffer],
    ['max_budget_usd', task.maxBudgetUsd],
    ['worktree', task.worktree ? 1 : 0],
    ['continue_from', task.continueFrom],
    ['parent_task_id', task.parentTaskId],
    ['retry_of', task.retryOf],
    ['pending_deps', pendingDeps],
    ['start_delay_ms', task.startDelayMs],
    ['additional_context', task.additionalContext],
    ['fork_session_id', task.forkSessionId],
    ['worktree_path', task.worktreePath ?? null],
    ['created_at', now],
    ['updated_at', now],
  ]);
  // What the step decides (its fail reason, pending count, end time) over what the submit said.
  for (const key of Object.keys(step.set) as Array<keyof TaskColumns>) columns.set(columnNames[key], encodeColumn(step.set[key]));
  const [row] = await tx.all(`INSERT INTO tasks (${[...columns.keys()].join(', ')}) VALUES (${placeholders(columns.size)}) RETURNING *`, [...columns.values()]);
  if (step.timers?.length) await applyTimerChanges(tx, task.id, Number(row!.attempt ?? 0), step.timers, now);
  return row!;
}

/** One task by id. */
export async function getTask(db: SqlExecutor, id: string): Promise<TaskRecord | null> {
  const rows = await db.all(`SELECT * FROM tasks WHERE id = ?`, [id]);
  return rows[0] ? toTask(rows[0]) : null;
}

/** Newest tasks first, optionally of some states only and after a cursor (50 unless a limit is given). */
export async function listTasks(db: SqlExecutor, filter: TaskFilter = {}): Promise<TaskRecord[]> {
  const limit = filter.limit ?? 50;
  const states = filter.states ?? [];
  const conditions: string[] = [];
  const args: SqlValue[] = [...states];
  if (states.length > 0) conditions.push(`state IN (${placeholders(states.length)})`);
  if (filter.after) {
    conditions.push('(created_at < ? OR (created_at = ? AND id < ?))');
    args.push(filter.after.createdAt, filter.after.createdAt, filter.after.id);
  }
  const where = conditions.length > 0 ? `WHERE ${conditions.join(' AND ')}` : '';
  const rows = await db.all(`SELECT * FROM tasks ${where} ORDER BY created_at DESC, id DESC LIMIT ?`, [...args, limit]);
  return rows.map(toTask);
}

/** The ids a task depends on. */
export async function dependenciesOf(db: SqlExecutor, id: string): Promise<string[]> {
  const rows = await db.all(`SELECT depends_on FROM task_deps WHERE task_id = ? ORDER BY depends_on`, [id]);
  return rows.map((row) => String(row.depends_on));
}

/** The ids of the tasks that depend on a task. */
export async function dependantsOf(db: SqlExecutor, id: string): Promise<string[]> {
  const rows = await db.all(`SELECT task_id FROM task_deps WHERE depends_on = ? ORDER BY task_id`, [id]);
  return rows.map((row) => String(row.task_id));
}

/** SQLite's default limit on bound parameters is 999 (older builds): stay under it per query. */
const maxIdsPerQuery = 500;

/** Dependencies and dependants of many tasks, in two queries per 500 ids instead of two per task. */
export async function taskLinks(db: SqlExecutor, ids: readonly string[]): Promise<Map<string, TaskLinks>> {
  const links = new Map<string, TaskLinks>(ids.map((id) => [id, { dependsOn: [], dependants: [] }]));
  for (let start = 0; start < ids.length; start += maxIdsPerQuery) {
    const chunk = ids.slice(start, start + maxIdsPerQuery);
    const marks = placeholders(chunk.length);
    const [forward, backward] = await Promise.all([
      db.all(`SELECT task_id, depends_on FROM task_deps WHERE task_id IN (${marks}) ORDER BY task_id, depends_on`, chunk),
      db.all(`SELECT depends_on, task_id FROM task_deps WHERE depends_on IN (${marks}) ORDER BY depends_on, task_id`, chunk),
    ]);
    for (const row of forward) links.get(String(row.task_id))?.dependsOn.push(String(row.depends_on));
    for (const row of backward) links.get(String(row.depends_on))?.dependants.push(String(row.task_id));
  }
  return links;
}

/** A task's lifecycle history, oldest first (as far as the bounded events table still holds it). */
export async function taskEvents(db: SqlExecutor, id: string): Promise<TaskEvent[]> {
  const rows = await db.all(`SELECT * FROM events WHERE actor_id = ? AND kind = 'task' ORDER BY id`, [id]);
  return rows.map(toTaskEvent);
}

/** How many tasks are not finished (anywhere, any owner). */
export async function countUnfinished(db: SqlExecutor): Promise<number> {
  const rows = await db.all(`SELECT COUNT(*) AS n FROM tasks WHERE state IN (${placeholders(unfinishedStates.length)})`, [...unfinishedStates]);
  return Number(rows[0]?.n ?? 0);
}

/**
 * The ready tasks a claim considers, best first, leaving out those it must skip (a snapshot that cannot be
 * restored) and those held back (an agent at its usage limit, a schedule over its daily budget) — held tasks
 * stay queued without blocking anyone else's. `run_after` only holds back tasks delayed by versions before
 * durable timers (a pipeline step now waits in `waiting` on its START_DUE timer).
 */
function readyQuery(now: number, skip: ReadonlySet<string>, hold: ClaimHold | undefined): { sql: string; args: SqlValue[] } {
  let where = `state = 'ready' AND (run_after IS NULL OR run_after <= ?)`;
  const args: SqlValue[] = [now];
  if (skip.size > 0) {
    where += ` AND id NOT IN (${placeholders(skip.size)})`;
    args.push(...skip);
  }
  if (hold && hold.agents.length > 0) {
    where += ` AND agent NOT IN (${placeholders(hold.agents.length)})`;
    args.push(...hold.agents);
  }
  if (hold && hold.schedules.length > 0) {
    where += ` AND (schedule_id IS NULL OR schedule_id NOT IN (${placeholders(hold.schedules.length)}))`;
    args.push(...hold.schedules);
  }
  // Named, because without statistics SQLite picks tasks_state and sorts every ready task: 6 ms a claim with
  // 10,000 queued, against 0.08 ms reading the first rows of the partial index in order.
  return { sql: `SELECT * FROM tasks INDEXED BY tasks_ready WHERE ${where} ORDER BY priority, created_at LIMIT 8`, args };
}

/** Whether any task may be claimed now (a read without the write lock). */
export async function anyReadyTask(db: SqlExecutor, now: number, skip: ReadonlySet<string> = new Set(), hold?: ClaimHold): Promise<boolean> {
  if (hold?.all) return false;
  const { sql, args } = readyQuery(now, skip, hold);
  return (await db.all(sql, args)).length > 0;
}

/**
 * Claim the best ready task on `tx` (one write transaction): its step, owner, attempt and lease (by the
 * database's clock), and its run row. A candidate `decide` refuses (a snapshot that cannot be restored) is
 * passed over for the next one, so it never blocks the queue.
 */
export async function claimNextTask(
  tx: SqlExecutor,
  claim: TaskClaim,
  decide: (task: TaskRecord) => TaskStep | null,
): Promise<{ task: TaskRecord; events: EngineEvent[] } | null> {
  if (claim.hold?.all) return null;
  const { sql, args } = readyQuery(claim.now, claim.skip ?? new Set<string>(), claim.hold);
  for (const row of await tx.all(sql, args)) {
    const task = toTask(row);
    const step = decide(task);
    if (!step) continue;
    const attempt = task.attempt + 1;
    step.set = { ...step.set, owner: claim.nodeId, attempt, startedAt: claim.now };
    const applied = await applyStep(tx, task.id, { state: 'ready' }, step, claim.now, claim.nodeId, {
      leaseMs: claim.leaseMs,
      also: () => [insertRun(tx, { taskId: task.id, attempt, nodeId: claim.nodeId, host: claim.host, logPath: claim.logPath(task.id), startedAt: claim.now })],
    });
    if (!applied) return null;
    return { task: toTask(applied.row), events: [applied.event] };
  }
  return null;
}

/**
 * Commit one fenced step on `tx` (one write transaction) with what it writes besides its row: the timer it
 * consumes, the checkpoint, and for a finished task its dependants' steps. Null when the fence did not match or
 * the consumed timer is gone; a consumed timer whose step then fails its fence throws StaleStep, so the caller's
 * transaction rolls back and nothing is written.
 */
export async function commitTaskStep(tx: SqlExecutor, id: string, fence: TaskFence, step: TaskStep, options: CommitOptions): Promise<EngineEvent[] | null> {
  const nodeId = options.nodeId ?? null;
  if (options.timerId !== undefined && !(await consumeTimer(tx, options.timerId))) return null;
  const next = step.snapshot.value;
  const decideDependant = next === 'completed' || next === 'failed' || next === 'cancelled' ? options.decideDependant : undefined;
  let cascaded: EngineEvent[] = [];
  const applied = await applyStep(tx, id, fence, step, options.now, nodeId, {
    runEnd: options.runEnd,
    also: () => [
      options.checkpoint ? insertCheckpoint(tx, options.checkpoint) : Promise.resolve(),
      options.usageHold ? upsertUsageHold(tx, options.usageHold, options.now) : Promise.resolve(),
      decideDependant
        ? cascadeToDependants(tx, id, next === 'completed' ? 'completed' : 'failed', decideDependant, options.now, nodeId).then((events) => {
            cascaded = events;
          })
        : Promise.resolve(),
    ],
  });
  if (!applied) {
    if (options.timerId !== undefined) throw new StaleStep();
    return null;
  }
  return [applied.event, ...cascaded];
}

/** Thrown inside a step's transaction to roll back what it already wrote (a consumed timer) when its fence fails. */
export class StaleStep extends Error {
  constructor() {
    super('the step is stale: its task moved on');
  }
}
