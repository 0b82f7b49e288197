/**
 * The launcher a pool worker runs for one attempt of a task (DESIGN §8, §10). It does not run the agent itself:
 * it starts a shim (engine/shim) detached in its own session, with the agent's environment, and follows the
 * run's files — progress as it comes, the outcome at the end — relaying them to the main thread. A cancel kills
 * the shim's whole process group. Because nothing of the run hangs on this thread's pipes, a runner that dies
 * leaves its agents running and their output complete; the next runner adopts a live shim with the same loop.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, utimesSync } from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import { isProcessAlive, killGroupById, processStartTime } from '../process-info.js';
import { ChildCommand, ParentCommand, type LauncherJob, type LauncherMessage, type LaunchRequest, type RunEnd, type RunOutcome } from './protocol.js';
import { readJsonIfExists, readOutcome, runDirOf, runFiles, writeJsonAtomic, type ShimProgress, type ShimSpec } from './run-files.js';

/** How often a run's files are looked at. */
const FOLLOW_MS = 100;
/** How often a following runner touches a run's keepalive file; well under any lease. */
const KEEPALIVE_TOUCH_MS = 250;

/** Mark a run as followed now (create the file, or move its mtime). */
function touchKeepalive(file: string): void {
  try {
    const now = new Date();
    utimesSync(file, now, now);
  } catch {
    try {
      closeSync(openSync(file, 'a'));
    } catch {
      // The run's directory is gone: the run is over.
    }
  }
}

const SAFE_ENV_NAMES = new Set([
  'PATH', 'HOME', 'USER', 'LOGNAME', 'LANG', 'TERM', 'TMPDIR', 'SHELL', 'TZ',
  // claude must reach its API from behind corporate proxies and TLS interception too.
  'HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY', 'http_proxy', 'https_proxy', 'no_proxy', 'NODE_EXTRA_CA_CERTS',
]);
// DELEGATE_ lets an agent delegate further into the same data dir; FAKE_CLAUDE_ and FAKE_CODEX_ configure the
// test fixtures. An agent's own credentials (codex's OPENAI_/CODEX_) come from the agent's command, not from here.
const SAFE_ENV_PREFIXES = ['LC_', 'ANTHROPIC_', 'CLAUDE_', 'XDG_', 'DELEGATE_', 'FAKE_CLAUDE_', 'FAKE_CODEX_'];
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

