/**
 * The launcher a pool worker runs for one attempt of a task (DESIGN §8, §10). It does not run the agent itself:
 * it asks the agent host of its data dir (engine/shim/host.ts, a process of ours in its own session) to start it
 * with the agent's environment, and follows the run's files — progress as it comes, the outcome at the end —
 * relaying them to the main thread. A cancel kills the agent's whole process group. Because nothing of the run
 * hangs on this thread's pipes, a runner that dies leaves its agents running and their output complete; the next
 * runner adopts a live run with the same loop.
 */
import { closeSync, mkdirSync, openSync, utimesSync } from 'node:fs';
import type { MessagePort } from 'node:worker_threads';
import { killGroupById } from '../process-info.js';
import { agentHostClient } from './agent-host-client.js';
import { ChildCommand, ParentCommand, type LauncherJob, type LauncherMessage, type LaunchRequest, type RunEnd, type RunOutcome } from './protocol.js';
import {
  readJsonIfExists,
  readOutcome,
  runDirOf,
  runFiles,
  runLiveness,
  runsDirOf,
  writeJsonAtomic,
  type ProcessRef,
  type ShimProgress,
  type ShimSpec,
  type ShimStarted,
} from './run-files.js';

/** How often a run's files are looked at. */
const FOLLOW_MS = 100;
/** How often a following runner touches a run's keepalive file; well under any lease. */
const KEEPALIVE_TOUCH_MS = 250;
/** How long a launcher whose host tells it of the run, and which keeps nothing alive, waits between looks. */
const QUIET_MS = 5000;

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

function failed(end: RunEnd, error: string): RunOutcome {
  return { end, exitCode: null, signal: null, error, result: { sawResult: false, isError: false }, outputBytes: 0, lastLines: [] };
}

function isCancel(message: unknown): message is Extract<LauncherMessage, { cmd: 'cancel' }> {
  return typeof message === 'object' && message !== null && (message as { cmd?: unknown }).cmd === ParentCommand.Cancel;
}

/** How the launcher hears of a run's end: `ended` resolves when its host says so or goes away. */
interface HostLine {
  /** Null for an adopted run, whose host does not know this runner. */
  ended: Promise<void> | null;
  /** The host sends the run's progress and tells of its end: no file needs reading until `ended`. */
  tells: boolean;
}

/** An adopted run's host does not know this runner: only the run's files and /proc tell of its end. */
const noHostLine: HostLine = { ended: null, tells: false };

/**
 * Start a run on the agent host of its data dir: its spec file, then the request. Resolves with the agent's pid
 * once it runs (null when the run ended before that: its outcome is in its files), and the line to its host.
 */
async function startOnHost(
  req: LaunchRequest,
  runDir: string,
  onProgress: (progress: ShimProgress) => void,
): Promise<{ agent: ProcessRef | null; host: HostLine } | { error: string } | { lost: string }> {
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
  const baseEnv = req.baseEnv ?? process.env;
  const client = agentHostClient(runsDirOf(req.logDir), launcherEnv(baseEnv, {}));
  const writeSpec = (): string | null => {
    try {
      mkdirSync(runDir, { recursive: true });
      writeJsonAtomic(files.spec, spec, 0o600, false);
      // Only a host that watches it needs the file: one file fewer to create and remove per run otherwise.
      if (spec.keepaliveMs) touchKeepalive(files.keepalive);
      return null;
    } catch (error) {
      return `cannot write the run's files in ${runDir}: ${(error as Error).message}`;
    }
  };
  const { start, ended } = await client.start(runDir, launcherEnv(baseEnv, extraEnv), writeSpec, onProgress);
  if ('error' in start) return { error: start.error };
  if ('started' in start) return { agent: { pid: start.started.pid, pidStart: start.started.pidStartTime }, host: { ended, tells: start.pushesProgress } };
  if ('ended' in start) return { agent: null, host: { ended, tells: false } };
  // The host went away before it said the agent started: its files say whether it did.
  const started = readJsonIfExists<ShimStarted>(files.started);
  if (started) return { agent: { pid: started.pid, pidStart: started.pidStartTime }, host: { ended, tells: false } };
  if (readOutcome(runDir)) return { agent: null, host: { ended, tells: false } };
  return { lost: 'the agent host went away before it started the agent' };
}

