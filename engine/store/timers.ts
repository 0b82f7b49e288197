/**
 * SQL of the `timers` table (DESIGN §2): the durable delayed events of actors. A step arms and cancels its
 * timers in its own transaction; the timer loop claims due ones with one locking UPDATE; the step that
 * consumes a timer deletes it in its own transaction, so a timer fires once.
 */
import { placeholders, toDueTimer } from './rows.js';
import type { SqlExecutor } from './sql-driver.js';
import type { DueTimer, TimerChange } from './records.js';

/** Arm (replacing one of the same key) or cancel an actor's timers, inside the step's transaction. */
export async function applyTimerChanges(tx: SqlExecutor, actorId: string, attempt: number, changes: readonly TimerChange[], now: number): Promise<void> {
  for (const change of changes) {
    if (change.kind === 'arm') {
      await tx.run(`INSERT OR REPLACE INTO timers (actor_id, key, event, due_at, attempt, created_at) VALUES (${placeholders(6)})`, [
        actorId,
        change.key,
        JSON.stringify(change.event),
        change.dueAt,
        attempt,
        now,
      ]);
    } else {
      await tx.run(`DELETE FROM timers WHERE actor_id = ? AND key = ?`, [actorId, change.key]);
    }
  }
}

/** Delete the timer a step consumes; false when it is gone (another node delivered it). */
export async function consumeTimer(tx: SqlExecutor, id: number): Promise<boolean> {
  return (await tx.run(`DELETE FROM timers WHERE id = ?`, [id])).changes > 0;
}

/** Delete a timer. */
export async function dropTimer(tx: SqlExecutor, id: number): Promise<void> {
  await tx.run(`DELETE FROM timers WHERE id = ?`, [id]);
}

/** Whether a timer is still armed. */
export async function timerExists(db: SqlExecutor, id: number): Promise<boolean> {
  return (await db.all(`SELECT 1 FROM timers WHERE id = ?`, [id])).length > 0;
}

/** When the next timer may be delivered: its due time, or the end of another node's claim of it. */
export async function nextTimerDueAt(db: SqlExecutor): Promise<number | null> {
  const rows = await db.all(`SELECT MIN(MAX(due_at, COALESCE(locked_until, 0))) AS next FROM timers`);
  const next = rows[0]?.next;
  return next === null || next === undefined ? null : Number(next);
}

/** The timers one claim of `nodeId` locked until `lockedUntil` (read back when its answer was lost). */
export async function timersLockedBy(db: SqlExecutor, nodeId: string, lockedUntil: number): Promise<DueTimer[]> {
  const rows = await db.all(`SELECT id, actor_id, key, event, due_at, attempt FROM timers WHERE locked_by = ? AND locked_until = ?`, [nodeId, lockedUntil]);
  return rows.map(toDueTimer).sort((a, b) => a.dueAt - b.dueAt);
}

/** Lock up to `limit` due, unlocked (or lapsed) timers for `nodeId` (one write). */
export async function claimDueTimers(tx: SqlExecutor, nodeId: string, now: number, lockMs: number, limit: number): Promise<DueTimer[]> {
  const rows = await tx.all(
    `UPDATE timers SET locked_by = ?, locked_until = ?
     WHERE id IN (SELECT id FROM timers WHERE due_at <= ? AND (locked_until IS NULL OR locked_until <= ?) ORDER BY due_at LIMIT ?)
     RETURNING id, actor_id, key, event, due_at, attempt`,
    [nodeId, now + lockMs, now, now, limit],
  );
  return rows.map(toDueTimer).sort((a, b) => a.dueAt - b.dueAt);
}