/** The shim's entry script, next to this module's directory in the build output. */
export function shimEntry(): string {
  return new URL('../shim/main.js', import.meta.url).pathname;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function failed(end: RunEnd, error: string): RunOutcome {
  return { end, exitCode: null, signal: null, error, result: { sawResult: false, isError: false }, outputBytes: 0, lastLines: [] };
}

function isCancel(message: unknown): message is Extract<LauncherMessage, { cmd: 'cancel' }> {
  return typeof message === 'object' && message !== null && (message as { cmd?: unknown }).cmd === ParentCommand.Cancel;
}

/** Start the shim of a run: its spec file, then the detached process. Returns its pid, or why it could not start. */
async function startShim(req: LaunchRequest, runDir: string): Promise<{ pid: number; exited: Promise<void> } | { error: string }> {
  const files = runFiles(runDir);
  const { env: extraEnv, ...command } = req.command;
  const spec: ShimSpec = {
    taskId: req.taskId,
    attempt: req.attempt,
    agent: req.agent,
    command,
    cwd: req.cwd,
    logDir: req.logDir,
    maxOutputBuffer: req.maxOutputBuffer,
    killGraceMs: req.killGraceMs,
    agentModules: req.agentModules,
    keepaliveMs: req.keepaliveMs ?? null,
  };
  try {
    mkdirSync(runDir, { recursive: true });
    writeJsonAtomic(files.spec, spec);
    touchKeepalive(files.keepalive);
  } catch (error) {
    return { error: `cannot write the run's files in ${runDir}: ${(error as Error).message}` };
  }
  const shimLog = openSync(files.shimLog, 'a');
  try {
    const child = spawn(process.execPath, [shimEntry(), runDir], {
      detached: true,
      stdio: ['ignore', 'ignore', shimLog],
      env: launcherEnv(req.baseEnv ?? process.env, extraEnv),
      cwd: runDir,
    });
    const started = await new Promise<NodeJS.ErrnoException | null>((resolve) => {
      child.once('spawn', () => resolve(null));
      child.once('error', (error) => resolve(error));
    });
    child.on('error', () => {});
    if (started || child.pid === undefined) return { error: `cannot start the run's shim (${process.execPath}): ${started?.message ?? 'no pid'}` };
    // The shim must not keep this thread's event loop, nor die with it.
    child.unref();
    // While this runner lives, the shim's exit wakes the follower at once instead of at its next look.
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    return { pid: child.pid, exited };
  } finally {
    closeSync(shimLog);
  }
}

/**
 * Run or adopt one attempt and report on `port` (`started` with the shim's pid, throttled `progress`,
 * `exited`). Never throws for anything the agent or the system does: every failure becomes a RunOutcome.
 */
export async function runLaunch(job: LauncherJob, port: MessagePort): Promise<RunOutcome> {
  const { taskId } = job;
  const post = (message: LauncherMessage): void => {
    try {
      port.postMessage(message);
    } catch {
      // the main thread closed its side; the returned outcome still carries everything
    }
  };
  let cancelReason: string | undefined;
  const onMessage = (message: unknown): void => {
    if (!isCancel(message)) return;
    const reason = message.value?.reason;
    cancelReason = reason ? `cancelled: ${reason}` : 'cancelled';
  };
  // Listen before anything else: a cancel may arrive while the task is still queued or setting up.
  port.on('message', onMessage);
  const finish = (outcome: RunOutcome): RunOutcome => {
    port.off('message', onMessage);
    post({ cmd: ChildCommand.Exited, taskId, value: outcome });
    return outcome;
  };

  const runDir = runDirOf(job.logDir, taskId, job.attempt);
  let pid: number;
  let pidStart: number | null;
  // An adopted shim is not our child: only its files and /proc tell of its end.
  let exited: Promise<void> = new Promise(() => undefined);
  if (job.kind === 'adopt') {
    ({ pid, pidStart } = job);
  } else {
    if (cancelReason !== undefined) return finish(failed('cancelled', cancelReason));
    const shim = await startShim(job, runDir);
    if ('error' in shim) return finish(failed('spawn_error', shim.error));
    pid = shim.pid;
    exited = shim.exited;
    pidStart = processStartTime(pid);
  }
  post({ cmd: ChildCommand.Started, taskId, value: { pid, pidStartTime: pidStart } });
  return finish(await follow(runDir, pid, pidStart, job.killGraceMs, exited, (progress) => post({ cmd: ChildCommand.Progress, taskId, value: progress }), () => cancelReason));
}

/** Follow a run's files until its shim reports the end, dies without one, or the run is cancelled. */
async function follow(
  runDir: string,
  pid: number,
  pidStart: number | null,
  killGraceMs: number,
  exited: Promise<void>,
  onProgress: (progress: ShimProgress) => void,
  cancelled: () => string | undefined,
): Promise<RunOutcome> {
  const files = runFiles(runDir);
  let last = '';
  let touchedAt = 0;
  for (;;) {
    // This runner follows the run: a shim that watches its keepalive (a run other hosts could take over) lives on.
    if (Date.now() - touchedAt >= KEEPALIVE_TOUCH_MS) {
      touchKeepalive(files.keepalive);
      touchedAt = Date.now();
    }
    const reason = cancelled();
    if (reason !== undefined) {
      // The whole group: the shim, the agent and whatever the agent started.
      await killGroupById(pid, killGraceMs);
      return failed('cancelled', reason);
    }
    const outcome = readOutcome(runDir);
    if (outcome) return outcome;
    const progress = readJsonIfExists<ShimProgress>(files.progress);
    const seen = JSON.stringify(progress);
    if (progress && seen !== last) {
      last = seen;
      onProgress(progress);
    }
    if (!isProcessAlive(pid, pidStart)) {
      // Its outcome may have landed between the two looks.
      const late = readOutcome(runDir);
      if (late) return late;
      // Killed from outside without a word: what it left of the agent goes too, and the run is resumed.
      await killGroupById(pid, killGraceMs);
      return failed('lost', `the run's shim (pid ${pid}) ended without reporting how the agent ended`);
    }
    await Promise.race([sleep(FOLLOW_MS), exited]);
  }
}
