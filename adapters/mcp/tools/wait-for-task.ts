/** WaitForTask: block until tasks finish, with MCP progress notifications while waiting (SPEC §4, §12). */
import { z } from 'zod';
import { taskIdSchema, shown } from '../../../engine/task-input.js';
import { formatDuration, formatTaskTable, statusLabel } from '../../cli/format.js';
import { taskViewSchema } from './task-view.js';
import { defineTool, wholeNumber } from './tool.js';

/** Bounds of `timeout`: long enough for real work, short enough that a forgotten call ends within the hour. */
export const waitTimeoutLimits = { min: 1000, max: 3_600_000, fallback: 600_000 } as const;

const maxTaskIds = 100;

export const waitForTask = defineTool({
  name: 'WaitForTask',
  title: 'Wait for tasks to finish',
  description:
    'Block until every given task is completed, failed or cancelled, or until timeout passes; then return the tasks. ' +
    'A timeout is not an error: the result says timedOut and the tasks keep running. With a progressToken, sends ' +
    'notifications/progress while it waits (progress = tasks finished, total = tasks; the message names the task, ' +
    'its state and its last output line). Cancelling the request ends the wait, not the tasks. Keep timeout below ' +
    "your client's own request timeout.",
  input: {
    taskIds: z
      .array(taskIdSchema('taskIds'), { error: (issue) => `taskIds ${shown(issue.input)}: expected an array of 1 to ${maxTaskIds} task ids` })
      .min(1, { error: `taskIds: expected 1 to ${maxTaskIds} task ids, got none` })
      .max(maxTaskIds, { error: (issue) => `taskIds: expected 1 to ${maxTaskIds} task ids, got ${(issue.input as unknown[]).length}` })
      .describe(`The tasks to wait for (1 to ${maxTaskIds}).`),
    timeout: wholeNumber('timeout', waitTimeoutLimits.min, waitTimeoutLimits.max, 'milliseconds')
      .optional()
      .describe(`Stop waiting after this many milliseconds (default ${waitTimeoutLimits.fallback}).`),
  },
  output: {
    tasks: z.array(taskViewSchema).describe('The tasks as they are now, in the order asked.'),
    timedOut: z.boolean().describe('True when the timeout passed before every task finished; the unfinished ones keep running.'),
    finished: z.number().describe('How many of the tasks are finished.'),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(input, deps, call) {
    const timeoutMs = input.timeout ?? waitTimeoutLimits.fallback;
    const signal = deps.closing ? AbortSignal.any([call.signal, deps.closing]) : call.signal;
    const startedAt = Date.now();
    const { tasks, timedOut } = await deps.tasks.wait(input.taskIds, {
      timeoutMs,
      signal,
      onProgress: call.progress
        ? (update) =>
            call.progress!({
              progress: update.finished,
              total: update.total,
              message: `${update.task.taskId} ${statusLabel(update.task)}${update.lastLine ? `: ${update.lastLine}` : ''}`,
            })
        : undefined,
    });
    const finished = tasks.filter((task) => ['completed', 'failed', 'cancelled'].includes(task.status)).length;
    const head = timedOut
      ? `Timed out after ${formatDuration(timeoutMs)}: ${finished} of ${tasks.length} finished; the others keep running.`
      : `All ${tasks.length} finished after ${formatDuration(Date.now() - startedAt)}.`;
    return { text: `${head}\n${formatTaskTable(tasks)}`, data: { tasks, timedOut, finished } };
  },
});
