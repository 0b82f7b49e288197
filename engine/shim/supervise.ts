/**
 * What the agent host does for one attempt of a task (DESIGN §10): spawn the agent as the leader of its own
 * process group, feed it the prompt, log its output, enforce the output limit, and leave nothing of the group
 * running behind. Cancel and the run's timeout come from outside, as a kill of that group; the host sees the
 * agent's end like any other. No engine state: everything it needs is in the spec and the run's environment.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync, writeSync } from 'node:fs';
import { StringDecoder } from 'node:string_decoder';
import { agentByName, type Agent, type AgentOutputParser, type AgentResult } from '../agent.js';
import { killGroupById, processStartTime } from '../process-info.js';
import { taskLogPaths, type RunEnd, type RunOutcome } from '../pool/protocol.js';
import type { ShimProgress, ShimSpec, ShimStarted } from '../pool/run-files.js';

/** How many readable lines an outcome keeps. */
const LAST_LINES = 50;
/** Least time between two progress messages of one run. */
const PROGRESS_INTERVAL_MS = 250;
/** How long to wait for stdout/stderr to close once the group is dead (a process that left the group may hold them). */
const PIPE_CLOSE_WAIT_MS = 1000;

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

/**
 * An append-only log file of a run, written synchronously and created on its first write; write errors (disk
 * full, …) never fail the run. Synchronous, because the end of a run waited on three streams' closes through
 * libuv's thread pool before its outcome could be reported (~0.5 ms, 5 ms at p90 under load); each write is
 * one small system call on the host's loop. Created on first write, so that creating files is not on the way
 * to the agent's start, and a log the agent never writes to (stderr, mostly) is never created: each file
 * created costs, as ext4 scans past the inodes of the run files removed just before.
 */
class LogFile {
  #fd: number | null = null;
  #failed = false;

  constructor(private readonly path: string) {}

