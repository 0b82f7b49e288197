/**
 * The files of one agent run (DESIGN §10). A runner does not hold an agent's pipes: the agent host of its data
 * dir (engine/shim/host.ts, a small long-lived process of ours in its own session) runs the agent, writes its
 * output to the task's log files and reports through files in the run's directory — so a runner that dies costs
 * the run nothing, and the next runner on the host adopts the live run or collects the outcome of one that ended.
 * - `spec.json`: what to run, written by the runner just before it asks the host (mode 0600);
 * - `started.json`: the agent's pid and the host's, written by the host once the agent exists;
 * - `progress.json`: output bytes, readable lines, agent session, for a runner that adopts the run: rewritten as
 *   the run goes, except while the runner that started it hears the progress over the host's socket (then written
 *   once that runner's connection closes);
 * - `exit.json`: the run's outcome, written once at the end;
 * - `keepalive`: touched by the runner that follows the run; where a runner on another host may take the run
 *   over, the host ends the agent when no runner has touched it for a while (see `ShimSpec.keepaliveMs`).
 * Every file is written to a temporary name and renamed, so a reader never sees half of one.
 * Runs started by an earlier version had a shim process per run, the leader of the run's group, with no `host`
 * in `started.json`: such a run is live while that process (the run row's pid) is.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rm, rmdir, statSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AgentCommand } from '../agent.js';
import { isProcessAlive } from '../process-info.js';
import type { RunOutcome } from './protocol.js';

/** What the host runs: everything but the environment, which comes with the request (it may carry API keys). */
export interface ShimSpec {
  taskId: string;
  attempt: number;
  agent: string;
  command: Omit<AgentCommand, 'env'>;
  cwd: string;
  logDir: string;
  maxOutputBuffer: number;
  killGraceMs: number;
  /** Modules that register agents, for the host's parser of the agent's output. */
  agentModules: readonly string[];
  /**
   * End the agent when no runner has touched `keepalive` for this long, so that a runner on another host, which
   * cannot see this process, may take the run over once its lease lapsed without two agents writing one task.
   * Null where only this host's runners can take it over (they see the shim and adopt it): it runs on.
   */
  keepaliveMs?: number | null;
}

/** A process as pid + start time (a pid alone may be reused). */
export interface ProcessRef {
  pid: number;
  pidStart: number | null;
}

/** The agent process as the host reports it: the leader of the run's process group. */
export interface ShimStarted {
  pid: number;
  pidStartTime: number | null;
  /** The agent host that runs it, and writes its outcome; absent in runs of the per-run shims of old. */
  host?: ProcessRef;
}

/** How far a run has got. */
export interface ShimProgress {
  outputBytes: number;
  lines: number;
  sessionId?: string;
}

/** The directory of the runs of one data dir, which one agent host serves. */
export function runsDirOf(logDir: string): string {
  return path.join(logDir, 'runs');
}

/** The directory of one run's files. */
export function runDirOf(logDir: string, taskId: string, attempt: number): string {
  return path.join(runsDirOf(logDir), `${taskId}.${attempt}`);
}

/** Longest unix socket path Linux takes (sun_path is 108 bytes with its NUL), with room to spare. */
const MAX_SOCKET_PATH = 100;

/**
 * Where the agent host of a runs directory listens: in that directory, or — when its path is too long for a
 * socket — under the temp dir, named by a hash of it. Either way the socket is mode 0600: whoever may connect
 * may run commands as this user.
 */
export function agentHostSocketOf(runsDir: string): string {
  const inside = path.join(runsDir, 'agent-host.sock');
  if (Buffer.byteLength(inside) <= MAX_SOCKET_PATH) return inside;
  const hash = createHash('sha256').update(path.resolve(runsDir)).digest('hex').slice(0, 20);
  return path.join(os.tmpdir(), `delegate-agent-host-${hash}.sock`);
}

