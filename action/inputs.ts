/**
 * The Action's inputs (action.yml), read and checked whole before anything runs or is written. Secrets are
 * masked first, so no later message or log line can show them. Names follow the official Claude Code action
 * (`prompt`, `claude_args`, `anthropic_api_key`, `claude_code_oauth_token`, `path_to_claude_code_executable`).
 */
import { accessSync, constants, statSync } from 'node:fs';
import path from 'node:path';
import * as core from '@actions/core';
import { redactDatabaseUrl } from '../engine/config.js';
import { ActionInputError } from './action-input-error.js';
import { parseClaudeArgs, type ClaudeArgsFields } from './claude-args.js';
import { readTasks, type TaskSpec } from './tasks-input.js';

/** The validated inputs of one run. */
export interface ActionInputs {
  /** The tasks to run, dependencies first; empty when the run only fires due schedules (tick). */
  tasks: TaskSpec[];
  /** Task fields from `claude_args`, applied to every task. */
  claudeFields: ClaudeArgsFields;
  /** `max_concurrency`: at most this many agents at once (DELEGATE_MAX_WORKERS). */
  maxConcurrency?: number;
  /** `timeout_minutes`, in milliseconds: each task's timeout. */
  taskTimeoutMs?: number;
  /** `database_url`: a shared database (history across runs, due schedules fire); else an embedded one in RUNNER_TEMP. */
  databaseUrl?: string;
  databaseToken?: string;
  /** Absolute: where tasks run (default the workspace). */
  workingDirectory: string;
  anthropicApiKey?: string;
  claudeCodeOauthToken?: string;
  /** `path_to_claude_code_executable`, checked to be an executable file. */
  claudeExecutable?: string;
  /** npm version or tag of @anthropic-ai/claude-code to install when no claude is found. */
  claudeCodeVersion: string;
  /** Every secret value given, for redaction of what the Action writes. */
  secrets: string[];
}

const minutesLimit = { min: 1, max: 1440 } as const;
const concurrencyLimit = { min: 1, max: 1024 } as const;

function input(name: string): string {
  return core.getInput(name).trim();
}

function wholeNumber(name: string, raw: string, min: number, max: number, unit: string): number | undefined {
  if (raw === '') return undefined;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value < min || value > max) throw new ActionInputError(name, `${name} '${raw}': expected a whole number of ${unit} from ${min} to ${max}`);
  return value;
}

/** Mask every secret input (and a database URL that carries credentials) before anything can print it. */
function maskSecrets(): string[] {
  const secrets: string[] = [];
  for (const name of ['anthropic_api_key', 'claude_code_oauth_token', 'database_token']) {
    const value = input(name);
    if (value) secrets.push(value);
  }
  const url = input('database_url');
  if (url && redactDatabaseUrl(url) !== url) secrets.push(url);
  // Given at job level instead of as inputs, they reach the agents just the same (ANTHROPIC_/CLAUDE_ pass the safelist).
  for (const name of ['ANTHROPIC_API_KEY', 'CLAUDE_CODE_OAUTH_TOKEN', 'DELEGATE_DATABASE_TOKEN']) {
    const value = process.env[name]?.trim();
    if (value) secrets.push(value);
  }
  for (const secret of secrets) core.setSecret(secret);
  return secrets;
}

function isExecutableFile(file: string): boolean {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
}

/** Read and check every input; throws ActionInputError (one line naming the input) at the first bad one. */
export function readInputs(): ActionInputs {
  const secrets = maskSecrets();
  const prompt = core.getInput('prompt');
  const tasksText = core.getInput('tasks');
  const databaseUrl = input('database_url');
  if (prompt.trim() !== '' && tasksText.trim() !== '') throw new ActionInputError('prompt', 'prompt and tasks: give one of them, not both');
  let tasks: TaskSpec[] = [];
  if (tasksText.trim() !== '') tasks = readTasks(tasksText);
  else if (prompt.trim() !== '') tasks = [{ id: 'prompt', index: 0, label: 'prompt', prompt, dependsOn: [] }];
  else if (!databaseUrl) throw new ActionInputError('prompt', 'prompt or tasks: one is required (or database_url alone, to run the due schedules stored there)');

  if (databaseUrl && !/^(file:|libsql:\/\/|https?:\/\/|wss?:\/\/)/.test(databaseUrl)) {
    throw new ActionInputError('database_url', `database_url '${redactDatabaseUrl(databaseUrl)}': expected a libsql://, https:// or file: URL`);
  }
  const databaseToken = input('database_token');
  if (databaseToken && !databaseUrl) throw new ActionInputError('database_token', 'database_token: only used with database_url, which is empty');

  const workspace = process.env.GITHUB_WORKSPACE || process.cwd();
  const workingDirectoryRaw = input('working_directory');
  const workingDirectory = path.resolve(workspace, workingDirectoryRaw || '.');
  let isDirectory = false;
  try {
    isDirectory = statSync(workingDirectory).isDirectory();
  } catch {
    isDirectory = false;
  }
  if (!isDirectory) throw new ActionInputError('working_directory', `working_directory '${workingDirectoryRaw || workingDirectory}': no such directory (relative paths start at the workspace)`);

  const claudeExecutableRaw = input('path_to_claude_code_executable');
  const claudeExecutable = claudeExecutableRaw ? path.resolve(workspace, claudeExecutableRaw) : undefined;
  if (claudeExecutable && !isExecutableFile(claudeExecutable)) {
    throw new ActionInputError('path_to_claude_code_executable', `path_to_claude_code_executable '${claudeExecutableRaw}': not an executable file`);
  }
  const timeoutMinutes = wholeNumber('timeout_minutes', input('timeout_minutes'), minutesLimit.min, minutesLimit.max, 'minutes');
  const maxConcurrency = wholeNumber('max_concurrency', input('max_concurrency'), concurrencyLimit.min, concurrencyLimit.max, 'agents');
  const anthropicApiKey = input('anthropic_api_key');
  const claudeCodeOauthToken = input('claude_code_oauth_token');
  return {
    tasks,
    claudeFields: parseClaudeArgs(core.getInput('claude_args')),
    ...(maxConcurrency !== undefined ? { maxConcurrency } : {}),
    ...(timeoutMinutes !== undefined ? { taskTimeoutMs: timeoutMinutes * 60_000 } : {}),
    ...(databaseUrl ? { databaseUrl } : {}),
    ...(databaseToken ? { databaseToken } : {}),
    workingDirectory,
    ...(anthropicApiKey ? { anthropicApiKey } : {}),
    ...(claudeCodeOauthToken ? { claudeCodeOauthToken } : {}),
    ...(claudeExecutable ? { claudeExecutable } : {}),
    claudeCodeVersion: input('claude_code_version') || 'latest',
    secrets,
  };
}
