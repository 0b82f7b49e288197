/**
 * The launcher a pool worker runs for one attempt of a task: spawn the agent in its own process group, feed it
 * the prompt, log its output, enforce the output limit, obey cancel, and always leave nothing
 * running behind. Plain Node, no engine state: everything it needs is in the LaunchRequest.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { MessagePort } from 'node:worker_threads';
import { agentByName, type Agent, type AgentOutputParser, type AgentResult } from '../agent.js';
import { killGroupById, processStartTime } from '../process-info.js';
import {
  ChildCommand,
  ParentCommand,
  taskLogPaths,
  type LaunchRequest,
  type LauncherMessage,
  type RunEnd,
  type RunOutcome,
} from './protocol.js';

/** How many readable lines an outcome keeps. */
const LAST_LINES = 50;
/** Least time between two progress messages of one run. */
const PROGRESS_INTERVAL_MS = 250;
/** How long to wait for stdout/stderr to close once the group is dead (a process that left the group may hold them). */
const PIPE_CLOSE_WAIT_MS = 1000;

const SAFE_ENV_NAMES = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'TERM', 'TMPDIR', 'SHELL', 'TZ',
  // claude must reach its API from behind corporate proxies and TLS interception too.
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'NODE_EXTRA_CA_CERTS',
]);
// DELEGATE_ lets an agent delegate further into the same data dir; FAKE_CLAUDE_ configures the test fixture.
const SAFE_ENV_PREFIXES = ['LC_', 'ANTHROPIC_', 'CLAUDE_', 'XDG_', 'DELEGATE_', 'FAKE_CLAUDE_'];
/** Never passed on, whatever the prefix: credentials of the engine's own database. */
const SECRET_ENV_NAMES = new Set(['DELEGATE_DATABASE_TOKEN', 'DELEGATE_DATABASE_URL']);

/**
 * The agent's environment: a safelist of `parent` plus `extra`. A safelist, not a blocklist, so secrets of the
 * engine's own environment (tokens, database credentials) never reach an agent unless named here.
 */
export function launcherEnv(parent: NodeJS.ProcessEnv, extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(parent)) {
    if (value === undefined || SECRET_ENV_NAMES.has(name)) continue;
    if (SAFE_ENV_NAMES.has(name) || SAFE_ENV_PREFIXES.some((prefix) => name.startsWith(prefix))) env[name] = value;
  }
  return { ...env, ...extra };
}

/** Splits a byte stream into text lines, holding back a partial last line and split UTF-8 sequences. */
class LineSplitter {
  readonly #decoder = new StringDecoder('utf8');
  #pending = '';

  push(chunk: Buffer): string[] {
    const lines = (this.#pending + this.#decoder.write(chunk)).split('\n');
    this.#pending = lines.pop() ?? '';
    return lines.map((line) => (line.endsWith('\r') ? line.slice(0, -1) : line));
  }

  flush(): string[] {
    const rest = this.#pending + this.#decoder.end();
    this.#pending = '';
    return rest === '' ? [] : [rest];
  }
}

/** An append-only log file whose write errors (disk full, …) never fail the run. */
class LogFile {
  readonly #stream: WriteStream;
  #failed = false;

