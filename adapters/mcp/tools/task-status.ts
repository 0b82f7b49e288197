/** TaskStatus: one task in detail, or the newest tasks. */
import { z } from 'zod';
import { taskIdSchema } from '../../../engine/task-input.js';
import { formatLimits, formatTaskDetail, formatTaskTable } from '../../cli/format.js';
import { limitsViewSchema, taskStates, taskViewSchema } from './task-view.js';
import { defineTool, oneOf, wholeNumber } from './tool.js';

export const taskStatus = defineTool({
  name: 'TaskStatus',
  title: 'Show a task, or list tasks',
  description:
    'With taskId: that task — status (and why it failed), priority, timestamps, exit code, duration, cost, session id, ' +
    'dependencies and lineage (retryOf, parentTaskId), and what a paused or held task waits for. Without: tasks newest first, ' +
    'optionally only one status. Both with the usage limits in force and budgets (spent / budget today).',
  input: {
    taskId: taskIdSchema('taskId').optional().describe('The task to show. Leave out to list tasks.'),
    status: oneOf('status', taskStates).optional().describe('List only tasks in this state (ignored with taskId).'),
    limit: wholeNumber('limit', 1, 10_000, 'tasks').optional().describe('List at most this many tasks (default 50; ignored with taskId).'),
  },
  output: {
    task: taskViewSchema.optional().describe('The task, when taskId was given.'),
    tasks: z.array(taskViewSchema).optional().describe('The tasks, newest first, when no taskId was given.'),
    limits: limitsViewSchema.optional().describe('Usage limits in force and budgets (spent / budget today).'),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(input, deps) {
    if (input.taskId !== undefined) {
      const { task, limits } = await deps.tasks.getWithLimits(input.taskId);
      return { text: formatTaskDetail(task), data: { task, limits } };
    }
    const { tasks, limits } = await deps.tasks.listWithLimits({ status: input.status, limit: input.limit });
    const none = input.status ? `no ${input.status} tasks` : 'no tasks';
    return { text: formatLimits(limits) + (tasks.length ? formatTaskTable(tasks) : none), data: { tasks, limits } };
  },
});
