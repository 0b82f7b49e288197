/**
 * SQL of the `nodes` table: the engine processes registered in the database and their heartbeats. Functions
 * run on the executor they are given; SqlStore picks the transaction.
 */
import { dbNowSql } from './db-clock.js';
import { placeholders, toNode } from './rows.js';
import type { SqlExecutor } from './sql-driver.js';
import { unfinishedStates, type HostExclusivity, type NodeRecord, type NodeRegistration } from './records.js';

/** Register a node on `tx` (one write transaction); with `exclusiveOnHost`, refuse when a live one of its host and data dir exists. */
export async function registerNode(tx: SqlExecutor, node: NodeRecord, exclusiveOnHost?: HostExclusivity): Promise<NodeRegistration> {
  if (exclusiveOnHost) {
    const others = (await tx.all(`SELECT * FROM nodes WHERE host = ? AND data_dir = ?`, [node.host, node.dataDir])).map(toNode);
    const live = others.find((other) => other.id !== node.id && exclusiveOnHost.isAlive(other));
    if (live) return { registered: false as const, existing: live };
  }
  // The heartbeat is the database's now, like every later one, whatever the record says.
  await tx.run(
    `INSERT INTO nodes (id, host, pid, pid_start, data_dir, version, autostarted, started_at, heartbeat_at) VALUES (${placeholders(8)}, ${dbNowSql})`,
    [node.id, node.host, node.pid, node.pidStart, node.dataDir, node.version, node.autostarted ? 1 : 0, node.startedAt],
  );
  return { registered: true as const };
}

/** Refresh a node's heartbeat by the database's clock; false when its row is gone. */
export async function heartbeatNode(tx: SqlExecutor, id: string): Promise<boolean> {
  const result = await tx.run(`UPDATE nodes SET heartbeat_at = ${dbNowSql} WHERE id = ?`, [id]);
  return result.changes > 0;
}

/** Delete a node's row and the snapshots of its live actors, which died with it. */
export async function removeNode(tx: SqlExecutor, id: string): Promise<void> {
  await tx.run(`DELETE FROM nodes WHERE id = ?`, [id]);
  await tx.run(`DELETE FROM actor_snapshots WHERE node_id = ?`, [id]);
}

/** Delete a node's row only if no task is unfinished and no schedule active, in one statement; false when work exists. */
export async function removeNodeIfIdle(tx: SqlExecutor, id: string): Promise<boolean> {
  // An active schedule is work too: its next slot needs a runner up to fire.
  const result = await tx.run(
    `DELETE FROM nodes WHERE id = ? AND NOT EXISTS (SELECT 1 FROM tasks WHERE state IN (${placeholders(unfinishedStates.length)}))
       AND NOT EXISTS (SELECT 1 FROM schedules WHERE state = 'active')`,
    [id, ...unfinishedStates],
  );
  return result.changes > 0;
}

/** Whether a node is registered. */
export async function nodeExists(db: SqlExecutor, id: string): Promise<boolean> {
  return (await db.all(`SELECT 1 FROM nodes WHERE id = ?`, [id])).length > 0;
}

/** Registered nodes, oldest first, of one host or all. */
export async function listNodes(db: SqlExecutor, host?: string): Promise<NodeRecord[]> {
  const rows = host ? await db.all(`SELECT * FROM nodes WHERE host = ? ORDER BY started_at`, [host]) : await db.all(`SELECT * FROM nodes ORDER BY started_at`);
  return rows.map(toNode);
}
