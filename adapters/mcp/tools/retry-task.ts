/** RetryTask: run a finished task again as a new task with retryOf set. */
import { taskIdSchema } from '../../../engine/task-input.js';
import { queuedShape, queuedText } from './delegate-task.js';
import type { taskStates } from './task-view.js';
import { defineTool } from './tool.js';

export const retryTask = defineTool({
  name: 'RetryTask',
  title: 'Retry a finished task',
  description:
    'Run a failed, completed or cancelled task again as a new task with the same prompt and settings; the new task ' +
    'records retryOf. Starts fresh (no session or checkpoint context). Returns the new taskId.',
  input: {
    taskId: taskIdSchema('taskId').describe('The failed, completed or cancelled task to run again.'),
  },
  output: queuedShape,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const task = await deps.tasks.retry(input.taskId);
    const runner = await deps.ensureRunner();
    return {
      text: queuedText(`Queued ${input.taskId} again as`, task, runner),
      data: { taskId: task.taskId, status: task.status as (typeof taskStates)[number], runner: runner.runner, task },
    };
  },
});
