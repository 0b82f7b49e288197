/** PauseSchedule and ResumeSchedule: stop a schedule's firings for a while, and start them again. */
import { scheduleIdSchema } from '../../../engine/schedule-input.js';
import { scheduleLine, scheduleViewSchema } from './schedule-view.js';
import { defineTool } from './tool.js';

export const pauseSchedule = defineTool({
  name: 'PauseSchedule',
  title: 'Pause a schedule',
  description: 'Pause an active schedule: nothing fires until ResumeSchedule.',
  input: { scheduleId: scheduleIdSchema('scheduleId').describe('The schedule to pause.') },
  output: { schedule: scheduleViewSchema },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const schedule = await deps.schedules.pause(input.scheduleId);
    return { text: scheduleLine(schedule), data: { schedule } };
  },
});

export const resumeSchedule = defineTool({
  name: 'ResumeSchedule',
  title: 'Resume a schedule',
  description: 'Resume a paused schedule. nextRunAt is recomputed; slots missed while paused go through its missedRunPolicy at once.',
  input: { scheduleId: scheduleIdSchema('scheduleId').describe('The schedule to resume.') },
  output: { schedule: scheduleViewSchema },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const schedule = await deps.schedules.resume(input.scheduleId);
    const runner = await deps.ensureRunner();
    return { text: `${scheduleLine(schedule)} ${runner.note.replace('run it', 'fire it')}`, data: { schedule } };
  },
});
