/** ListSchedules: schedules, newest first, optionally of one status. */
import { z } from 'zod';
import { scheduleStates } from '../../../actors/schedule.machine.js';
import { scheduleLine, scheduleViewSchema } from './schedule-view.js';
import { defineTool, oneOf } from './tool.js';

export const listSchedules = defineTool({
  name: 'ListSchedules',
  title: 'List schedules',
  description: 'List schedules, newest first, with their next run time; filter by status (active, paused, completed, cancelled, expired).',
  input: {
    status: oneOf('status', scheduleStates).optional().describe('Only schedules in this state.'),
  },
  output: { schedules: z.array(scheduleViewSchema).describe('Newest first.') },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(input, deps) {
    const schedules = await deps.schedules.list({ status: input.status });
    return { text: schedules.length ? schedules.map(scheduleLine).join('\n') : 'No schedules.', data: { schedules } };
  },
});
