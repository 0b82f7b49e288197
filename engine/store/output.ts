/**
 * SQL of task output kept in the database (`task_output`): chunks of a task's text log as its runner ships them,
 * read in order by any front door. Chunks are appended only; the runner bounds their size and count.
 */
import { together, type SqlExecutor } from './sql-driver.js';
import type { OutputChunk, OutputMark, ShippedChunk } from './records.js';

/** Append chunks (one transaction for all of them), in the order given. */
export async function appendOutput(tx: SqlExecutor, chunks: readonly ShippedChunk[]): Promise<void> {
  await together(
    chunks.map((chunk) =>
      tx.run(`INSERT INTO task_output (task_id, host, file_end, bytes, text) VALUES (?, ?, ?, ?, ?)`, [chunk.taskId, chunk.host, chunk.fileEnd, chunk.bytes, chunk.text]),
    ),
  );
}

/** Where shipping a task's log from `host` stopped, and how many bytes of the task's output the database holds. */
export async function outputMark(db: SqlExecutor, taskId: string, host: string): Promise<OutputMark> {
  const rows = await db.all(
    `SELECT COALESCE(MAX(CASE WHEN host = ? THEN file_end END), 0) AS file_end, COALESCE(SUM(bytes), 0) AS bytes
       FROM task_output WHERE task_id = ?`,
    [host, taskId],
  );
  return { fileEnd: Number(rows[0]?.file_end ?? 0), bytes: Number(rows[0]?.bytes ?? 0) };
}

/** A task's chunks after `afterSeq`, oldest first. */
export async function outputAfter(db: SqlExecutor, taskId: string, afterSeq: number, limit: number): Promise<OutputChunk[]> {
  const rows = await db.all(`SELECT seq, text FROM task_output WHERE task_id = ? AND seq > ? ORDER BY seq LIMIT ?`, [taskId, afterSeq, limit]);
  return rows.map((row) => ({ seq: Number(row.seq), text: String(row.text) }));
}
