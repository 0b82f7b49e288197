/** CancelSchedule: end a schedule; with cancelTasks, its unfinished tasks are cancelled too. */
import { z } from 'zod';
import { scheduleIdSchema } from '../../../engine/schedule-input.js';
import { cancelReasonSchema } from '../../../engine/task-input.js';
import { scheduleLine, scheduleViewSchema } from './schedule-view.js';
import { defineTool } from './tool.js';

export const cancelSchedule = defineTool({
  name: 'CancelSchedule',
  title: 'Cancel a schedule',
  description: 'Cancel an active or paused schedule: it fires no more. With cancelTasks, its queued or running tasks are cancelled too.',
  input: {
    scheduleId: scheduleIdSchema('scheduleId').describe('The schedule to cancel.'),
    reason: cancelReasonSchema,
    cancelTasks: z
      .boolean({ error: (issue) => `cancelTasks ${JSON.stringify(issue.input)}: expected true or false` })
      .optional()
      .describe('Also cancel its unfinished tasks (default false).'),
  },
  output: { schedule: scheduleViewSchema },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const schedule = await deps.schedules.cancel(input.scheduleId, input.reason, input.cancelTasks ?? false);
    return { text: scheduleLine(schedule), data: { schedule } };
  },
});
