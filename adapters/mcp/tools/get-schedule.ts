/** GetSchedule: one schedule with its next 5 slots and its run history. */
import { scheduleIdSchema } from '../../../engine/schedule-input.js';
import { scheduleDetailSchema, scheduleLine } from './schedule-view.js';
import { defineTool, wholeNumber } from './tool.js';

export const getSchedule = defineTool({
  name: 'GetSchedule',
  title: 'Get a schedule and its history',
  description: 'A schedule with its next 5 run times and its execution history (scheduledFor, firedAt, taskId, task status), newest first.',
  input: {
    scheduleId: scheduleIdSchema('scheduleId').describe('The schedule.'),
    historyLimit: wholeNumber('historyLimit', 1, 1000, 'rows').optional().describe('History rows to return (default 20).'),
  },
  output: { schedule: scheduleDetailSchema },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(input, deps) {
    const schedule = await deps.schedules.get(input.scheduleId, input.historyLimit);
    const history = schedule.history.map((run) => `${run.scheduledFor} ${run.outcome}${run.taskId ? ` ${run.taskId} (${run.taskStatus})` : ''}`);
    const next = schedule.nextRuns.length ? `Next: ${schedule.nextRuns.join(', ')}.` : '';
    return { text: [scheduleLine(schedule), next, ...history].filter(Boolean).join('\n'), data: { schedule } };
  },
});
