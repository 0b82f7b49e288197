/**
 * SQL of the `checkpoints` table: what each finished attempt left behind (SPEC §8). Written inside the
 * transaction of the step that finishes the attempt; read when a task is resumed or shown.
 */
import { placeholders, toCheckpoint } from './rows.js';
import type { SqlExecutor } from './sql-driver.js';
import type { Checkpoint } from './records.js';

/** Write an attempt's checkpoint (replacing one of the same attempt). */
export async function insertCheckpoint(tx: SqlExecutor, checkpoint: Checkpoint): Promise<void> {
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

/** The checkpoint of a task's latest finished attempt. */
export async function latestCheckpoint(db: SqlExecutor, taskId: string): Promise<Checkpoint | null> {
  const rows = await db.all(`SELECT * FROM checkpoints WHERE task_id = ? ORDER BY attempt DESC LIMIT 1`, [taskId]);
  const row = rows[0];
  if (!row) return null;
  return toCheckpoint(row);
}