  write(chunk: string | Buffer): void {
    if (this.#failed) return;
    try {
      this.#fd ??= openSync(this.path, 'a');
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      for (let done = 0; done < bytes.length; ) done += writeSync(this.#fd, bytes, done);
    } catch {
      this.#failed = true;
    }
  }

  close(): void {
    if (this.#fd === null) return;
    try {
      closeSync(this.#fd);
    } catch {
      // Nothing more will be written to it.
    }
    this.#fd = null;
  }
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
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
  const limit = result.usageLimit;
  if (limit) {
    const kind = limit.limitType ? `${limit.limitType} ` : '';
    const reset = limit.resetAt !== undefined ? `; resets at ${new Date(limit.resetAt).toISOString()}` : limit.resetWallClock ? '; resets at a stated local time' : '; reset time unknown';
    return `${kind}usage limit reached${reset}`;
  }
  if (result.budgetExceeded) return 'stopped at its maxBudgetUsd';
  if (signal !== null) return `killed by ${signal}${detail}`;
  if (code !== 0) return `exited with code ${code}${detail}`;
  if (!result.sawResult) return `exited without a final result${detail}`;
  if (result.isError) return `agent reported an error${result.resultText ? `: ${oneLine(result.resultText)}` : ''}`;
  return undefined;
}

/** How the host hears of the run's progress. */
export interface SuperviseReport {
  started(agent: ShimStarted): void;
  progress(progress: ShimProgress): void;
  /** The run's keepalive file, watched when the spec asks for it (`keepaliveMs`). */
  keepaliveFile?: string;
}

/**
 * Run one attempt of a task in a process group of its own and report its start and progress. Never throws for
 * anything the agent or the system does: every failure becomes a RunOutcome. On return no process of the group
 * is left (SIGKILL sent at worst).
 */
export async function superviseAgent(spec: ShimSpec, env: NodeJS.ProcessEnv, report: SuperviseReport): Promise<RunOutcome> {
  const blank: AgentResult = { sawResult: false, isError: false };
  const early = (end: RunEnd, error: string): RunOutcome => ({ end, exitCode: null, signal: null, error, result: blank, outputBytes: 0, lastLines: [] });

  let agent: Agent;
  let parser: AgentOutputParser;
  try {
    agent = agentByName(spec.agent);
    parser = agent.createParser();
  } catch (err) {
    return early('spawn_error', (err as Error).message);
  }
  // Synchronous: each is one short system call, and on a busy machine a round trip through libuv's thread pool
  // can wait several milliseconds for a turn, all of it between a slot's claim and its agent's start.
  try {
    mkdirSync(spec.logDir, { recursive: true });
  } catch (err) {
    return early('spawn_error', `cannot create log directory ${spec.logDir}: ${oneLine((err as Error).message)}`);
  }
  // spawn reports a missing cwd as ENOENT of the binary, which would send the user looking in the wrong place.
  if (!isDirectory(spec.cwd)) return early('spawn_error', `working directory ${spec.cwd} does not exist or is not a directory`);

  const paths = taskLogPaths(spec.logDir, spec.taskId);
  const rawLog = new LogFile(paths.raw);
  const stderrLog = new LogFile(paths.stderr);
  const textLog = new LogFile(paths.text);
  const closeLogs = (): void => {
    rawLog.close();
    stderrLog.close();
    textLog.close();
  };

  let child: ChildProcess;
  try {
    // Detached: the agent leads a process group (and session) of its own, so one kill of the group ends the run,
    // tools and all, and nothing of the host's other runs.
    child = spawn(spec.command.file, spec.command.args, { cwd: spec.cwd, env, stdio: ['pipe', 'pipe', 'pipe'], detached: true });
  } catch (err) {
    return early('spawn_error', describeSpawnError(err as NodeJS.ErrnoException, spec.command.file, agent));
  }
  const exitP = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  const closeP = new Promise<void>((resolve) => child.once('close', () => resolve()));
  const spawnError = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
    child.once('spawn', () => resolve(null));
    child.once('error', (err) => resolve(err));
  });
  // Later errors (a kill racing the exit, EPIPE) must not become uncaught exceptions in the shim.
  child.on('error', () => {});
  child.stdin?.on('error', () => {});
  if (spawnError || child.pid === undefined) {
    child.stdout?.destroy();
    child.stderr?.destroy();
    child.stdin?.destroy();
    return early('spawn_error', describeSpawnError(spawnError ?? new Error('no pid'), spec.command.file, agent));
  }
  const pid = child.pid;
  report.started({ pid, pidStartTime: processStartTime(pid) });
  if (spec.attempt > 1) textLog.write(`── attempt ${spec.attempt} ──\n`);

  const lastLines: string[] = [];
  let readableLines = 0;
  let outputBytes = 0;
  let lastStderr: string | undefined;
  let end: RunEnd = 'exited';
  let error: string | undefined;
  let terminating = false;
  let exited = false;
  let outputStopped = false;
  let progressTimer: NodeJS.Timeout | undefined;
  let lastProgressAt = 0;

  const terminate = (why: RunEnd, message: string): void => {
    if (terminating || exited) return;
    terminating = true;
    end = why;
    error = message;
    child.stdin?.destroy();
    void killGroupById(pid, spec.killGraceMs);
  };

  const sendProgress = (): void => {
    progressTimer = undefined;
    lastProgressAt = Date.now();
    const sessionId = parser.result().sessionId;
    report.progress({ outputBytes, lines: readableLines, ...(sessionId !== undefined ? { sessionId } : {}) });
  };
  const record = (lines: string[]): void => {
    if (lines.length === 0) return;
    textLog.write(`${lines.join('\n')}\n`);
    for (const line of lines) {
      lastLines.push(line);
      if (lastLines.length > LAST_LINES) lastLines.shift();
      readableLines++;
    }
  };
  const countOutput = (bytes: number): void => {
    outputBytes += bytes;
    if (outputBytes > spec.maxOutputBuffer && !exited) {
      // Stop logging too: a runaway agent keeps writing during the kill grace period.
      outputStopped = true;
      terminate('output_limit', `output exceeded ${spec.maxOutputBuffer} bytes`);
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
  child.stdin?.end(spec.command.stdin);


  // Fenced by silence: no runner followed this run for keepaliveMs (see ShimSpec.keepaliveMs).
  const keepaliveWatch = spec.keepaliveMs && report.keepaliveFile ? watchKeepalive(report.keepaliveFile, spec.keepaliveMs, (silentMs) => terminate('lost', `no runner followed this run for ${silentMs} ms; its agent was stopped so the run can be taken over`)) : undefined;
  const { code, signal } = await exitP;
  clearInterval(keepaliveWatch);
  exited = true;
  clearTimeout(progressTimer);
  // The agent is gone, but tools it started (shells, dev servers) may live on in its group.
  await killGroupById(pid, spec.killGraceMs);
  const closedInTime = await Promise.race([closeP.then(() => true), sleep(PIPE_CLOSE_WAIT_MS).then(() => false)]);
  if (!closedInTime) {
    child.stdout?.destroy();
    child.stderr?.destroy();
  }
  if (!outputStopped) {
    for (const line of stdoutLines.flush()) record(parser.pushLine(line));
    onStderrLines(stderrLines.flush());
  }
  closeLogs();

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
  return outcome;
}

/** Call `onSilent` once `file` has not been touched for `limitMs` (checked a few times a second). */
function watchKeepalive(file: string, limitMs: number, onSilent: (silentMs: number) => void): NodeJS.Timeout {
  const started = Date.now();
  const timer = setInterval(() => {
    let touchedAt: number;
    try {
      touchedAt = statSync(file).mtimeMs;
    } catch {
      // Not written yet, or its directory went away: count from the shim's own start.
      touchedAt = started;
    }
    const silentMs = Math.round(Date.now() - Math.max(touchedAt, started));
    if (silentMs > limitMs) {
      clearInterval(timer);
      onSilent(silentMs);
    }
  }, Math.max(50, Math.min(500, limitMs / 6)));
  timer.unref();
  return timer;
}
