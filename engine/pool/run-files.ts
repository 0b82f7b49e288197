/**
 * The files of one agent run (DESIGN §10). A runner does not hold an agent's pipes: it starts a small shim
 * process of ours, detached in its own session, which runs the agent, writes its output to the task's log files
 * and reports through files in the run's directory — so a runner that dies costs the run nothing, and the next
 * runner on the host adopts the live shim or collects the result of the one that ended.
 * - `spec.json`: what to run, written by the runner before it starts the shim (mode 0600);
 * - `started.json`: the agent's pid, written by the shim once the agent exists;
 * - `progress.json`: output bytes, readable lines, agent session, rewritten as the run goes;
 * - `exit.json`: the run's outcome, written once at the end;
 * - `keepalive`: touched by the runner that follows the run; where a runner on another host may take the run
 *   over, the shim ends its agent when no runner has touched it for a while (see `ShimSpec.keepaliveMs`).
 * Every file is written to a temporary name and renamed, so a reader never sees half of one.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { AgentCommand } from '../agent.js';
import type { RunOutcome } from './protocol.js';

/** What the shim runs: everything but the environment, which it gets as its own (it may carry API keys). */
export interface ShimSpec {
  taskId: string;
  attempt: number;
  agent: string;
  command: Omit<AgentCommand, 'env'>;
  cwd: string;
  logDir: string;
  maxOutputBuffer: number;
  killGraceMs: number;
  /** Modules that register agents, for the shim's parser of the agent's output. */
  agentModules: readonly string[];
  /**
   * End the agent when no runner has touched `keepalive` for this long, so that a runner on another host, which
   * cannot see this process, may take the run over once its lease lapsed without two agents writing one task.
   * Null where only this host's runners can take it over (they see the shim and adopt it): it runs on.
   */
  keepaliveMs?: number | null;
}

/** The agent process as the shim reports it. */
export interface ShimStarted {
  pid: number;
  pidStartTime: number | null;
}

/** How far a run has got. */
export interface ShimProgress {
  outputBytes: number;
  lines: number;
  sessionId?: string;
}

/** The directory of one run's files. */
export function runDirOf(logDir: string, taskId: string, attempt: number): string {
  return path.join(logDir, 'runs', `${taskId}.${attempt}`);
}

/** Paths of a run's files. */
export function runFiles(runDir: string) {
  return {
    spec: path.join(runDir, 'spec.json'),
    started: path.join(runDir, 'started.json'),
    progress: path.join(runDir, 'progress.json'),
    exit: path.join(runDir, 'exit.json'),
    keepalive: path.join(runDir, 'keepalive'),
    /** The shim's own stderr (its crashes), not the agent's. */
    shimLog: path.join(runDir, 'shim.log'),
  };
}

/** Write a JSON file atomically (temporary name, then rename). */
export function writeJsonAtomic(file: string, value: unknown, mode = 0o600): void {
  mkdirSync(path.dirname(file), { recursive: true });
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

/** Remove a run's files once its end is committed (they hold its prompt; the task's logs stay). */
export function removeRunDir(logDir: string, taskId: string, attempt: number): void {
  rmSync(runDirOf(logDir, taskId, attempt), { recursive: true, force: true });
}
