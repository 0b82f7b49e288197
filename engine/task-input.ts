/**
 * The input contract of a new task, shared by every front door (MCP, CLI, Action). Each field has a
 * description and a one-line error that names the field, the value and what is allowed.
 */
import { isAbsolute } from 'node:path';
import { statSync } from 'node:fs';
import { z } from 'zod';
import { permissionModes, taskLimits } from './config.js';
import { printable, textProblem, type TextShape } from './control-characters.js';
import { UsageError } from './errors.js';
import { priorities } from './store/store.js';

/** A value as error messages show it: strings quoted with control characters escaped (the message stays one safe line), the rest as JSON. */
export const shown = (value: unknown): string => (typeof value === 'string' ? `'${printable(value)}'` : (JSON.stringify(value) ?? String(value)));

/**
 * A refinement that refuses text the store would not keep as given or a terminal would obey: control characters
 * (`multiline` text may hold newline, tab and carriage return) and unpaired surrogates.
 */
export function storableText(field: string, shape: TextShape) {
  return (value: string, ctx: z.RefinementCtx): void => {
    const problem = textProblem(field, value, shape);
    if (problem) ctx.addIssue({ code: 'custom', message: problem, input: value });
  };
}

/** A whole number in a range, with one-line messages naming the field and the range. */
export function intInRange(field: string, min: number, max: number, unit: string) {
  const expected = (issue: { input?: unknown }): string => `${field} ${shown(issue.input)}: expected a whole number of ${unit} from ${min} to ${max}`;
  return z.number({ error: expected }).int({ error: expected }).min(min, { error: expected }).max(max, { error: expected });
}

const taskIdPattern = /^task-[a-z0-9]+$/;

/** A task id as users pass it. */
export function taskIdSchema(field: string) {
  return z
    .string({ error: (issue) => `${field} ${shown(issue.input)}: expected a task id like task-1a2b3c4d5e6f` })
    .superRefine(storableText(field, 'line'))
    .regex(taskIdPattern, { error: (issue) => `${field} ${shown(issue.input)}: expected a task id like task-1a2b3c4d5e6f` });
}

