/**
 * SQL of usage: cost, turns and tokens of ended runs summed per group. It reads `task_runs` by end time (on
 * `task_runs_ended`), joining `tasks` only to group by the task's agent or schedule.
 */
import { num, str, tokensOf } from './rows.js';
import type { SqlExecutor } from './sql-driver.js';
import type { RunUsageQuery, RunUsageSum } from './records.js';

/** Length of the time buckets runs are summed in; every time zone's offset is a whole number of them. */
export const usageBucketMs = 15 * 60_000;

/** The group key of each grouping, as SQL over `task_runs r` (and `tasks t` where it needs the task). */
const groupKeys: Record<RunUsageQuery['group'], { key: string; joinTask: boolean }> = {
  none: { key: 'NULL', joinTask: false },
  bucket: { key: `r.ended_at / ${usageBucketMs}`, joinTask: false },
  agent: { key: 't.agent', joinTask: true },
  schedule: { key: 't.schedule_id', joinTask: true },
};

/** Sums of the runs that ended at or after `sinceAt` (all ended runs without it), one row per group. */
export async function sumRunUsage(db: SqlExecutor, query: RunUsageQuery): Promise<RunUsageSum[]> {
  const { key, joinTask } = groupKeys[query.group];
  const join = joinTask ? 'JOIN tasks t ON t.id = r.task_id' : '';
  const where = query.sinceAt === undefined ? 'r.ended_at IS NOT NULL' : 'r.ended_at >= ?';
  const rows = await db.all(
    `SELECT ${key} AS group_key, COUNT(*) AS runs, SUM(r.cost_usd) AS cost_usd, SUM(r.num_turns) AS num_turns,
            SUM(r.input_tokens) AS input_tokens, SUM(r.output_tokens) AS output_tokens,
            SUM(r.cache_creation_tokens) AS cache_creation_tokens, SUM(r.cache_read_tokens) AS cache_read_tokens
       FROM task_runs r ${join}
       WHERE ${where}
       GROUP BY group_key`,
    query.sinceAt === undefined ? [] : [query.sinceAt],
  );
  return rows.map((row) => ({
    key: query.group === 'bucket' ? num(row.group_key) : str(row.group_key),
    runs: Number(row.runs),
    costUsd: num(row.cost_usd),
    numTurns: num(row.num_turns),
    tokens: tokensOf(row),
  }));
}
