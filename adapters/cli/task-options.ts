/**
 * The options of a new task, declared once for every command that creates tasks (`delegate`, `pipeline`): they
 * are DelegateTask's fields (SPEC §4) in command-line syntax. Values go to the engine as typed, numbers as
 * numbers when they are, so the engine's schema validates them and its message names the bad value.
 */
import { Option } from 'clipanion';
import { statSync } from 'node:fs';
import path from 'node:path';
import { textProblem } from '../../engine/control-characters.js';
import { UsageError } from '../../engine/errors.js';
import { EngineCommand } from './context.js';
import { valueOption } from './options.js';

/** A number from the command line as a number when it is one, else as typed, so the schema's message shows it. */
export function numberish(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  return value.trim() !== '' && Number.isFinite(parsed) ? parsed : value;
}

/** A comma-separated list, blanks dropped. */
export function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/**
 * A directory as a shell user means it: relative to the command's current directory. (The MCP tools keep
 * requiring absolute paths: a model has no current directory the user can see.)
 */
export function resolveDirectory(value: string, cwd: string, flag: string): string {
  // Checked as it will be stored before it is looked up, like every other text field.
  const problem = textProblem('workingDirectory', value, 'line');
  if (problem) throw new UsageError('invalid_input', problem);
  const dir = path.resolve(cwd, value);
  if (statSync(dir, { throwIfNoEntry: false })?.isDirectory() !== true) {
    throw new UsageError('invalid_input', `${flag} '${value}'${dir === value ? '' : ` (${dir})`}: no such directory`);
  }
  return dir;
}

/** Base of the commands that create tasks: the task options and their DelegateTask fields. */
export abstract class TaskOptionsCommand extends EngineCommand {
  priority = valueOption('-p,--priority', 'P0|P1|P2', 'P0 runs before P1 before P2 (default P2)');
  timeout = valueOption('--timeout', 'MS', 'Milliseconds before the task is killed (1000–86400000)');
  maxOutputBuffer = valueOption('--max-output-buffer', 'BYTES', 'Bytes of output before the task is killed');
  workingDirectory = valueOption('-w,--working-directory', 'DIR', 'Directory to run in, relative to here (default: here)');
  agent = valueOption('--agent', 'NAME', 'Agent to run (default claude)');
  model = valueOption('--model', 'NAME', 'Model for the agent');
  permissionMode = valueOption('--permission-mode', 'MODE', 'claude --permission-mode for this task');
  allowedTools = valueOption('--allowed-tools', 'TOOLS', 'Comma-separated tools the agent may use');
  disallowedTools = valueOption('--disallowed-tools', 'TOOLS', 'Comma-separated tools the agent may not use');
  maxBudgetUsd = valueOption('--max-budget-usd', 'USD', 'Stop the agent after spending this many USD');
  worktree = Option.Boolean('--worktree', false, { description: 'Run in a fresh git worktree on branch delegate/<task id> (merge it with delegate worktree merge)' });

  /** The options given, as DelegateTask fields (unvalidated: the engine validates); options not given are left out. */
  protected taskFields(): Record<string, unknown> {
    const fields = {
      priority: this.priority,
      timeout: numberish(this.timeout),
      maxOutputBuffer: numberish(this.maxOutputBuffer),
      workingDirectory: this.workingDirectory === undefined ? undefined : resolveDirectory(this.workingDirectory, this.context.cwd, '--working-directory'),
      agent: this.agent,
      model: this.model,
      permissionMode: this.permissionMode,
      allowedTools: list(this.allowedTools),
      disallowedTools: list(this.disallowedTools),
      maxBudgetUsd: numberish(this.maxBudgetUsd),
      worktree: this.worktree || undefined,
    };
    return Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined));
  }
}
