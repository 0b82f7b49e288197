/** DelegateTask: queue a task for a background Claude Code session and make sure a runner will run it. */
import { z } from 'zod';
import { delegateTaskShape } from '../../../engine/task-input.js';
import type { TaskView } from '../../../engine/task-service.js';
import { statusLabel } from '../../cli/format.js';
import { taskStates, taskViewSchema } from './task-view.js';
import { defineTool, type RunnerReport } from './tool.js';

/** The result of a tool that queued a task (DelegateTask, RetryTask). */
export const queuedShape = {
  taskId: z.string().describe('The new task id; pass it to TaskStatus, TaskLogs, CancelTask or dependsOn.'),
  status: z.enum(taskStates).describe('queued, waiting (on dependencies), ready, or failed at once when a dependency already failed.'),
  runner: z
    .enum(['running', 'started', 'starting', 'disabled', 'failed'])
    .describe('Whether a runner will pick the task up: running, started or starting; disabled (none is up and DELEGATE_AUTOSTART=0: run `delegate serve`); failed (could not start one).'),
  task: taskViewSchema,
};

/** The text of a tool that queued a task: what it is waiting for and who will run it. */
export function queuedText(verb: string, task: TaskView, runner: RunnerReport): string {
  const head = `${verb} ${task.taskId} (${task.priority}, ${task.agent}) in ${task.workingDirectory}.`;
  const state =
    task.status === 'waiting'
      ? `It waits for ${task.dependsOn.join(', ')} to complete.`
      : task.status === 'failed'
        ? `It failed at once: ${statusLabel(task)}${task.error ? ` — ${task.error}` : ''}.`
        : '';
  const next = task.status === 'failed' ? '' : `Follow it with TaskStatus and read its output with TaskLogs (taskId ${task.taskId}).`;
  return [head, state, task.status === 'failed' ? '' : runner.note, next].filter(Boolean).join(' ');
}

export const delegateTask = defineTool({
  name: 'DelegateTask',
  title: 'Delegate a task to a background Claude Code session',
  description:
    'Queue a task for a background Claude Code session and return at once with its taskId. A runner on this machine ' +
    '(started on demand) runs it; it keeps running after this conversation ends. Order work with dependsOn (a DAG) and ' +
    "pass a finished dependency's output on with continueFrom. The agent runs in workingDirectory (default: this " +
    "server's working directory) with permissionMode (default DELEGATE_PERMISSION_MODE, bypassPermissions: no " +
    'prompts); narrow it with allowedTools/disallowedTools. Check progress with TaskStatus, output with TaskLogs.',
  input: delegateTaskShape,
  output: queuedShape,
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const task = await deps.tasks.delegate(input);
    const runner = await deps.ensureRunner();
    return { text: queuedText('Queued', task, runner), data: { taskId: task.taskId, status: task.status as (typeof taskStates)[number], runner: runner.runner, task } };
  },
});
