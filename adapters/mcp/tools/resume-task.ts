/** ResumeTask: continue a finished task as a new task with its checkpoint and, where known, its agent session. */
import { additionalContextSchema, taskIdSchema } from '../../../engine/task-input.js';
import { queuedShape, queuedText } from './delegate-task.js';
import type { taskStates } from './task-view.js';
import { defineTool } from './tool.js';

export const resumeTask = defineTool({
  name: 'ResumeTask',
  title: 'Resume a finished task from its checkpoint',
  description:
    "Continue a failed, completed or cancelled task as a new task (parentTaskId set). Its prompt starts with the earlier run's " +
    'checkpoint (git branch, HEAD and uncommitted files, error, last 50 output lines) and your additionalContext; when the ' +
    'earlier Claude session is known, the new run continues it (claude --resume … --fork-session), so the agent remembers ' +
    'what it did. Returns the new taskId.',
  input: {
    taskId: taskIdSchema('taskId').describe('The failed, completed or cancelled task to continue.'),
    additionalContext: additionalContextSchema,
  },
  output: queuedShape,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const task = await deps.tasks.resume(input.taskId, input.additionalContext);
    const runner = await deps.ensureRunner();
    return {
      text: queuedText(`Resuming ${input.taskId} as`, task, runner),
      data: { taskId: task.taskId, status: task.status as (typeof taskStates)[number], runner: runner.runner, task },
    };
  },
});
