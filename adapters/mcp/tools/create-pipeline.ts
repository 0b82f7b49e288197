/** CreatePipeline: steps that run one after another, each continuing from the previous one's checkpoint. */
import { z } from 'zod';
import { delegateTaskShape, parseDelay, shown, storableText } from '../../../engine/task-input.js';
import { UsageError } from '../../../engine/errors.js';
import { taskViewSchema } from './task-view.js';
import { defineTool } from './tool.js';

const delay = z
  .union([z.number(), z.string()], { error: (issue) => `delay ${shown(issue.input)}: expected a duration such as 30s, 5m or 2h (or milliseconds)` })
  .optional()
  .describe('Wait this long after the previous step completed: 30s, 5m, 2h, or milliseconds (at most 24h).');

const step = z
  .object({
    prompt: z
      .string({ error: (issue) => `prompt ${shown(issue.input)}: expected a non-empty string` })
      .superRefine(storableText('prompt', 'multiline'))
      .describe('What this step should do.'),
    delay,
  })
  .strict();

export const createPipeline = defineTool({
  name: 'CreatePipeline',
  title: 'Queue a pipeline of steps',
  description:
    'Queue prompts as a chain: each step waits for the previous one (dependsOn) and gets its checkpoint in its prompt ' +
    '(continueFrom), optionally after a delay. If a step fails, the steps after it fail with dependency_failed. Give ' +
    'steps [{prompt, delay?}] or prompts [..]; priority, workingDirectory, agent, model and permission settings apply to every step.',
  input: {
    steps: z
      .array(step, { error: (issue) => `steps ${shown(issue.input)}: expected an array of {prompt, delay?}` })
      .optional()
      .describe('The steps in order, each {prompt, delay?}.'),
    prompts: z
      .array(z.string().superRefine(storableText('prompts', 'multiline')), { error: (issue) => `prompts ${shown(issue.input)}: expected an array of prompts` })
      .optional()
      .describe('The steps in order, as plain prompts (instead of steps).'),
    priority: delegateTaskShape.priority,
    workingDirectory: delegateTaskShape.workingDirectory,
    agent: delegateTaskShape.agent,
    model: delegateTaskShape.model,
    permissionMode: delegateTaskShape.permissionMode,
    allowedTools: delegateTaskShape.allowedTools,
    disallowedTools: delegateTaskShape.disallowedTools,
    timeout: delegateTaskShape.timeout,
  },
  output: {
    taskIds: z.array(z.string()).describe('The step tasks, in order.'),
    tasks: z.array(taskViewSchema).describe('The step tasks.'),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: false, openWorldHint: false },
  async run(input, deps) {
    const { steps, prompts, ...common } = input;
    if ((steps === undefined) === (prompts === undefined)) throw new UsageError('invalid_input', 'steps, prompts: expected exactly one of them');
    const list = steps ?? (prompts ?? []).map((prompt) => ({ prompt, delay: undefined }));
    const tasks = await deps.tasks.pipeline(
      list.map((entry, index) => ({
        prompt: entry.prompt,
        ...(entry.delay !== undefined ? { delayMs: parseDelay(entry.delay, `steps[${index}].delay`) } : {}),
      })),
      common,
    );
    const runner = await deps.ensureRunner();
    const ids = tasks.map((task) => task.taskId);
    return {
      text: `Queued a pipeline of ${ids.length} steps: ${ids.join(' → ')}. ${runner.note}`,
      data: { taskIds: ids, tasks },
    };
  },
});
