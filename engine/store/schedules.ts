/**
 * SQL of the `schedules` and `schedule_runs` tables (DESIGN §6). A schedule step is committed like a task step:
 * the fenced row update, its event and its timers in one transaction; a firing adds its history rows and its
 * task there too, so a slot and its task are written together or not at all. The UNIQUE (schedule_id,
 * scheduled_for) key makes a second node's firing of the same slot write nothing.
 */
import { upstreamTimerId, type ScheduleEvent } from '../../actors/schedule.machine.js';
import { UsageError } from '../errors.js';
import { finishedStates } from './records.js';
import { appendEvents } from './events.js';
import { placeholders, priorityNumber } from './rows.js';
import { toSchedule, toScheduleRun, type FollowerNews, type NewSchedule, type ScheduleFilter, type ScheduleFiring, type ScheduleRecord, type ScheduleRunRecord, type ScheduleStep, type ScheduleStepCommit } from './schedule-records.js';
import type { SqlExecutor } from './sql-driver.js';
import type { EngineEvent } from './records.js';
import { insertTaskGraph } from './tasks.js';
import { applyTimerChanges, consumeTimer } from './timers.js';

/** Thrown inside a schedule step's transaction to roll it back (a slot already fired, a fence that failed). */
export class ScheduleStepRefused extends Error {
  constructor(reason: string) {
    super(reason);
  }
}

/**
 * Insert a schedule in its first state, with its event and its first timer. A schedule that follows another is
 * checked against it in the same transaction: one that has ended can never tell it of a run.
 */
export async function insertSchedule(tx: SqlExecutor, schedule: NewSchedule, step: ScheduleStep, now: number): Promise<{ schedule: ScheduleRecord; events: EngineEvent[] }> {
  if (schedule.afterScheduleId !== null) {
    const followed = await getSchedule(tx, schedule.afterScheduleId);
    if (!followed) throw new UsageError('not_found', `afterScheduleId '${schedule.afterScheduleId}': no such schedule`);
    if (followed.state !== 'active' && followed.state !== 'paused') {
      throw new UsageError('invalid_input', `afterScheduleId '${schedule.afterScheduleId}': that schedule is ${followed.state}; follow an active or paused schedule`);
    }
  }
  await tx.run(
    `INSERT INTO schedules (id, prompt, type, cron_expression, scheduled_at, timezone, missed_run_policy, priority, working_directory, agent,
       max_runs, expires_at, after_schedule_id, daily_budget_usd, state, snapshot, runs, next_run_at, created_at, updated_at)
     VALUES (${placeholders(20)})`,
    [
      schedule.id,
      schedule.prompt,
      schedule.type,
      schedule.cronExpression,
      schedule.scheduledAt,
      schedule.timezone,
      schedule.missedRunPolicy,
      priorityNumber[schedule.priority],
      schedule.workingDirectory,
      schedule.agent,
      schedule.maxRuns,
      schedule.expiresAt,
      schedule.afterScheduleId,
      schedule.dailyBudgetUsd,
      step.snapshot.value,
      JSON.stringify(step.snapshot),
      step.set.runs,
      step.set.nextRunAt,
      now,
      now,
    ],
  );
  await applyTimerChanges(tx, schedule.id, 0, step.timers, now);
  const events = await appendEvents(tx, [
    { at: now, actorId: schedule.id, kind: 'schedule', type: `schedule:${step.snapshot.value}`, from: null, to: step.snapshot.value, cause: step.event, nodeId: null, attempt: null, detail: step.detail ?? null },
  ]);
  return { schedule: (await getSchedule(tx, schedule.id))!, events };
}

/** One schedule by id. */
export async function getSchedule(db: SqlExecutor, id: string): Promise<ScheduleRecord | null> {
  const rows = await db.all(`SELECT * FROM schedules WHERE id = ?`, [id]);
  return rows[0] ? toSchedule(rows[0]) : null;
}

/** The schedules of `ids` that exist, in no particular order. */
export async function getSchedules(db: SqlExecutor, ids: readonly string[]): Promise<ScheduleRecord[]> {
  if (ids.length === 0) return [];
  const rows = await db.all(`SELECT * FROM schedules WHERE id IN (${placeholders(ids.length)})`, [...ids]);
  return rows.map(toSchedule);
}

/** Newest first, optionally of some states only (100 unless a limit is given). */
export async function listSchedules(db: SqlExecutor, filter: ScheduleFilter = {}): Promise<ScheduleRecord[]> {
  const states = filter.states ?? [];
  const where = states.length > 0 ? `WHERE state IN (${placeholders(states.length)})` : '';
  const rows = await db.all(`SELECT * FROM schedules ${where} ORDER BY created_at DESC, id DESC LIMIT ?`, [...states, filter.limit ?? 100]);
  return rows.map(toSchedule);
}

/**
 * Commit schedule steps on `tx`, in order. Throws ScheduleStepRefused (the caller rolls back all of them) when a
 * fence fails, a consumed timer is gone, or a slot of a firing is already recorded.
 */
export async function commitScheduleSteps(tx: SqlExecutor, commits: readonly ScheduleStepCommit[]): Promise<EngineEvent[][]> {
  const written: EngineEvent[][] = [];
  for (const commit of commits) written.push(await commitScheduleStep(tx, commit));
  return written;
}

