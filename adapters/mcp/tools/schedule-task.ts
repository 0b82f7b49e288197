/** ScheduleTask: create a cron or one-time schedule and make sure a runner will fire it. */
import { z } from 'zod';
import { scheduleTaskShape } from '../../../engine/schedule-input.js';
import { scheduleLine, scheduleViewSchema } from './schedule-view.js';
import { defineTool } from './tool.js';

export const scheduleTask = defineTool({
  name: 'ScheduleTask',
  title: 'Schedule a recurring or one-time task',
  description:
    'Create a schedule that queues a background task at each slot: cron (5-field cronExpression, read in timezone, ' +
    'default UTC, DST followed) or one_time (scheduledAt, ISO 8601 with a zone; or afterScheduleId instead, to run once ' +
    'after the next run of another schedule). missedRunPolicy says what happens to ' +
    'slots missed while no runner was up or while paused: skip (default), catchup (one run for all of them) or fail ' +
    '(recorded as failed runs). A new run never starts while the previous one is unfinished. dailyBudgetUsd caps what ' +
    "its tasks spend per day (the runner's local day): past it they wait for the next day.",
  input: scheduleTaskShape,
  output: {
    scheduleId: z.string().describe('The new schedule id; pass it to GetSchedule, PauseSchedule, ResumeSchedule or CancelSchedule.'),
    nextRunAt: z.string().nullable().describe('Its first slot (ISO 8601 UTC).'),
    runner: z.enum(['running', 'started', 'starting', 'disabled', 'failed']).describe('Whether a runner is up to fire it.'),
    schedule: scheduleViewSchema,
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const schedule = await deps.schedules.create(input);
    const runner = await deps.ensureRunner();
    return {
      text: `${scheduleLine(schedule)} ${runner.note.replace('run it', 'fire it')}`,
      data: { scheduleId: schedule.scheduleId, nextRunAt: schedule.nextRunAt, runner: runner.runner, schedule },
    };
  },
});