/** Fields of DelegateTask (SPEC §4), as a zod shape so the MCP server can publish it. */
export const delegateTaskShape = {
  prompt: z
    .string({ error: (issue) => `prompt ${shown(issue.input)}: expected a non-empty string` })
    .superRefine(storableText('prompt', 'multiline'))
    .refine((value) => value.trim().length > 0, { error: 'prompt: expected a non-empty string (got an empty one)' })
    .describe('What the background Claude Code session should do.'),
  priority: z
    .enum(priorities as [string, ...string[]], { error: (issue) => `priority ${shown(issue.input)}: expected P0, P1 or P2` })
    .optional()
    .describe('P0 (urgent) runs before P1 before P2 (default P2); equal priorities run oldest first.'),
  dependsOn: z
    .array(taskIdSchema('dependsOn'), { error: (issue) => `dependsOn ${shown(issue.input)}: expected an array of task ids` })
    .optional()
    .describe('Task ids that must complete before this task starts.'),
  continueFrom: taskIdSchema('continueFrom')
    .optional()
    .describe('A task id from dependsOn whose checkpoint (output, git state, errors) is prepended to the prompt.'),
  timeout: intInRange('timeout', taskLimits.timeoutMs.min, taskLimits.timeoutMs.max, 'milliseconds')
    .optional()
    .describe('Kill the task after this many milliseconds (default TASK_TIMEOUT, 30 minutes).'),
  maxOutputBuffer: intInRange('maxOutputBuffer', taskLimits.maxOutputBuffer.min, taskLimits.maxOutputBuffer.max, 'bytes')
    .optional()
    .describe('Kill the task when its output exceeds this many bytes (default MAX_OUTPUT_BUFFER, 10 MiB).'),
  workingDirectory: z
    .string({ error: (issue) => `workingDirectory ${shown(issue.input)}: expected an absolute path of an existing directory` })
    .superRefine(storableText('workingDirectory', 'line'))
    .optional()
    .describe("Absolute path the agent runs in; must exist. Default: the front door's own working directory."),
  agent: z
    .string({ error: (issue) => `agent ${shown(issue.input)}: expected an agent name such as claude` })
    .superRefine(storableText('agent', 'line'))
    .optional()
    .describe(
      'Which agent runs the task: claude (default), codex (OpenAI Codex CLI), or shell (the prompt run as one command, ' +
        'no shell; refused over MCP unless DELEGATE_ALLOW_SHELL_AGENT=1).',
    ),
  model: z
    .string({ error: (issue) => `model ${shown(issue.input)}: expected a model name` })
    .min(1, { error: 'model: expected a model name (got an empty one)' })
    .superRefine(storableText('model', 'line'))
    .optional()
    .describe('Model for the agent, e.g. sonnet or opus.'),
  permissionMode: z
    .enum(permissionModes, { error: (issue) => `permissionMode ${shown(issue.input)}: expected one of ${permissionModes.join(', ')}` })
    .optional()
    .describe('claude --permission-mode for this task (default DELEGATE_PERMISSION_MODE, bypassPermissions).'),
  allowedTools: z
    .array(z.string().min(1).superRefine(storableText('allowedTools', 'line')), { error: (issue) => `allowedTools ${shown(issue.input)}: expected an array of tool names` })
    .optional()
    .describe('Only these tools may be used (claude --allowedTools).'),
  disallowedTools: z
    .array(z.string().min(1).superRefine(storableText('disallowedTools', 'line')), { error: (issue) => `disallowedTools ${shown(issue.input)}: expected an array of tool names` })
    .optional()
    .describe('These tools may not be used (claude --disallowedTools).'),
  maxBudgetUsd: z
    .number({ error: (issue) => `maxBudgetUsd ${shown(issue.input)}: expected a positive number of US dollars` })
    .positive({ error: (issue) => `maxBudgetUsd ${shown(issue.input)}: expected a positive number of US dollars` })
    .optional()
    .describe('Stop the agent when it has spent this many US dollars (claude --max-budget-usd).'),
  worktree: z
    .boolean({ error: (issue) => `worktree ${shown(issue.input)}: expected true or false` })
    .optional()
    .describe(
      'Run in a fresh git worktree of the repository workingDirectory is in, on its own branch delegate/<task id>, under the data dir; tasks that continue from it (continueFrom, resume, retry) run in the same worktree. Merge with `delegate worktree merge <id>`.',
    ),
};

export const delegateTaskSchema = z.object(delegateTaskShape).strict();

/** CancelTask's reason, kept in the task history; may span lines. */
export const cancelReasonSchema = z
  .string({ error: (issue) => `reason ${shown(issue.input)}: expected a string` })
  .max(1000, { error: 'reason: expected at most 1000 characters' })
  .superRefine(storableText('reason', 'multiline'))
  .optional()
  .describe('Why, kept in the task history.');

/** ResumeTask's extra instructions, added to the resumed prompt; may span lines. */
export const additionalContextSchema = z
  .string({ error: (issue) => `additionalContext ${shown(issue.input)}: expected a string` })
  .superRefine(storableText('additionalContext', 'multiline'))
  .optional()
  .describe('Extra instructions for the resumed run, e.g. "Try a different approach this time".');
/** DelegateTask input as validated. */
export type DelegateTaskInput = z.infer<typeof delegateTaskSchema>;

/**
 * The first zod issue as one line naming its field: the schema's own message, or for an unknown field the
 * allowed ones, or for a missing field what it expects.
 */