/** A wait that a cancel (or the host's word) cuts short. */
class Wakeup {
  #wake: (() => void) | null = null;

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#wake = done;
    });
  }

  wake(): void {
    this.#wake?.();
  }
}

/**
 * Run or adopt one attempt and report on `port` (`started` with the agent's pid, throttled `progress`,
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
  const wakeup = new Wakeup();
  const onMessage = (message: unknown): void => {
    if (!isCancel(message)) return;
    const reason = message.value?.reason;
    cancelReason = reason ? `cancelled: ${reason}` : 'cancelled';
    wakeup.wake();
  };
  // Listen before anything else: a cancel may arrive while the task is still queued or setting up.
  port.on('message', onMessage);
  const finish = (outcome: RunOutcome): RunOutcome => {
    port.off('message', onMessage);
    post({ cmd: ChildCommand.Exited, taskId, value: outcome });
    return outcome;
  };
  const onProgress = (progress: ShimProgress): void => post({ cmd: ChildCommand.Progress, taskId, value: progress });

  const runDir = runDirOf(job.logDir, taskId, job.attempt);
  let agent: ProcessRef | null;
  let host = noHostLine;
  if (job.kind === 'adopt') {
    agent = { pid: job.pid, pidStart: job.pidStart };
  } else {
    if (cancelReason !== undefined) return finish(failed('cancelled', cancelReason));
    const start = await startOnHost(job, runDir, onProgress);
    if ('error' in start) return finish(failed('spawn_error', start.error));
    if ('lost' in start) return finish(failed('lost', start.lost));
    ({ agent, host } = start);
  }
  if (agent) post({ cmd: ChildCommand.Started, taskId, value: { pid: agent.pid, pidStartTime: agent.pidStart } });
  // An adopted run's spec is not read here: keep it alive in case its host watches.
  const keepalive = job.kind === 'adopt' || Boolean(job.keepaliveMs);
  return finish(await follow(runDir, agent, job.killGraceMs, host, keepalive, wakeup, onProgress, () => cancelReason));
}

/**
 * Follow a run until its host reports the end, goes away without one, or the run is cancelled. While a host that
 * tells (progress and end over its socket) is connected, nothing is read: the files are read once it said the
 * run ended or went away, and throughout for a host of an earlier version or an adopted run.
 */
async function follow(
  runDir: string,
  agent: ProcessRef | null,
  killGraceMs: number,
  host: HostLine,
  keepalive: boolean,
  wakeup: Wakeup,
  onProgress: (progress: ShimProgress) => void,
  cancelled: () => string | undefined,
): Promise<RunOutcome> {
  const files = runFiles(runDir);
  let hostTells = host.tells;
  void host.ended?.then(() => {
    hostTells = false;
    wakeup.wake();
  });
  let last = '';
  let touchedAt = 0;
  for (;;) {
    // This runner follows the run: a host that watches its keepalive (a run other hosts could take over) goes on.
    if (keepalive && Date.now() - touchedAt >= KEEPALIVE_TOUCH_MS) {
      touchKeepalive(files.keepalive);
      touchedAt = Date.now();
    }
    const reason = cancelled();
    if (reason !== undefined) {
      // The whole group: the agent and whatever it started.
      if (agent) await killGroupById(agent.pid, killGraceMs);
      return failed('cancelled', reason);
    }
    if (!hostTells) {
      const outcome = readOutcome(runDir);
      if (outcome) return outcome;
      const progress = readJsonIfExists<ShimProgress>(files.progress);
      const seen = JSON.stringify(progress);
      if (progress && seen !== last) {
        last = seen;
        onProgress(progress);
      }
      const liveness = runLiveness(runDir, agent);
      if (liveness === 'ended') continue;
      if (liveness === 'gone') {
        // Its host was killed without a word: what it left of the agent goes too, and the run is resumed.
        if (agent) await killGroupById(agent.pid, killGraceMs);
        return failed('lost', `the run's agent host ended without reporting how the agent${agent ? ` (pid ${agent.pid})` : ''} ended`);
      }
    }
    await wakeup.wait(!hostTells ? FOLLOW_MS : keepalive ? KEEPALIVE_TOUCH_MS : QUIET_MS);
  }
}