/** Paths of a run's files. */
export function runFiles(runDir: string) {
  return {
    spec: path.join(runDir, 'spec.json'),
    started: path.join(runDir, 'started.json'),
    progress: path.join(runDir, 'progress.json'),
    exit: path.join(runDir, 'exit.json'),
    keepalive: path.join(runDir, 'keepalive'),
  };
}

/**
 * Write a JSON file atomically (temporary name, then rename). With `createDir` false a missing directory is an
 * error (ENOENT): the host must not bring back the directory of a run whose runner has already removed it.
 */
export function writeJsonAtomic(file: string, value: unknown, mode = 0o600, createDir = true): void {
  if (createDir) mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, JSON.stringify(value), { mode });
  renameSync(temporary, file);
}

/** Read a JSON file of a run, or null when it does not exist (yet). */
export function readJsonIfExists<T>(file: string): T | null {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as T;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw error;
  }
}

/** The outcome of a run whose shim has ended, or null when it did not get to write one. */
export function readOutcome(runDir: string): RunOutcome | null {
  return readJsonIfExists<RunOutcome>(runFiles(runDir).exit);
}

/**
 * How long a run may have a spec but no agent yet: the runner wrote `spec.json` and asked the host, which has not
 * answered. A recovery sweep leaves such a run alone this long, and the host refuses a request older than half
 * of it, so a sweep that finds nothing never races a start still under way.
 */
export const START_GRACE_MS = 20_000;

/** Where a run of a runner that may have died stands, judged from its files and this host's processes. */
export type RunLiveness = 'ended' | 'live' | 'starting' | 'gone';

/**
 * `ended`: its outcome is written. `live`: its host (or old shim) still runs it and will write one. `starting`:
 * asked of the host within START_GRACE_MS, not started yet. `gone`: nothing will ever write its outcome.
 * `recorded` is the run's pid as the runner recorded it (the agent's, or an old run's shim), if any.
 */
export function runLiveness(runDir: string, recorded: ProcessRef | null, now = Date.now()): RunLiveness {
  const files = runFiles(runDir);
  if (readOutcome(runDir)) return 'ended';
  let started: ShimStarted | null = null;
  try {
    started = readJsonIfExists<ShimStarted>(files.started);
  } catch {
    // Unreadable: judged by the recorded pid below.
  }
  if (started?.host) return isProcessAlive(started.host.pid, started.host.pidStart) || readOutcome(runDir) ? 'live' : 'gone';
  if (recorded && isProcessAlive(recorded.pid, recorded.pidStart)) return 'live';
  if (started) return 'gone';
  try {
    if (now - statSync(files.spec).mtimeMs < START_GRACE_MS) return 'starting';
  } catch {
    // No spec: never asked of a host.
  }
  return 'gone';
}

/**
 * Remove a run's files once its end is committed (they hold its prompt; the task's logs stay). Its files are
 * known, so they are unlinked by name: a recursive rm lists and stats each first, and the promise one cost ~1 ms
 * of CPU per run on its thread hops, 3× the sync calls (the runner ends a run every few ms when tasks are short).
 * The directory itself goes on libuv's thread pool: under load an ext4 rmdir waited ~1.5 ms per run, on the
 * thread that settles runs and claims the next. Anything else in the directory (a temporary file of a writer
 * that died) falls back to the recursive rm. Resolves once the directory is gone; never rejects.
 */
export function removeRunDir(logDir: string, taskId: string, attempt: number): Promise<void> {
  const runDir = runDirOf(logDir, taskId, attempt);
  for (const file of Object.values(runFiles(runDir))) {
    try {
      unlinkSync(file);
    } catch {
      // Not written in this run (no progress yet, never started), or the directory is gone already.
    }
  }
  return new Promise((resolve) => {
    rmdir(runDir, (error) => {
      if (!error || error.code === 'ENOENT') resolve();
      else rm(runDir, { recursive: true, force: true }, () => resolve());
    });
  });
}
