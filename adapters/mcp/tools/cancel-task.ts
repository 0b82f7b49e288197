/** CancelTask: cancel a task; a runner kills its agent's process tree, its dependants fail. */
import { z } from 'zod';
import { cancelReasonSchema, taskIdSchema } from '../../../engine/task-input.js';
import { agentStopText, statusLabel } from '../../cli/format.js';
import { taskStates, taskViewSchema } from './task-view.js';
import { defineTool } from './tool.js';

export const cancelTask = defineTool({
  name: 'CancelTask',
  title: 'Cancel a task',
  description:
    'Cancel a queued, waiting or running task. A running agent and every process it started are killed. Tasks that ' +
    'depend on it fail with dependency_failed. Finished tasks cannot be cancelled.',
  input: {
    taskId: taskIdSchema('taskId').describe('The task to cancel.'),
    reason: cancelReasonSchema,
  },
  output: {
    taskId: z.string().describe('The task.'),
    status: z.enum(taskStates).describe('cancelled.'),
    failedDependants: z.array(z.string()).describe('Tasks that failed with dependency_failed because of this cancel.'),
    agentStop: z
      .enum(['runner', 'here', 'requested'])
      .nullable()
      .describe('Who stops its agent, if it was running: its runner; this server (its runner had died on this host); or requested of the runner on another host.'),
    task: taskViewSchema,
  },
  annotations: { readOnlyHint: false, destructiveHint: true, idempotentHint: true, openWorldHint: false },
  async run(input, deps) {
    const { agentStop, ...task } = await deps.tasks.cancel(input.taskId, input.reason);
    const dependants = await Promise.all(task.dependants.map((id) => deps.tasks.get(id)));
    const failedDependants = dependants.filter((dependant) => dependant.failReason === 'dependency_failed').map((dependant) => dependant.taskId);
    const text = [
      `${task.taskId} ${statusLabel(task)}${input.reason ? ` (${input.reason})` : ''}.`,
      agentStopText(agentStop),
      failedDependants.length ? `Failed with dependency_failed: ${failedDependants.join(', ')}.` : '',
    ];
    return {
      text: text.filter(Boolean).join(' '),
      data: { taskId: task.taskId, status: task.status as (typeof taskStates)[number], failedDependants, agentStop, task },
    };
  },
});
