/**
 * Configuration from the environment (SPEC §6), validated once at start. Out-of-range values fail with a
 * message naming the variable, the value and the allowed range, so nothing starts half-configured.
 */
import { createHash } from 'node:crypto';
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
  /** Where task ends and usage-limit pauses are announced; nothing by default. */
  notify: NotifyConfig;
  /** Whose usage limits this process's agents count against: DELEGATE_ACCOUNT, else derived (see accountIdentity). */
  account: string;
  /** US dollars all tasks of this data dir (database) may spend per local day; undefined: no daily budget. */
  dailyBudgetUsd: number | undefined;
  /**
   * Whether MCP clients may queue `shell` tasks (the prompt run as a command). Off by default: an MCP client is a
   * model, and letting it run arbitrary commands through delegate must be the user's explicit choice.
   */
  allowShellAgent: boolean;
  /**
   * DELEGATE_HOST_ID: this host's name among runners that cannot see each other's processes; unset, it is
   * derived from the machine (hostname, boot, pid namespace). Runs of other hosts are taken over by lease only.
   */
  hostId: string | undefined;
}

/** Notification channels (SPEC §12): each is off when unset. */
export interface NotifyConfig {
  /** DELEGATE_NOTIFY_WEBHOOK: an http(s) URL that receives a POST of each notice as JSON. */
  webhookUrl: string | undefined;
  /** DELEGATE_NOTIFY_COMMAND: a program and its arguments, run with each notice as JSON on stdin. */
  command: string[] | undefined;
  /** DELEGATE_NOTIFY_DESKTOP=1: a desktop notification (notify-send on Linux, osascript on macOS). */
  desktop: boolean;
}

/** The largest DELEGATE_DAILY_BUDGET_USD, in US dollars (a typo guard, not a policy). */
export const maxDailyBudgetUsd = 1_000_000;

/**
 * Whose usage limits the agents of this process count against, so a limit hit by one task holds back the other
 * tasks of the same account and no others. `DELEGATE_ACCOUNT` names it; otherwise it is derived from the
 * credentials the agent would use — a hash of ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (never the secret
 * itself), else the local user and Claude config dir (the login `claude` keeps there).
 */
export function accountIdentity(env: NodeJS.ProcessEnv): string {
  const named = env.DELEGATE_ACCOUNT?.trim();
  if (named) return named;
  const digest = (secret: string) => createHash('sha256').update(secret).digest('hex').slice(0, 12);
  const apiKey = env.ANTHROPIC_API_KEY?.trim();
  if (apiKey) return `api-key:${digest(apiKey)}`;
  const oauth = env.CLAUDE_CODE_OAUTH_TOKEN?.trim();
  if (oauth) return `oauth:${digest(oauth)}`;
  let user = env.USER?.trim() || env.USERNAME?.trim() || '';
  if (!user) {
    try {
      user = os.userInfo().username;
    } catch {
      user = 'unknown';
    }
  }
  const configDir = env.CLAUDE_CONFIG_DIR?.trim();
  return configDir ? `login:${user}:${configDir}` : `login:${user}`;
}

function readUsd(env: NodeJS.ProcessEnv, name: string, max: number): number | undefined {
  const raw = env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = Number(raw.trim());
  if (!Number.isFinite(value) || value <= 0 || value > max) {
    throw new UsageError('invalid_config', `${name}=${JSON.stringify(raw)}: expected a positive number of US dollars, up to ${max}`);
  }
  return value;
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

function readHostId(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.DELEGATE_HOST_ID;
  if (raw === undefined || raw.trim() === '') return undefined;
  const value = raw.trim();
  if (value.length > 200 || !/^[\x21-\x7e]+$/.test(value)) {
    throw new UsageError('invalid_config', `DELEGATE_HOST_ID=${JSON.stringify(raw)}: expected a name of 1 to 200 printable characters without spaces`);
  }
  return value;
}

/** True when `file` exists and is not a directory. Other stat failures (a parent that is a file, no access) are left to the first use. */
function existsAsNonDirectory(file: string): boolean {
  try {
    return statSync(file, { throwIfNoEntry: false })?.isDirectory() === false;
  } catch {
    return false;
  }
}

/** DELEGATE_NOTIFY_WEBHOOK: an http(s) URL. The message never quotes it: its path or query may be the secret. */
function readWebhookUrl(env: NodeJS.ProcessEnv): string | undefined {
  const raw = env.DELEGATE_NOTIFY_WEBHOOK?.trim();
  if (!raw) return undefined;
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw new UsageError('invalid_config', 'DELEGATE_NOTIFY_WEBHOOK: expected an http:// or https:// URL (the value is not shown: it may hold a secret)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError('invalid_config', `DELEGATE_NOTIFY_WEBHOOK: expected an http:// or https:// URL, not ${url.protocol}`);
  }
  return raw;
}

/** DELEGATE_NOTIFY_COMMAND: a JSON array of strings, program first. Never a shell string: nothing is interpreted. */
function readCommand(env: NodeJS.ProcessEnv): string[] | undefined {
  const raw = env.DELEGATE_NOTIFY_COMMAND;
  if (raw === undefined || raw.trim() === '') return undefined;
  const expected = `DELEGATE_NOTIFY_COMMAND=${JSON.stringify(raw)}: expected a JSON array of strings, the program first, e.g. ["/usr/local/bin/on-task-end", "--quiet"]`;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new UsageError('invalid_config', expected);
  }
  if (!Array.isArray(value) || value.length === 0 || !value.every((part) => typeof part === 'string') || (value[0] as string).trim() === '') {
    throw new UsageError('invalid_config', expected);
  }
  return value as string[];
}

function hasExplicitPort(url: string): boolean {
  try {
    return new URL(url).port !== '';
  } catch {
    // Not parsed here: the client says what is wrong with it.
    return true;
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
  // Without TLS there is no default port to assume (engine/store/sql-driver.ts makes this ws://, which means 80).
  if (databaseUrl.startsWith('libsql://') && /[?&]tls=0(&|$)/.test(databaseUrl) && !hasExplicitPort(databaseUrl)) {
    throw new UsageError('invalid_config', `DELEGATE_DATABASE_URL=${JSON.stringify(redactDatabaseUrl(databaseUrl))}: a libsql:// URL with tls=0 needs its port, e.g. libsql://server:8080?tls=0`);
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
    notify: {
      webhookUrl: readWebhookUrl(env),
      command: readCommand(env),
      desktop: readChoice(env, 'DELEGATE_NOTIFY_DESKTOP', '0', ['0', '1']) === '1',
    },
    account: accountIdentity(env),
    dailyBudgetUsd: readUsd(env, 'DELEGATE_DAILY_BUDGET_USD', maxDailyBudgetUsd),
    allowShellAgent: readChoice(env, 'DELEGATE_ALLOW_SHELL_AGENT', '0', ['0', '1']) === '1',
    hostId: readHostId(env),
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

/**
 * A webhook URL safe to write to a log: scheme, host and port only. Webhook services put the secret in the path
 * (Slack's /services/T…/B…/<token>, Discord's /api/webhooks/<id>/<token>) as often as in the userinfo or query.
 */
export function redactWebhookUrl(url: string): string {
  try {
    const parsed = new URL(url);
    const hidden = parsed.pathname !== '/' || parsed.search !== '' || parsed.hash !== '';
    return `${parsed.protocol}//${parsed.host}${hidden ? '/…' : '/'}`;
  } catch {
    return '<webhook URL>';
  }
}
