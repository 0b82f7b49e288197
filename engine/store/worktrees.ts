/**
 * SQL of the `worktrees` table: the git worktrees made for tasks. A worktree row is written in the transaction
 * that inserts its task, so there is never a task pointing at a worktree the database does not know, nor a
 * row for a task that was never stored.
 */
import { placeholders, toWorktree } from './rows.js';
import type { NewWorktree, WorktreeRecord } from './records.js';
import type { SqlExecutor } from './sql-driver.js';

/** Store a new worktree (inside the task insert's transaction). */
export async function insertWorktree(tx: SqlExecutor, worktree: NewWorktree): Promise<void> {
  await tx.run(`INSERT INTO worktrees (path, repo, branch, base_branch, base_sha, task_id, created_at) VALUES (${placeholders(7)})`, [
    worktree.path,
    worktree.repo,
    worktree.branch,
    worktree.baseBranch,
    worktree.baseSha,
    worktree.taskId,
    worktree.createdAt,
  ]);
}

/** One worktree by path. */
export async function getWorktree(db: SqlExecutor, path: string): Promise<WorktreeRecord | null> {
  const rows = await db.all(`SELECT * FROM worktrees WHERE path = ?`, [path]);
  return rows[0] ? toWorktree(rows[0]) : null;
}

/** Worktrees not yet removed, newest first. */
export async function listWorktrees(db: SqlExecutor): Promise<WorktreeRecord[]> {
  const rows = await db.all(`SELECT * FROM worktrees WHERE removed_at IS NULL ORDER BY created_at DESC, path DESC`);
  return rows.map(toWorktree);
}

/** Ids and states of the tasks that run in a worktree, oldest first. */
export async function worktreeTasks(db: SqlExecutor, path: string): Promise<Array<{ id: string; state: string }>> {
  const rows = await db.all(`SELECT id, state FROM tasks WHERE worktree_path = ? ORDER BY created_at, id`, [path]);
  return rows.map((row) => ({ id: String(row.id), state: String(row.state) }));
}

/** Record that a worktree was merged or removed. */
export async function markWorktree(tx: SqlExecutor, path: string, what: 'merged' | 'removed', at: number): Promise<void> {
  await tx.run(`UPDATE worktrees SET ${what === 'merged' ? 'merged_at' : 'removed_at'} = ? WHERE path = ?`, [at, path]);
}
