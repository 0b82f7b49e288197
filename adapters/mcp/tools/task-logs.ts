/** TaskLogs: the output of a task — the agent's text, its stderr, or both. */
import { z } from 'zod';
import { taskIdSchema } from '../../../engine/task-input.js';
import { printable, statusLabel } from '../../cli/format.js';
import { taskStates } from './task-view.js';
import { defineTool, oneOf, wholeNumber } from './tool.js';

const streams = ['stdout', 'stderr', 'both'] as const;

export const taskLogs = defineTool({
  name: 'TaskLogs',
  title: "Read a task's output",
  description:
    "The output of a task so far: the agent's text (stdout, not raw JSON), its stderr, or both (stderr lines " +
    'prefixed [stderr]). Use tail for the last lines of long outputs.',
  input: {
    taskId: taskIdSchema('taskId').describe('The task whose output to read.'),
    tail: wholeNumber('tail', 1, 100_000, 'lines').optional().describe('Only the last this many lines (default: all).'),
    stream: oneOf('stream', streams).optional().describe("stdout (default: the agent's text), stderr, or both."),
  },
  output: {
    taskId: z.string().describe('The task.'),
    status: z.enum(taskStates).describe('Its state now; output may still grow while it is running.'),
    stream: z.enum(streams).describe('Which output these lines are.'),
    lines: z.array(z.string()).describe('Output lines, oldest first.'),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(input, deps) {
    const stream = input.stream ?? 'stdout';
    const { task, lines } = await deps.tasks.logs(input.taskId, { tail: input.tail, stream });
    const which = stream === 'both' ? 'output' : stream;
    const head = lines.length
      ? `${task.taskId} (${statusLabel(task)}): ${input.tail !== undefined ? `last ${lines.length} lines` : `${lines.length} lines`} of ${which}`
      : `${task.taskId} (${statusLabel(task)}): no ${which} yet`;
    return {
      // The text is for reading (clients may print it); the lines in structuredContent stay exact.
      text: [head, ...lines.map((line) => printable(line, { multiline: true }))].join('\n'),
      data: { taskId: task.taskId, status: task.status as (typeof taskStates)[number], stream, lines },
    };
  },
});
