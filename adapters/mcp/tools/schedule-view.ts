/** The schedule as the MCP tools return it: the engine's ScheduleView and ScheduleDetail, declared as output schemas. */
import { z } from 'zod';
import { scheduleStates } from '../../../actors/schedule.machine.js';
import { scheduleWhen, type ScheduleDetail, type ScheduleView } from '../../../engine/schedule-service.js';

const viewShape = {
  scheduleId: z.string().describe('The schedule id, sched-<random>.'),
  status: z.enum(scheduleStates).describe('active, paused, completed, cancelled or expired.'),
  prompt: z.string().describe('What each run is asked to do.'),
  scheduleType: z.enum(['cron', 'one_time']).describe('cron or one_time.'),
  cronExpression: z.string().nullable().describe('The cron expression of a cron schedule.'),
  scheduledAt: z.string().nullable().describe('When a one_time schedule runs (ISO 8601 UTC).'),
  timezone: z.string().describe('IANA time zone the cron expression is read in.'),
  missedRunPolicy: z.string().describe('skip, catchup or fail.'),
  priority: z.string().describe('Priority of its tasks.'),
  workingDirectory: z.string().describe('Where its tasks run.'),
  agent: z.string().describe('Which agent runs its tasks.'),
  maxRuns: z.number().nullable().describe('Completes after this many runs.'),
  runCount: z.number().describe('Tasks started so far.'),
  expiresAt: z.string().nullable().describe('When it expires (ISO 8601 UTC).'),
  dailyBudgetUsd: z.number().nullable().describe("US dollars its tasks may spend per day (the runner's local day), if limited."),
  afterScheduleId: z.string().nullable().describe('The schedule it follows: it fires when that one next starts a task.'),
  nextRunAt: z.string().nullable().describe('Its next slot (ISO 8601 UTC), null when none (a chained schedule has none).'),
  cancelReason: z.string().nullable().describe('Why it was cancelled.'),
  createdAt: z.string().describe('When it was created (ISO 8601 UTC).'),
  updatedAt: z.string().describe('When it last changed (ISO 8601 UTC).'),
};

/** One schedule. */
export const scheduleViewSchema: z.ZodType<ScheduleView> = z.object(viewShape).describe('A schedule.');

/** One schedule with its next slots and history. */
export const scheduleDetailSchema: z.ZodType<ScheduleDetail> = z
  .object({
    ...viewShape,
    nextRuns: z.array(z.string()).describe('The next (up to) 5 slots, ISO 8601 UTC.'),
    history: z
      .array(
        z.object({
          scheduledFor: z.string().describe('The slot (ISO 8601 UTC).'),
          firedAt: z.string().describe('When it was handled (ISO 8601 UTC).'),
          taskId: z.string().nullable().describe('The task it started, if any.'),
          taskStatus: z.string().nullable().describe("That task's status now."),
          outcome: z.enum(['started', 'catchup', 'missed', 'skipped_overlap']).describe('started; catchup (one run for missed slots); missed (policy fail); skipped_overlap (the previous run was unfinished).'),
          detail: z.string().nullable().describe('More about it.'),
        }),
      )
      .describe('Newest slot first.'),
  })
  .describe('A schedule with its next slots and history.');

/** One line about a schedule for tool texts. */
export function scheduleLine(view: ScheduleView): string {
  return `${view.scheduleId} ${view.status}: ${scheduleWhen(view)}, next run ${view.nextRunAt ?? 'none'}, ${view.runCount} run(s) so far.`;
}