async function commitScheduleStep(tx: SqlExecutor, { id, fence, step, ...options }: ScheduleStepCommit): Promise<EngineEvent[]> {
  const { now } = options;
  const nodeId = options.nodeId ?? null;
  if (options.timerId !== undefined && !(await consumeTimer(tx, options.timerId))) throw new ScheduleStepRefused('the timer was delivered already');
  const updated = await tx.run(
    `UPDATE schedules SET state = ?, snapshot = ?, runs = ?, next_run_at = ?, cancel_reason = ?, updated_at = ? WHERE id = ? AND state = ? AND runs = ?`,
    [step.snapshot.value, JSON.stringify(step.snapshot), step.set.runs, step.set.nextRunAt, step.set.cancelReason, now, id, fence.state, fence.runs],
  );
  if (updated.changes === 0) throw new ScheduleStepRefused('the schedule moved on');
  await applyTimerChanges(tx, id, 0, step.timers, now);
  const events = await appendEvents(tx, [
    { at: now, actorId: id, kind: 'schedule', type: `schedule:${step.snapshot.value}`, from: fence.state, to: step.snapshot.value, cause: step.event, nodeId, attempt: null, detail: step.detail ?? null },
  ]);
  if (options.firing) events.push(...(await writeFiring(tx, id, options.firing, now)));
  if (step.followers) await tellFollowers(tx, id, step.followers, now);
  return events;
}

/**
 * Arm one timer, due now, for each live schedule that follows `id`, carrying the news meant for its state. Written
 * in the step's own transaction, so a follower hears of a run (or of the end) exactly when it is committed, on
 * whichever node delivers the timer; a later step's news replaces an undelivered one.
 */
async function tellFollowers(tx: SqlExecutor, id: string, news: FollowerNews, now: number): Promise<void> {
  const byState: Array<[string, ScheduleEvent | undefined]> = [
    ['active', news.ran ?? news.ended],
    ['paused', news.ended],
  ];
  for (const [state, event] of byState) {
    if (!event) continue;
    await tx.run(
      `INSERT OR REPLACE INTO timers (actor_id, key, event, due_at, attempt, created_at)
       SELECT id, ?, ?, ?, 0, ? FROM schedules WHERE after_schedule_id = ? AND state = ?`,
      [upstreamTimerId, JSON.stringify(event), now, now, id, state],
    );
  }
}

/** A firing's task (the same insert as every task's) and its history rows; a slot recorded before refuses all of it. */
async function writeFiring(tx: SqlExecutor, scheduleId: string, firing: ScheduleFiring, now: number): Promise<EngineEvent[]> {
  let taskId: string | null = null;
  const events: EngineEvent[] = [];
  if (firing.task) {
    const { task, dependsOn, decide } = firing.task;
    const node = { task, dependsOn };
    const inserted = await insertTaskGraph(tx, [node], [node], now, (_task, pending, failed) => decide(pending, failed));
    await tx.run(`UPDATE tasks SET schedule_id = ? WHERE id = ?`, [scheduleId, task.id]);
    taskId = task.id;
    events.push(...inserted.events);
  }
  for (const run of firing.runs) {
    const written = await tx.run(`INSERT OR IGNORE INTO schedule_runs (schedule_id, scheduled_for, fired_at, task_id, outcome, detail) VALUES (${placeholders(6)})`, [
      scheduleId,
      run.scheduledFor,
      now,
      run.withTask ? taskId : null,
      run.outcome,
      run.detail,
    ]);
    if (written.changes === 0) throw new ScheduleStepRefused(`slot ${new Date(run.scheduledFor).toISOString()} of ${scheduleId} already fired`);
  }
  return events;
}

/** A schedule's history, newest slot first, with each task's state. */
export async function scheduleRuns(db: SqlExecutor, id: string, limit: number): Promise<ScheduleRunRecord[]> {
  const rows = await db.all(
    `SELECT r.*, t.state AS task_state FROM schedule_runs r LEFT JOIN tasks t ON t.id = r.task_id WHERE r.schedule_id = ? ORDER BY r.scheduled_for DESC LIMIT ?`,
    [id, limit],
  );
  return rows.map(toScheduleRun);
}

/** Ids of a schedule's tasks that are not finished. */
export async function unfinishedScheduleTasks(db: SqlExecutor, id: string): Promise<string[]> {
  const rows = await db.all(`SELECT id FROM tasks WHERE schedule_id = ? AND state NOT IN (${placeholders(finishedStates.length)}) ORDER BY created_at`, [id, ...finishedStates]);
  return rows.map((row) => String(row.id));
}

/** Which of the schedules `ids` have a task that is not finished. */
export async function busySchedules(db: SqlExecutor, ids: readonly string[]): Promise<string[]> {
  if (ids.length === 0) return [];
  const rows = await db.all(
    `SELECT DISTINCT schedule_id FROM tasks WHERE schedule_id IN (${placeholders(ids.length)}) AND state NOT IN (${placeholders(finishedStates.length)})`,
    [...ids, ...finishedStates],
  );
  return rows.map((row) => String(row.schedule_id));
}

/** How many schedules are active. */
export async function countActiveSchedules(db: SqlExecutor): Promise<number> {
  const rows = await db.all(`SELECT COUNT(*) AS n FROM schedules WHERE state = 'active'`);
  return Number(rows[0]?.n ?? 0);
}
