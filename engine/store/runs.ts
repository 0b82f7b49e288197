/**
 * SQL of runs: the `task_runs` rows of each attempt, and the owner and lease columns of `tasks` that say which
 * node runs a task now. Functions run on the executor they are given; SqlStore picks the transaction.
 */
import { dbNowSql } from './db-clock.js';
import { toOpenRun, toRun } from './rows.js';
import { together, type SqlExecutor } from './sql-driver.js';
import type { OpenRun, OwnedRun, RunEnd, RunProcess, RunTakeover, TaskRun } from './records.js';

/** Create the run row of a claimed attempt (inside the claim's transaction). */
export async function insertRun(
  tx: SqlExecutor,
  run: { taskId: string; attempt: number; nodeId: string; host: string; logPath: string; startedAt: number },
): Promise<void> {
  await tx.run(`INSERT INTO task_runs (task_id, attempt, node_id, host, log_path, started_at) VALUES (?, ?, ?, ?, ?, ?)`, [
    run.taskId,
    run.attempt,
    run.nodeId,
    run.host,
    run.logPath,
    run.startedAt,
  ]);
}

/**
 * End a run row with how its agent ended and what it used (inside the transaction of the task's final step), and
 * make the task's cost, turns and tokens the sums over its runs, so a task that was interrupted and ran again
 * counts both runs. A run that reported no model takes the one its task asked for.
 */
export async function recordRunEnd(tx: SqlExecutor, taskId: string, attempt: number, end: RunEnd, now: number): Promise<void> {
  const tokens = end.tokens ?? null;
  await tx.run(
    `UPDATE task_runs SET ended_at = ?, outcome = ?, exit_code = ?, output_bytes = ?, cost_usd = ?, session_id = COALESCE(?, session_id),
           num_turns = ?, input_tokens = ?, output_tokens = ?, cache_creation_tokens = ?, cache_read_tokens = ?,
           model = COALESCE(?, (SELECT model FROM tasks WHERE id = ?))
           WHERE task_id = ? AND attempt = ?`,
    [
      now,
      end.outcome,
      end.exitCode,
      end.outputBytes,
      end.costUsd,
      end.sessionId,
      end.numTurns ?? null,
      tokens?.input ?? null,
      tokens?.output ?? null,
      tokens?.cacheCreation ?? null,
      tokens?.cacheRead ?? null,
      end.model ?? null,
      taskId,
      taskId,
      attempt,
    ],
  );
  await tx.run(
    `UPDATE tasks SET (cost_usd, num_turns, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens) = (
       SELECT SUM(cost_usd), SUM(num_turns), SUM(input_tokens), SUM(output_tokens), SUM(cache_creation_tokens), SUM(cache_read_tokens)
       FROM task_runs WHERE task_id = ?), model_used = COALESCE(?, model_used)
     WHERE id = ?`,
    [taskId, end.model ?? null, taskId],
  );
}

/** Record the agent process of a run. */
export async function recordRunProcess(db: SqlExecutor, taskId: string, attempt: number, process: RunProcess): Promise<void> {
  await db.run(`UPDATE task_runs SET pid = ?, pid_start = ?, session_id = COALESCE(?, session_id) WHERE task_id = ? AND attempt = ?`, [
    process.pid,
    process.pidStart,
    process.sessionId,
    taskId,
    attempt,
  ]);
}

/** Record the agent session a run reported. */
export async function recordRunSession(db: SqlExecutor, taskId: string, attempt: number, sessionId: string): Promise<void> {
  await db.run(`UPDATE task_runs SET session_id = ? WHERE task_id = ? AND attempt = ?`, [sessionId, taskId, attempt]);
}

/** A task's attempts, oldest first. */
export async function taskRuns(db: SqlExecutor, id: string): Promise<TaskRun[]> {
  const rows = await db.all(`SELECT * FROM task_runs WHERE task_id = ? ORDER BY attempt`, [id]);
  return rows.map(toRun);
}

