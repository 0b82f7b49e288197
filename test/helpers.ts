/** Shared test fixtures: temp data dirs, the fake claude, and running the real CLI as a child process. */
import { execFile, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, existsSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const fakeClaudeDir = path.join(repoRoot, 'test', 'fixtures', 'bin');
export const cliBin = path.join(repoRoot, 'bin', 'delegate.js');

/** A fresh temp directory, removed by the returned cleanup. */
export function tempDir(prefix = 'delegate-test-'): string {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** An environment for a CLI or runner under test: its own data dir, the fake claude first on PATH, a fake-claude log. */
export function testEnv(dataDir: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    PATH: `${fakeClaudeDir}${path.delimiter}${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? os.tmpdir(),
    DELEGATE_DATA_DIR: dataDir,
    FAKE_CLAUDE_LOG: path.join(dataDir, 'fake-claude.jsonl'),
    FAKE_CLAUDE_SESSIONS: path.join(dataDir, 'fake-claude-sessions'),
    FAKE_CODEX_LOG: path.join(dataDir, 'fake-codex.jsonl'),
    FAKE_CODEX_SESSIONS: path.join(dataDir, 'fake-codex-sessions'),
    DELEGATE_IDLE_EXIT: '3000',
    CPU_THRESHOLD: '100',
    MEMORY_RESERVE: '0',
    LOG_LEVEL: 'debug',
    ...extra,
  };
}

/** Result of one CLI run. */
export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `delegate …` as a real child process; `input`, when given, is written to its stdin, which is then closed. */
export function cli(args: string[], env: NodeJS.ProcessEnv, cwd: string = repoRoot, input?: string, onStderr?: (chunk: string) => void): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [cliBin, ...args], { env, cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
    if (input !== undefined) child.stdin?.end(input);
    if (onStderr) child.stderr?.on('data', (chunk: Buffer | string) => onStderr(String(chunk)));
  });
}

/** Start `delegate serve` in the foreground as a child; returns the child. */
export function serve(env: NodeJS.ProcessEnv, args: string[] = []) {
  return spawn(process.execPath, [cliBin, 'serve', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
}

/** One event the fake claude logged. */
export interface FakeClaudeEvent {
  event: 'start' | 'end';
  pid: number;
  argv: string[];
  prompt: string;
  cwd: string;
  at: number;
  sessionId?: string;
  exitCode?: number;
  resumedFrom?: string | null;
  forked?: boolean;
  history?: string[];
}

/** Everything the fake claude logged for this data dir. */
export function fakeClaudeEvents(dataDir: string): FakeClaudeEvent[] {
  const file = path.join(dataDir, 'fake-claude.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => JSON.parse(line) as FakeClaudeEvent);
}

/** Poll `check` until it returns a truthy value or the deadline passes (no fixed sleeps in tests). */
export async function eventually<T>(check: () => T | Promise<T>, timeoutMs = 20_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value) return value as NonNullable<T>;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}

/** True while a process with this pid exists (and is not a zombie). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return !stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/** Remove a temp dir, ignoring errors. */
export function removeDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
}

/** Stop every runner of a test data dir (in-process: spawning `delegate stop` per test costs half a second). */
export async function stopRunners(env: NodeJS.ProcessEnv): Promise<void> {
  const { loadConfig } = await import('../engine/config.js');
  const { openStore } = await import('../engine/store/store.js');
  const { stopLocalRunners } = await import('../engine/runner-control.js');
  const config = loadConfig(env);
  // No database file: no runner ever started here (a server URL has no file to look for).
  if (config.databaseUrl.startsWith('file:') && !existsSync(path.join(config.dataDir, 'delegate.db'))) return;
  const store = await openStore(config.databaseUrl);
  try {
    await stopLocalRunners(store, config);
  } finally {
    await store.close();
  }
}

/** A promise with its resolve and reject, for tests that settle work by hand. */
export function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/**
 * Run one statement on a test's database file, e.g. to age a heartbeat or a lease as if time had passed on the
 * database's clock (which leases and heartbeats follow, so a test cannot fake them with its own clock).
 */
export async function sqlOn(dataDir: string, sql: string, ...args: Array<string | number>): Promise<void> {
  const { default: Database } = await import('libsql');
  const db = new Database(path.join(dataDir, 'delegate.db'));
  try {
    db.exec('PRAGMA busy_timeout = 5000');
    db.prepare(sql).run(...args);
  } finally {
    db.close();
  }
}
