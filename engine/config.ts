/**
 * Configuration from the environment (SPEC §6), validated once at start. Out-of-range values fail with a
 * message naming the variable, the value and the allowed range, so nothing starts half-configured.
 */
import { statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError } from './errors.js';

/** The validated configuration of one process. */
export interface DelegateConfig {
  dataDir: string;
  databaseUrl: string;
  databaseToken: string | undefined;
  taskTimeoutMs: number;
  maxOutputBuffer: number;
  cpuThreshold: number;
  memoryReserve: number;
  /** Undefined: derive from CPU and memory (see resource-monitor). */
  maxWorkers: number | undefined;
  idleExitMs: number;
  /** A run's lease; a runner that misses renewing it for this long loses its tasks to another runner. */
  leaseMs: number;
  autostart: boolean;
  permissionMode: string;
  logLevel: LogLevel;
  /** The largest JSON-RPC message the MCP server reads, in bytes; a longer line is refused and skipped. */
  mcpMaxMessageBytes: number;
  /**
   * Whether MCP clients may queue `shell` tasks (the prompt run as a command). Off by default: an MCP client is a
   * model, and letting it run arbitrary commands through delegate must be the user's explicit choice.
   */
  allowShellAgent: boolean;
}

/** Log levels, quietest last. */
export const logLevels = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof logLevels)[number];

/** Permission modes the claude CLI accepts for `--permission-mode`. */
export const permissionModes = ['acceptEdits', 'bypassPermissions', 'default', 'plan', 'dontAsk'] as const;

/** Task limits shared by the config and per-task input validation. */
export const taskLimits = {
  timeoutMs: { min: 1000, max: 86_400_000 },
  maxOutputBuffer: { min: 1024, max: 1_073_741_824 },
} as const;

/**
 * Bounds of DELEGATE_MCP_MAX_MESSAGE_BYTES. The ceiling keeps one line well under what Node can decode into a
 * single string (about 512 MiB); the floor leaves room for any client's initialize message.
 */
const mcpMessageLimits = { min: 65_536, max: 268_435_456, fallback: 16_777_216 } as const;

function readInt(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number, unit: string): number {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = Number(raw.trim());
  if (!Number.isInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
    throw new UsageError('invalid_config', `${name}=${JSON.stringify(raw)}: expected ${range}${unit ? ` (${unit})` : ''}`);
  }
  return value;
}

function readChoice<T extends string>(env: NodeJS.ProcessEnv, name: string, fallback: T, allowed: readonly T[]): T {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return fallback;
  const value = raw.trim();
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError('invalid_config', `${name}=${JSON.stringify(raw)}: expected one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/** True when `file` exists and is not a directory. Other stat failures (a parent that is a file, no access) are left to the first use. */
function existsAsNonDirectory(file: string): boolean {
  try {
    return statSync(file, { throwIfNoEntry: false })?.isDirectory() === false;
  } catch {
    return false;
  }
}

/** Read and validate the configuration; throws UsageError('invalid_config') naming the variable. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): DelegateConfig {
  const dataDir = path.resolve(env.DELEGATE_DATA_DIR?.trim() || path.join(os.homedir(), '.delegate'));
  // A missing dir is created on first use; a file in its place would fail later as an internal EEXIST from mkdir.
  if (existsAsNonDirectory(dataDir)) {
    throw new UsageError('invalid_config', `${env.DELEGATE_DATA_DIR?.trim() ? 'DELEGATE_DATA_DIR' : 'the data dir'} ${dataDir} is a file, not a directory`);
  }
  const databaseUrl = env.DELEGATE_DATABASE_URL?.trim() || `file:${path.join(dataDir, 'delegate.db')}`;
  if (!/^(file:|libsql:\/\/|https?:\/\/|wss?:\/\/)/.test(databaseUrl)) {
    throw new UsageError(
      'invalid_config',
      `DELEGATE_DATABASE_URL=${JSON.stringify(databaseUrl)}: expected a file: URL (embedded) or a libsql://, https:// URL (libSQL server)`,
    );
  }
  const max = Number.MAX_SAFE_INTEGER;
  const maxWorkersRaw = env.DELEGATE_MAX_WORKERS?.trim();
  return {
    dataDir,
    databaseUrl,
    databaseToken: env.DELEGATE_DATABASE_TOKEN?.trim() || undefined,
    taskTimeoutMs: readInt(env, 'TASK_TIMEOUT', 1_800_000, taskLimits.timeoutMs.min, taskLimits.timeoutMs.max, 'milliseconds'),
    maxOutputBuffer: readInt(
      env,
      'MAX_OUTPUT_BUFFER',
      10_485_760,
      taskLimits.maxOutputBuffer.min,
      taskLimits.maxOutputBuffer.max,
      'bytes',
    ),
    cpuThreshold: readInt(env, 'CPU_THRESHOLD', 80, 1, 100, 'percent'),
    memoryReserve: readInt(env, 'MEMORY_RESERVE', 1_073_741_824, 0, max, 'bytes'),
    maxWorkers: maxWorkersRaw ? readInt(env, 'DELEGATE_MAX_WORKERS', 1, 1, 1024, 'worker slots') : undefined,
    idleExitMs: readInt(env, 'DELEGATE_IDLE_EXIT', 600_000, 0, max, 'milliseconds; 0 = never exit'),
    leaseMs: readInt(env, 'DELEGATE_LEASE_MS', 30_000, 1000, 600_000, 'milliseconds'),
    autostart: readChoice(env, 'DELEGATE_AUTOSTART', '1', ['0', '1']) === '1',
    permissionMode: readChoice(env, 'DELEGATE_PERMISSION_MODE', 'bypassPermissions', permissionModes),
    logLevel: readChoice(env, 'LOG_LEVEL', 'info', logLevels),
    mcpMaxMessageBytes: readInt(env, 'DELEGATE_MCP_MAX_MESSAGE_BYTES', mcpMessageLimits.fallback, mcpMessageLimits.min, mcpMessageLimits.max, 'bytes'),
    allowShellAgent: readChoice(env, 'DELEGATE_ALLOW_SHELL_AGENT', '0', ['0', '1']) === '1',
  };
}

/** Query parameters that carry credentials in libSQL/HTTP URLs (authToken, auth_token, password, api_key, …). */
const secretParam = /token|passw(or)?d|secret|key/i;

/** The database URL without userinfo or secret-looking query parameters, safe to write to a log. */
export function redactDatabaseUrl(url: string): string {
  // A file: URL is a local path: nothing to hide, and the exact path is what a reader of the log needs.
  if (url.startsWith('file:')) return url;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Unparseable, so we cannot tell the secrets apart: keep only what cannot hold one.
    return url.replace(/\/\/[^/?#]*@/, '//').replace(/[?#].*$/, '');
  }
  const secrets = [...parsed.searchParams.keys()].filter((name) => secretParam.test(name));
  if (parsed.username === '' && parsed.password === '' && secrets.length === 0) return url;
  parsed.username = '';
  parsed.password = '';
  for (const name of secrets) parsed.searchParams.delete(name);
  return parsed.toString();
}