export function firstIssueMessage(error: z.ZodError, input: unknown, allowedFields: readonly string[]): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid input';
  if (issue.code === 'unrecognized_keys') {
    // Only the top level's fields are known here; a nested object's unknown field is named by its path.
    if (issue.path.length > 0) return `${issue.keys.map((key) => fieldPath([...issue.path, key])).join(', ')}: unknown field`;
    return `${issue.keys.join(', ')}: unknown field; allowed fields are ${allowedFields.join(', ')}`;
  }
  const field = fieldPath(issue.path);
  const leaf = issue.path.at(-1);
  if (issue.code === 'custom' && typeof leaf === 'number') {
    // storableText names its field; in a list, name the entry (`allowedTools[1]: …`), so the index in the message is not mistaken for it.
    const name = String(issue.path.filter((part) => typeof part === 'string').at(-1));
    if (issue.message.startsWith(`${name}:`)) return `${field}${issue.message.slice(name.length)}`;
  }
  // Schema messages start with their field's name ("prompt 3: …", or for an array item the array's name):
  // a nested field gets its whole path in place of its name.
  const message = !field
    ? issue.message
    : typeof leaf === 'string' && issue.path.length > 1 && issue.message.startsWith(leaf)
      ? `${field}${issue.message.slice(leaf.length)}`
      : issue.message.startsWith(String(issue.path[0])) ? issue.message : `${field}: ${issue.message}`;
  const top = issue.path[0];
  const missing = issue.path.length === 1 && typeof top === 'string' && typeof input === 'object' && input !== null && (input as Record<string, unknown>)[top] === undefined;
  if (missing) {
    // Field messages read "<field> <value>: expected …"; a missing field has no value to show.
    return `${field}: missing; ${message.includes(': ') ? message.slice(message.indexOf(': ') + 2) : message}`;
  }
  return message;
}

/** A field's path as users write it: `steps[0].prompt`. */
function fieldPath(path: ReadonlyArray<PropertyKey>): string {
  return path.map((part, index) => (typeof part === 'number' ? `[${part}]` : `${index > 0 ? '.' : ''}${String(part)}`)).join('');
}

/** Parse with a schema, throwing a one-line UsageError. */
export function parseInput<T extends z.ZodType>(schema: T, input: unknown): z.infer<T> {
  const result = schema.safeParse(input);
  if (!result.success) {
    const allowed = schema instanceof z.ZodObject ? Object.keys(schema.shape) : [];
    throw new UsageError('invalid_input', firstIssueMessage(result.error, input, allowed));
  }
  return result.data;
}

/** Check a working directory: absolute and an existing directory. */
export function checkWorkingDirectory(dir: string): string {
  if (!isAbsolute(dir)) throw new UsageError('invalid_input', `workingDirectory ${shown(dir)}: expected an absolute path of an existing directory`);
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError('invalid_input', `workingDirectory ${shown(dir)}: no such directory; expected an absolute path of an existing directory`);
  return dir;
}

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** A delay as users write it: milliseconds as a number, or `500ms`, `30s`, `5m`, `2h`, `1d`. */
export function parseDelay(value: string | number, field: string): number {
  const message = `${field} ${shown(value)}: expected a duration such as 30s, 5m or 2h (or milliseconds), at most 24h`;
  let ms: number;
  if (typeof value === 'number') ms = value;
  else {
    const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$/.exec(value);
    if (!match) throw new UsageError('invalid_input', message);
    ms = Number(match[1]) * durationUnits[match[2] ?? 'ms']!;
  }
  if (!Number.isFinite(ms) || ms < 0 || ms > 86_400_000) throw new UsageError('invalid_input', message);
  return Math.round(ms);
}

/** `--since` as docker takes it: an ISO 8601 time, or a duration back from `now` (`90s`, `10m`, `2h`, `7d`); null when it is neither. */
export function parseSince(value: string, now: number): number | null {
  const relative = /^(\d+)(ms|s|m|h|d)$/.exec(value);
  if (relative) return now - Number(relative[1]) * durationUnits[relative[2]!]!;
  const at = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  return Number.isNaN(at) ? null : at;
}
