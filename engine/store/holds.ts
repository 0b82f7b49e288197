/**
 * SQL of what holds back claims: `usage_holds` (an agent and account at its usage limit, until its reset) and
 * the day's spend that daily budgets are measured against (costs of the runs that ended since a time).
 */
import { placeholders } from './rows.js';
import type { SqlExecutor } from './sql-driver.js';
import type { DaySpend, UsageHold } from './records.js';

/**
 * Record a hold in the caller's transaction (a task's USAGE_LIMIT step). A later reset replaces an earlier one;
 * an earlier reset never shortens a hold in force (a weekly limit outlasts a five-hour one).
 */
export async function upsertUsageHold(tx: SqlExecutor, hold: UsageHold, now: number): Promise<void> {
  await tx.run(
    `INSERT INTO usage_holds (agent, account, until, limit_type, task_id, created_at) VALUES (${placeholders(6)})
     ON CONFLICT (agent, account) DO UPDATE SET until = excluded.until, limit_type = excluded.limit_type, task_id = excluded.task_id,
       created_at = excluded.created_at
     WHERE excluded.until > usage_holds.until OR usage_holds.until <= ?`,
    [hold.agent, hold.account, hold.until, hold.limitType, hold.taskId, now, now],
  );
}

/** Holds still in force at `now` (every account's), soonest to end first. */
export async function usageHolds(db: SqlExecutor, now: number): Promise<UsageHold[]> {
  const rows = await db.all(`SELECT * FROM usage_holds WHERE until > ? ORDER BY until`, [now]);
  return rows.map((row) => ({
    agent: String(row.agent),
    account: String(row.account),
    until: Number(row.until),
    limitType: row.limit_type === null || row.limit_type === undefined ? null : String(row.limit_type),
    taskId: row.task_id === null || row.task_id === undefined ? null : String(row.task_id),
  }));
}

/** What the runs that ended at or after `since` cost, in all and per schedule (its tasks' runs). */
export async function spendSince(db: SqlExecutor, since: number): Promise<DaySpend> {
  const rows = await db.all(
    `SELECT t.schedule_id AS schedule_id, SUM(r.cost_usd) AS usd FROM task_runs r JOIN tasks t ON t.id = r.task_id
     WHERE r.ended_at >= ? AND r.cost_usd IS NOT NULL GROUP BY t.schedule_id`,
    [since],
  );
  const spend: DaySpend = { totalUsd: 0, bySchedule: {} };
  for (const row of rows) {
    const usd = Number(row.usd ?? 0);
    spend.totalUsd += usd;
    if (row.schedule_id !== null && row.schedule_id !== undefined) spend.bySchedule[String(row.schedule_id)] = usd;
  }
  return spend;
}

/** The daily budgets of schedules that have one, by schedule id. */
export async function scheduleBudgets(db: SqlExecutor): Promise<Record<string, number>> {
  const rows = await db.all(`SELECT id, daily_budget_usd FROM schedules WHERE daily_budget_usd IS NOT NULL`);
  return Object.fromEntries(rows.map((row) => [String(row.id), Number(row.daily_budget_usd)]));
}
