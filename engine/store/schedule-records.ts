/**
 * The records of the `schedules` and `schedule_runs` tables, and how their rows map onto them. Kept apart from
 * store.ts, which re-exports nothing of it: schedule code imports from here.
 */
import type { PersistedSchedule, ScheduleEvent, ScheduleState } from '../../actors/schedule.machine.js';
import { priorities, type NewTask, type Priority, type TaskStep, type TimerChange } from './records.js';
import type { SqlRow } from './sql-driver.js';

/** Cron (repeating) or one-time. */
export type ScheduleType = 'cron' | 'one_time';

/** What a firing does with slots missed while nothing ran them (SPEC §4). */
export type MissedRunPolicy = 'skip' | 'catchup' | 'fail';

/** A schedule as the store holds it. */
export interface ScheduleRecord {
  id: string;
  prompt: string;
  type: ScheduleType;
  cronExpression: string | null;
  scheduledAt: number | null;
  timezone: string;
  missedRunPolicy: MissedRunPolicy;
  priority: Priority;
  workingDirectory: string;
  agent: string;
  maxRuns: number | null;
  expiresAt: number | null;
  afterScheduleId: string | null;
  /** US dollars its tasks may spend per day (the runner's local day); past it, its tasks wait for the next day. */
  dailyBudgetUsd: number | null;
  state: ScheduleState;
  snapshot: PersistedSchedule;
  /** Tasks started so far. */
  runs: number;
  nextRunAt: number | null;
  cancelReason: string | null;
  createdAt: number;
  updatedAt: number;
}

/** What a new schedule is created with. */
export type NewSchedule = Omit<ScheduleRecord, 'state' | 'snapshot' | 'runs' | 'nextRunAt' | 'cancelReason' | 'createdAt' | 'updatedAt'>;

/** Columns a schedule step sets besides state and snapshot. */
export interface ScheduleColumns {
  runs: number;
  nextRunAt: number | null;
  cancelReason: string | null;
}

/** One decided step of a schedule: the next snapshot, its columns and its timers. */
export interface ScheduleStep {
  event: string;
  snapshot: PersistedSchedule;
  set: ScheduleColumns;
  timers: TimerChange[];
  detail?: string | undefined;
  /** News for the schedules that follow this one (`afterScheduleId`), delivered to each as a timer due now. */
  followers?: FollowerNews | undefined;
}

/**
 * What a step tells the schedules that follow it: `ran` (it started a task) goes to the active ones; `ended` (it
 * can never run again) to the paused ones, and to the active ones when it did not also run.
 */
export interface FollowerNews {
  ran?: Extract<ScheduleEvent, { type: 'UPSTREAM_RAN' }> | undefined;
  ended?: Extract<ScheduleEvent, { type: 'CANCEL' }> | undefined;
}

/** The guard of a schedule step: the state and run count it was decided on. */
export interface ScheduleFence {
  state: ScheduleState;
  runs: number;
}

/** One schedule step to commit: the step, the fence it was decided under, and what it writes besides. */
export interface ScheduleStepCommit {
  id: string;
  fence: ScheduleFence;
  step: ScheduleStep;
  now: number;
  nodeId?: string | null;
  /** The durable timer the step consumes. */
  timerId?: number;
  /** A firing's run rows and task. */
  firing?: ScheduleFiring;
}

/** How a slot ended: a task started for it (`started`; `catchup` for missed slots run together), or none did. */
export type ScheduleRunOutcome = 'started' | 'catchup' | 'missed' | 'skipped_overlap';

/** One row of a schedule's history. */
export interface NewScheduleRun {
  scheduledFor: number;
  outcome: ScheduleRunOutcome;
  detail: string | null;
  /** The firing's task runs this slot. */
  withTask: boolean;
}

/** What a firing writes with its step: history rows and at most one task. */
export interface ScheduleFiring {
  runs: NewScheduleRun[];
  task: { task: NewTask; dependsOn: string[]; decide: (pendingDeps: number, failedDependency: string | null) => TaskStep } | null;
}

/** A history row as read back, with its task's state. */
export interface ScheduleRunRecord {
  scheduleId: string;
  scheduledFor: number;
  firedAt: number;
  taskId: string | null;
  taskState: string | null;
  outcome: ScheduleRunOutcome;
  detail: string | null;
}

/** Schedule list filter. */
export interface ScheduleFilter {
  states?: readonly string[] | undefined;
  limit?: number | undefined;
}

const num = (value: unknown): number | null => (value === null || value === undefined ? null : Number(value));
const str = (value: unknown): string | null => (value === null || value === undefined ? null : String(value));

/** A `schedules` row as a record. */
export function toSchedule(row: SqlRow): ScheduleRecord {
  return {
    id: String(row.id),
    prompt: String(row.prompt),
    type: String(row.type) as ScheduleType,
    cronExpression: str(row.cron_expression),
    scheduledAt: num(row.scheduled_at),
    timezone: String(row.timezone),
    missedRunPolicy: String(row.missed_run_policy) as MissedRunPolicy,
    priority: priorities[Number(row.priority)] ?? 'P2',
    workingDirectory: String(row.working_directory),
    agent: String(row.agent),
    maxRuns: num(row.max_runs),
    expiresAt: num(row.expires_at),
    afterScheduleId: str(row.after_schedule_id),
    dailyBudgetUsd: num(row.daily_budget_usd),
    state: String(row.state) as ScheduleState,
    snapshot: JSON.parse(String(row.snapshot)) as PersistedSchedule,
    runs: Number(row.runs),
    nextRunAt: num(row.next_run_at),
    cancelReason: str(row.cancel_reason),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
}

/** A `schedule_runs` row (joined with its task's state) as a record. */
export function toScheduleRun(row: SqlRow): ScheduleRunRecord {
  return {
    scheduleId: String(row.schedule_id),
    scheduledFor: Number(row.scheduled_for),
    firedAt: Number(row.fired_at),
    taskId: str(row.task_id),
    taskState: str(row.task_state),
    outcome: String(row.outcome) as ScheduleRunOutcome,
    detail: str(row.detail),
  };
}
