/**
 * SQL of the `events` table (DESIGN §9): the bounded stream of committed transitions of every actor, which
 * any process can follow, and the `actor_snapshots` of node-local actors for the inspector. Task events are
 * written by the step's own transaction; the table keeps the newest `eventsKept` rows.
 */
import { placeholders, toActorSnapshot, toEngineEvent } from './rows.js';
import { together, type SqlExecutor, type SqlValue } from './sql-driver.js';
import type { ActorSnapshotRow, EngineEvent, EventFilter, NewEngineEvent } from './records.js';

/** How many events the table keeps; older ones are trimmed (a task's own history goes with them). */
export const eventsKept = 100_000;

/** Trim every this many inserts, so trimming costs one indexed delete per thousand events. */
const trimEvery = 1000;

/**
 * Rows per INSERT, largest first: a batch is written as few statements of these sizes, so a connection prepares
 * and keeps at most four of them (one per size), whatever the batch sizes are.
 */
const insertSizes = [64, 16, 4, 1];

/**
 * Append events in the caller's transaction; returns them with their ids. One INSERT for many rows: a node's
 * journal writes a batch of slot events per flush, and on a server each statement is a round trip made while
 * the transaction holds the write lock.
 */
export async function appendEvents(tx: SqlExecutor, events: readonly NewEngineEvent[]): Promise<EngineEvent[]> {
  const written: EngineEvent[] = [];
  const row = `(${placeholders(10)})`;
  for (let start = 0; start < events.length; ) {
    const size = insertSizes.find((rows) => rows <= events.length - start)!;
    const chunk = events.slice(start, start + size);
    start += size;
    const rows = await tx.all(
      `INSERT INTO events (at, actor_id, kind, type, from_state, to_state, cause, node_id, attempt, detail) VALUES ${chunk.map(() => row).join(', ')} RETURNING id`,
      chunk.flatMap((event) => [event.at, event.actorId, event.kind, event.type, event.from, event.to, event.cause, event.nodeId, event.attempt, event.detail]),
    );
    // RETURNING gives no order; AUTOINCREMENT numbers the rows of one statement upwards in the order written.
    const ids = rows.map((inserted) => Number(inserted.id)).sort((a, b) => a - b);
    chunk.forEach((event, index) => written.push({ ...event, id: ids[index]! }));
    const first = ids[0]!;
    const last = ids.at(-1)!;
    // Trim when the ids crossed a multiple of trimEvery.
    if (Math.floor(last / trimEvery) > Math.floor((first - 1) / trimEvery)) {
      await tx.run(`DELETE FROM events WHERE id <= ?`, [last - eventsKept]);
    }
  }
  return written;
}

/** Events after `afterId`, oldest first. */
export async function eventsAfter(db: SqlExecutor, afterId: number, filter: EventFilter, limit: number): Promise<EngineEvent[]> {
  let where = 'id > ?';
  const args: SqlValue[] = [afterId];
  if (filter.actorId !== undefined) {
    where += ' AND actor_id = ?';
    args.push(filter.actorId);
  }
  if (filter.sinceAt !== undefined) {
    where += ' AND at >= ?';
    args.push(filter.sinceAt);
  }
  const rows = await db.all(`SELECT * FROM events WHERE ${where} ORDER BY id LIMIT ?`, [...args, limit]);
  return rows.map(toEngineEvent);
}

/** The newest `limit` events of one actor, oldest first (on the events_actor index, whatever the table's size). */
export async function recentActorEvents(db: SqlExecutor, actorId: string, limit: number): Promise<EngineEvent[]> {
  const rows = await db.all(`SELECT * FROM events WHERE actor_id = ? ORDER BY id DESC LIMIT ?`, [actorId, limit]);
  return rows.map(toEngineEvent).reverse();
}

/**
 * The latest snapshots of node-local actors whose node is still registered, by actor id. A node that died
 * without deregistering keeps its row until another node or front door removes it, and its actors with it.
 */
export async function liveActorSnapshots(db: SqlExecutor): Promise<ActorSnapshotRow[]> {
  const rows = await db.all(`SELECT s.* FROM actor_snapshots s JOIN nodes n ON n.id = s.node_id ORDER BY s.node_id, s.actor_id`);
  return rows.map(toActorSnapshot);
}

/** The newest event's id, 0 when there is none. */
export async function lastEventId(db: SqlExecutor): Promise<number> {
  const rows = await db.all(`SELECT COALESCE(MAX(id), 0) AS id FROM events`);
  return Number(rows[0]?.id ?? 0);
}

/** Keep the latest snapshot of each node-local actor. */
export async function saveActorSnapshots(tx: SqlExecutor, snapshots: readonly ActorSnapshotRow[]): Promise<void> {
  await together(
    snapshots.map((row) =>
      tx.run(`INSERT OR REPLACE INTO actor_snapshots (actor_id, kind, node_id, snapshot, updated_at) VALUES (${placeholders(5)})`, [
        row.actorId,
        row.kind,
        row.nodeId,
        row.snapshot,
        row.updatedAt,
      ]),
    ),
  );
}
