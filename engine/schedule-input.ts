/**
 * The input contract of ScheduleTask (SPEC §4), shared by MCP and the CLI, and the checks the schema cannot do
 * alone (a cron expression and time zone that croner accepts, times in the future). Every refusal is one line
 * naming the field and what is allowed, and comes before anything is written.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { agentByName, agentNames } from './agent.js';
import { maxDailyBudgetUsd, type DelegateConfig } from './config.js';
import { UsageError } from './errors.js';
import { cronProblem, nextSlot, timezoneKnown } from './schedule-slots.js';
import type { MissedRunPolicy, NewSchedule, ScheduleRecord } from './store/schedule-records.js';
import type { NewTask, Priority } from './store/store.js';
import { checkWorkingDirectory, delegateTaskShape, intInRange, shown, storableText } from './task-input.js';
import { newTaskId } from './task-service.js';

/** Missed-run policies, for validation and schemas. */
export const missedRunPolicies = ['skip', 'catchup', 'fail'] as const satisfies readonly MissedRunPolicy[];

/** The most runs a schedule may be limited to. */
export const maxRunsLimit = 1_000_000;

const isoTime = (field: string) =>
  z
    .string({ error: (issue) => `${field} ${shown(issue.input)}: expected an ISO 8601 time with a zone, e.g. 2026-02-19T08:00:00Z` })
    .superRefine(storableText(field, 'line'));

const idPattern = /^sched-[a-z0-9]+$/;

/** A schedule id as users pass it. */
export function scheduleIdSchema(field: string) {
  const expected = (issue: { input?: unknown }) => `${field} ${shown(issue.input)}: expected a schedule id like sched-1a2b3c4d5e6f`;
  return z.string({ error: expected }).regex(idPattern, { error: expected });
}

/** Fields of ScheduleTask, as a zod shape so the MCP server can publish it. */
export const scheduleTaskShape = {
  prompt: delegateTaskShape.prompt,
  scheduleType: z
    .enum(['cron', 'one_time'], { error: (issue) => `scheduleType ${shown(issue.input)}: expected cron or one_time` })
    .optional()
    .describe('cron (repeating, needs cronExpression) or one_time (needs scheduledAt); inferred from which of the two is given.'),
  cronExpression: z
    .string({ error: (issue) => `cronExpression ${shown(issue.input)}: expected a 5-field cron expression such as '0 2 * * *'` })
    .superRefine(storableText('cronExpression', 'line'))
    .optional()
    .describe("5-field cron expression (minute hour day-of-month month day-of-week), read in timezone, e.g. '0 2 * * *'."),
  scheduledAt: isoTime('scheduledAt').optional().describe('When a one_time schedule runs: ISO 8601 with a zone, in the future.'),
  timezone: z
    .string({ error: (issue) => `timezone ${shown(issue.input)}: expected an IANA time zone such as UTC or America/New_York` })
    .superRefine(storableText('timezone', 'line'))
    .optional()
    .describe('IANA time zone the cron expression is read in (default UTC); DST is followed.'),
  missedRunPolicy: z
    .enum(missedRunPolicies, { error: (issue) => `missedRunPolicy ${shown(issue.input)}: expected skip, catchup or fail` })
    .optional()
    .describe('Slots missed while no runner was up or while paused: skip (default), catchup (one run for all of them) or fail (recorded as failed runs).'),
  priority: delegateTaskShape.priority,
  workingDirectory: delegateTaskShape.workingDirectory,
  agent: delegateTaskShape.agent,
  maxRuns: intInRange('maxRuns', 1, maxRunsLimit, 'runs').optional().describe('Complete the schedule after this many runs.'),
  expiresAt: isoTime('expiresAt').optional().describe('Expire the schedule at this time (ISO 8601 with a zone, in the future).'),
  dailyBudgetUsd: z
    .number({ error: (issue) => `dailyBudgetUsd ${shown(issue.input)}: expected a positive number of US dollars, up to ${maxDailyBudgetUsd}` })
    .positive({ error: (issue) => `dailyBudgetUsd ${shown(issue.input)}: expected a positive number of US dollars, up to ${maxDailyBudgetUsd}` })
    .max(maxDailyBudgetUsd, { error: (issue) => `dailyBudgetUsd ${shown(issue.input)}: expected a positive number of US dollars, up to ${maxDailyBudgetUsd}` })
    .optional()
    .describe("US dollars this schedule's tasks may spend per day (the runner's local day). At 80 % a warning; at 100 % its queued tasks wait for the next day."),
  afterScheduleId: scheduleIdSchema('afterScheduleId')
    .optional()
    .describe(
      'Chain after another active or paused schedule: a one_time schedule (no cronExpression, no scheduledAt) that fires when that schedule next starts a task; its task runs after that task finishes, and fails with dependency_failed if it fails.',
    ),
};

/** ScheduleTask's input, validated by the schema. */
export type ScheduleTaskInput = z.infer<z.ZodObject<typeof scheduleTaskShape>>;

/** The schema of ScheduleTask's input. */
export const scheduleTaskSchema = z.object(scheduleTaskShape).strict();

/** A new random schedule id, `sched-` plus 12 hex digits. */
export function newScheduleId(): string {
  return `sched-${randomBytes(6).toString('hex')}`;
}

/** Whether an actor id names a schedule (timers are routed by it). */
export function isScheduleId(id: string): boolean {
  return id.startsWith('sched-');
}

/** An ISO 8601 time with a zone, as epoch ms; a UsageError naming the field otherwise. */
function parseTime(field: string, value: string): number {
  const expected = `${field} '${value}': expected an ISO 8601 time with a zone, e.g. 2026-02-19T08:00:00Z`;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i.test(value)) throw new UsageError('invalid_input', expected);
  const ms = Date.parse(value);
  if (Number.isNaN(ms)) throw new UsageError('invalid_input', expected);
  return ms;
}