  constructor(path: string) {
    this.#stream = createWriteStream(path, { flags: 'a' });
    this.#stream.on('error', () => {
      this.#failed = true;
    });
  }

  write(chunk: string | Buffer): void {
    if (!this.#failed) this.#stream.write(chunk);
  }

  close(): Promise<void> {
    if (this.#stream.closed) return Promise.resolve();
    return new Promise((resolve) => {
      this.#stream.once('close', () => resolve());
      this.#stream.end();
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // ESRCH: the group is already gone
  }
}

function oneLine(text: string, max = 200): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** A one-line spawn failure that says how to fix it: the agent's own explanation, else a generic one. */
function describeSpawnError(err: NodeJS.ErrnoException, file: string, agent: Agent): string {
  const own = agent.describeSpawnError?.(err, file);
  if (own !== undefined) return own;
  switch (err.code) {
    case 'ENOENT':
      return `${file} not found`;
    case 'EACCES':
      return `${file} is not executable (EACCES)`;
    default:
      return `cannot start ${file}: ${oneLine(err.message)}`;
  }
}

/** Why a run that ended on its own did not succeed, or undefined when it did. */
function describeExit(
  code: number | null,
  signal: string | null,
  result: AgentResult,
  lastStderr: string | undefined,
): string | undefined {
  const detail = lastStderr ? `: ${oneLine(lastStderr)}` : '';
  if (result.usageLimitResetAt !== undefined) {
    return `usage limit reached; resets at ${new Date(result.usageLimitResetAt).toISOString()}`;
  }
  if (signal !== null) return `killed by ${signal}${detail}`;
  if (code !== 0) return `exited with code ${code}${detail}`;
  if (!result.sawResult) return `exited without a final result${detail}`;
  if (result.isError) return `agent reported an error${result.resultText ? `: ${oneLine(result.resultText)}` : ''}`;
  return undefined;
}

function isCancel(message: unknown): message is Extract<LauncherMessage, { cmd: 'cancel' }> {
  return typeof message === 'object' && message !== null && (message as { cmd?: unknown }).cmd === ParentCommand.Cancel;
}

/**
 * Run one attempt of a task and report on `port` (`started`, throttled `progress`, `exited`). Never throws for
 * anything the agent or the system does: every failure becomes a RunOutcome. On return no process of the run's
 * group is left (SIGKILL sent at worst).
 */
export async function runLaunch(req: LaunchRequest, port: MessagePort): Promise<RunOutcome> {
  const { taskId } = req;
  const post = (message: LauncherMessage): void => {
    try {
      port.postMessage(message);
    } catch {
      // the main thread closed its side; the returned outcome still carries everything
    }
  };

  // Listen before anything else: a cancel may arrive while the task is still queued or setting up.
  let cancelReason: string | undefined;
  let onCancel: ((reason: string) => void) | undefined;
  const onMessage = (message: unknown): void => {
    if (!isCancel(message)) return;
    const reason = message.value?.reason;
    cancelReason = reason ? `cancelled: ${reason}` : 'cancelled';
    onCancel?.(cancelReason);
  };
  port.on('message', onMessage);

  const blank: AgentResult = { sawResult: false, isError: false };
  const early = (end: RunEnd, error: string): RunOutcome => {
    port.off('message', onMessage);
    const outcome: RunOutcome = { end, exitCode: null, signal: null, error, result: blank, outputBytes: 0, lastLines: [] };
    post({ cmd: ChildCommand.Exited, taskId, value: outcome });
    return outcome;
  };

  let agent: Agent;
  let parser: AgentOutputParser;
  try {
    agent = agentByName(req.agent);
    parser = agent.createParser();
  } catch (err) {
    return early('spawn_error', (err as Error).message);
  }
  try {
    await mkdir(req.logDir, { recursive: true });
  } catch (err) {
    return early('spawn_error', `cannot create log directory ${req.logDir}: ${oneLine((err as Error).message)}`);
  }
  // spawn reports a missing cwd as ENOENT of the binary, which would send the user looking in the wrong place.
  const cwdOk = await stat(req.cwd).then((s) => s.isDirectory(), () => false);
  if (!cwdOk) return early('spawn_error', `working directory ${req.cwd} does not exist or is not a directory`);
  if (cancelReason !== undefined) return early('cancelled', cancelReason);

  const paths = taskLogPaths(req.logDir, taskId);
  const rawLog = new LogFile(paths.raw);
  const stderrLog = new LogFile(paths.stderr);
  const textLog = new LogFile(paths.text);
  const closeLogs = (): Promise<unknown> => Promise.all([rawLog.close(), stderrLog.close(), textLog.close()]);
  if (req.attempt > 1) textLog.write(`── attempt ${req.attempt} ──\n`);

  let child: ChildProcess;
  try {
    child = spawn(req.command.file, req.command.args, {
      cwd: req.cwd,
      env: launcherEnv(req.baseEnv ?? process.env, req.command.env),
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
  } catch (err) {
    await closeLogs();
    return early('spawn_error', describeSpawnError(err as NodeJS.ErrnoException, req.command.file, agent));
  }
  const exitP = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const closeP = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const spawnError = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  // Later errors (a kill racing the exit, EPIPE) must not become uncaught exceptions in the worker.
  child.on('error', () => {});
  child.stdin?.on('error', () => {});
  if (spawnError || child.pid === undefined) {
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.stdin?.destroy();
    await closeLogs();
    return early('spawn_error', describeSpawnError(spawnError ?? new Error('no pid'), req.command.file, agent));
  }
  const pid = child.pid;
  post({ cmd: ChildCommand.Started, taskId, value: { pid, pidStartTime: processStartTime(pid) } });

  const lastLines: string[] = [];
  let readableLines = 0;
  let outputBytes = 0;
  let lastStderr: string | undefined;
  let end: RunEnd = 'exited';
  let error: string | undefined;
  let terminating = false;
  let exited = false;
  let outputStopped = false;
  let killTimer: NodeJS.Timeout | undefined;
  let progressTimer: NodeJS.Timeout | undefined;
  let lastProgressAt = 0;

  const terminate = (why: RunEnd, message: string): void => {
    if (terminating || exited) return;
    terminating = true;
    end = why;
    error = message;
    child.stdin?.destroy();
    killGroup(pid, 'SIGTERM');
    killTimer = setTimeout(() => killGroup(pid, 'SIGKILL'), req.killGraceMs);
    killTimer.unref();
  };
  onCancel = (reason) => terminate('cancelled', reason);
  if (cancelReason !== undefined) terminate('cancelled', cancelReason);

  const sendProgress = (): void => {
    progressTimer = undefined;
    lastProgressAt = Date.now();
    const sessionId = parser.result().sessionId;
    post({
      cmd: ChildCommand.Progress,
      taskId,
      value: { outputBytes, lines: readableLines, ...(sessionId !== undefined ? { sessionId } : {}) },
    });
  };
  const record = (lines: string[]): void => {
    for (const line of lines) {
      textLog.write(`${line}\n`);
      lastLines.push(line);
      if (lastLines.length > LAST_LINES) lastLines.shift();
      readableLines++;
    }
  };
  const countOutput = (bytes: number): void => {
    outputBytes += bytes;
    if (outputBytes > req.maxOutputBuffer && !exited) {
      // Stop logging too: a runaway agent keeps writing during the kill grace period.
      outputStopped = true;
      terminate('output_limit', `output exceeded ${req.maxOutputBuffer} bytes`);
    }
    // After the exit only stragglers arrive; the exited message carries the totals.
    if (!exited) {
      progressTimer ??= setTimeout(sendProgress, Math.max(0, lastProgressAt + PROGRESS_INTERVAL_MS - Date.now()));
    }
  };

  const stdoutLines = new LineSplitter();
  const stderrLines = new LineSplitter();
  const onStderrLines = (lines: string[]): void => {
    const nonEmpty = lines.filter((line) => line.trim() !== '');
    if (nonEmpty.length > 0) lastStderr = nonEmpty[nonEmpty.length - 1];
    record(nonEmpty.map((line) => `[stderr] ${line}`));
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    if (outputStopped) return;
    rawLog.write(chunk);
    for (const line of stdoutLines.push(chunk)) record(parser.pushLine(line));
    countOutput(chunk.length);
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    if (outputStopped) return;
    stderrLog.write(chunk);
    onStderrLines(stderrLines.push(chunk));
    countOutput(chunk.length);
  });
  child.stdin?.end(req.command.stdin);


  const { code, signal } = await exitP;
  exited = true;
  clearTimeout(killTimer);
  clearTimeout(progressTimer);
  // The agent is gone, but tools it started (shells, dev servers) may live on in its group.
  await killGroupById(pid, req.killGraceMs);
  const closedInTime = await Promise.race([closeP.then(() => true), sleep(PIPE_CLOSE_WAIT_MS).then(() => false)]);
  if (!closedInTime) {
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
  port.off('message', onMessage);

  if (!outputStopped) {
    for (const line of stdoutLines.flush()) record(parser.pushLine(line));
    onStderrLines(stderrLines.flush());
  }
  await closeLogs();

  const result = parser.result();
  if (end === 'exited') error = describeExit(code, signal, result, lastStderr);
  const outcome: RunOutcome = {
    end,
    exitCode: code,
    signal,
    ...(error !== undefined ? { error } : {}),
    result,
    outputBytes,
    lastLines,
  };
  post({ cmd: ChildCommand.Exited, taskId, value: outcome });
  return outcome;
}