/** Every run whose row has not ended, with its task and node (the recovery sweep's work list), and the database's now. */
export async function openRuns(db: SqlExecutor): Promise<{ now: number; runs: OpenRun[] }> {
  const now = await dbNow(db);
  const rows = await db.all(
    `SELECT r.task_id, r.attempt AS run_attempt, r.node_id, r.host AS run_host, r.pid AS run_pid, r.pid_start AS run_pid_start,
              t.state AS task_state, t.attempt AS task_attempt, t.owner AS task_owner, t.lease_until,
              n.id, n.host, n.pid, n.pid_start, n.data_dir, n.version, n.autostarted, n.started_at, n.heartbeat_at
       FROM task_runs r
       JOIN tasks t ON t.id = r.task_id
       LEFT JOIN nodes n ON n.id = r.node_id
       WHERE r.ended_at IS NULL`,
  );
  return { now, runs: rows.map(toOpenRun) };
}

/** The database's clock, in epoch ms. */
export async function dbNow(db: SqlExecutor): Promise<number> {
  const rows = await db.all(`SELECT ${dbNowSql} AS now`);
  return Number(rows[0]?.now);
}

/**
 * Move a live run to another owner, fenced on owner + attempt and, if asked, a lapsed lease; false when it did not
 * match. The run row's node moves with it: the recovery sweep judges a run by the node that holds it now, so a
 * node that took a run over and died before it could requeue the task leaves a run the next sweep recovers.
 */
export async function takeOverRun(tx: SqlExecutor, run: RunTakeover): Promise<boolean> {
  const lapsed = run.requireLapsed ? ` AND lease_until < ${dbNowSql}` : '';
  const result = await tx.run(
    `UPDATE tasks SET owner = ?, lease_until = ${dbNowSql} + ? WHERE id = ? AND state = 'running' AND owner = ? AND attempt = ?${lapsed}`,
    [run.to, run.leaseMs, run.taskId, run.from, run.attempt],
  );
  if (result.changes === 0) return false;
  await tx.run(`UPDATE task_runs SET node_id = ? WHERE task_id = ? AND attempt = ?`, [run.to, run.taskId, run.attempt]);
  return true;
}

/**
 * End a run row that no task step ended (cancelled, aborted or lost); a no-op when it has ended, and when it is
 * still its task's live run: that one is ended only by the step that moves the task on (or the sweep's
 * LEASE_LOST), so a run whose agent was stopped without such a step stays visible to the recovery sweep.
 */
export async function endRun(tx: SqlExecutor, taskId: string, attempt: number, outcome: string, now: number): Promise<void> {
  await tx.run(
    `UPDATE task_runs SET ended_at = ?, outcome = ? WHERE task_id = ? AND attempt = ? AND ended_at IS NULL
       AND NOT EXISTS (SELECT 1 FROM tasks WHERE id = ? AND state = 'running' AND attempt = ?)`,
    [now, outcome, taskId, attempt, taskId, attempt],
  );
}

/** Extend the leases of `runs` this node still owns by `leaseMs` from the database's now, then list every run it owns (one write transaction). */
export async function renewLeases(tx: SqlExecutor, nodeId: string, leaseMs: number, runs: readonly OwnedRun[]): Promise<OwnedRun[]> {
  // None needs another's result (the list after them reads no lease), so on a server they travel together.
  const renewed = runs.map((run) => tx.run(`UPDATE tasks SET lease_until = ${dbNowSql} + ? WHERE id = ? AND owner = ? AND attempt = ? AND state = 'running'`, [leaseMs, run.id, nodeId, run.attempt]));
  const [owned] = await together([ownedRuns(tx, nodeId), ...renewed]);
  return owned;
}

/** Whether a node owns this run of a task right now. */
export async function ownsRun(db: SqlExecutor, nodeId: string, taskId: string, attempt: number): Promise<boolean> {
  return (await db.all(`SELECT 1 FROM tasks WHERE id = ? AND owner = ? AND attempt = ? AND state = 'running'`, [taskId, nodeId, attempt])).length > 0;
}

/** The runs a node owns right now. */
export async function ownedRuns(db: SqlExecutor, nodeId: string): Promise<OwnedRun[]> {
  const rows = await db.all(`SELECT id, attempt FROM tasks WHERE owner = ? AND state = 'running'`, [nodeId]);
  return rows.map((row) => ({ id: String(row.id), attempt: Number(row.attempt) }));
}