/** How checkScheduleInput may bend the public contract (tests only). */
export interface ScheduleCheckOptions {
  /** Accept 6-field (seconds-first) cron expressions: an internal path for tests that need a slot every second. */
  allowSeconds?: boolean;
}

/** Check what the schema cannot and build the schedule row and its first slot; throws a UsageError, writes nothing. */
export function checkScheduleInput(input: ScheduleTaskInput, now: number, cwd: string, options: ScheduleCheckOptions = {}): { schedule: NewSchedule; firstRunAt: number | null } {
  const hasCron = input.cronExpression !== undefined;
  const hasAt = input.scheduledAt !== undefined;
  const chained = input.afterScheduleId !== undefined;
  if (chained) {
    if (hasCron || input.scheduleType === 'cron') throw new UsageError('invalid_input', 'afterScheduleId: a chained schedule is one_time; leave cronExpression and scheduleType cron out');
    if (hasAt) throw new UsageError('invalid_input', 'scheduledAt: leave it out with afterScheduleId; a chained schedule fires when the schedule it follows starts its next run');
  } else if (hasCron === hasAt) {
    throw new UsageError('invalid_input', 'cronExpression / scheduledAt: expected exactly one of them (cronExpression for cron, scheduledAt for one_time), or afterScheduleId to chain');
  }
  const type = hasCron ? 'cron' : 'one_time';
  if (input.scheduleType !== undefined && input.scheduleType !== type) {
    throw new UsageError('invalid_input', `scheduleType '${input.scheduleType}': ${input.scheduleType === 'cron' ? 'cron needs cronExpression, not scheduledAt' : 'one_time needs scheduledAt, not cronExpression'}`);
  }
  const timezone = input.timezone ?? 'UTC';
  if (!timezoneKnown(timezone)) throw new UsageError('invalid_input', `timezone '${timezone}': expected an IANA time zone such as UTC or America/New_York`);
  let cronExpression: string | null = null;
  let scheduledAt: number | null = null;
  if (input.cronExpression !== undefined) {
    cronExpression = input.cronExpression.trim().replace(/\s+/g, ' ');
    const fields = cronExpression.split(' ').length;
    const nickname = cronExpression.startsWith('@');
    if (!nickname && fields !== 5 && !(options.allowSeconds && fields === 6)) {
      throw new UsageError('invalid_input', `cronExpression '${cronExpression}': expected 5 fields (minute hour day-of-month month day-of-week), got ${fields}`);
    }
    const problem = cronProblem(cronExpression, timezone);
    if (problem) throw new UsageError('invalid_input', problem);
  } else if (hasAt) {
    scheduledAt = parseTime('scheduledAt', input.scheduledAt!);
    if (scheduledAt <= now) throw new UsageError('invalid_input', `scheduledAt '${input.scheduledAt}': expected a time in the future (now is ${new Date(now).toISOString()})`);
  }
  const expiresAt = input.expiresAt === undefined ? null : parseTime('expiresAt', input.expiresAt);
  if (expiresAt !== null && expiresAt <= now) throw new UsageError('invalid_input', `expiresAt '${input.expiresAt}': expected a time in the future (now is ${new Date(now).toISOString()})`);
  const agent = input.agent ?? 'claude';
  const known = agentNames();
  if (!known.includes(agent)) throw new UsageError('invalid_input', `agent '${agent}': expected one of ${known.join(', ')}`);
  // Its tasks carry no tool lists or budget; the permission mode is the firing node's, so only the prompt is checked here.
  agentByName(agent).checkTask?.({ prompt: input.prompt, permissionMode: 'bypassPermissions', allowedTools: [], disallowedTools: [] });
  const firstRunAt = chained ? null : nextSlot({ cronExpression, scheduledAt, timezone }, now);
  if (firstRunAt === null && !chained) throw new UsageError('invalid_input', `cronExpression '${cronExpression}': it never fires (no date matches it)`);
  return {
    firstRunAt,
    schedule: {
      id: newScheduleId(),
      prompt: input.prompt,
      type,
      cronExpression,
      scheduledAt,
      timezone,
      missedRunPolicy: input.missedRunPolicy ?? 'skip',
      priority: (input.priority ?? 'P2') as Priority,
      workingDirectory: checkWorkingDirectory(input.workingDirectory ?? cwd),
      agent,
      maxRuns: input.maxRuns ?? null,
      expiresAt,
      afterScheduleId: input.afterScheduleId ?? null,
      dailyBudgetUsd: input.dailyBudgetUsd ?? null,
    },
  };
}

/** The task a firing of `schedule` queues: its prompt, priority, directory and agent, with the firing node's limits. */
export function scheduledTask(schedule: ScheduleRecord, config: Pick<DelegateConfig, 'taskTimeoutMs' | 'maxOutputBuffer' | 'permissionMode'>): NewTask {
  return {
    id: newTaskId(),
    prompt: schedule.prompt,
    priority: schedule.priority,
    agent: schedule.agent,
    model: null,
    permissionMode: config.permissionMode,
    allowedTools: [],
    disallowedTools: [],
    workingDirectory: schedule.workingDirectory,
    timeoutMs: config.taskTimeoutMs,
    maxOutputBuffer: config.maxOutputBuffer,
    maxBudgetUsd: null,
    worktree: false,
    continueFrom: null,
    parentTaskId: null,
    retryOf: null,
    startDelayMs: 0,
    additionalContext: null,
    forkSessionId: null,
  };
}
