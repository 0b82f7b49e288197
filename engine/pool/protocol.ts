/**
 * The message protocol between the supervisor (main thread) and a pool worker that launches one agent
 * process. Two small command sets and one message shape, as BullMQ's ParentCommand / ChildCommand.
 */
import type { AgentCommand, AgentResult } from '../agent.js';
import type { GitState } from '../checkpoint.js';

/** Everything a launcher needs to start one attempt of a task on the agent host. Structured-clone safe. */
export interface LaunchRequest {
  kind?: 'start';
  taskId: string;
  attempt: number;
  /** Agent name, resolved in the agent host to the same plug-in (for its output parser). */
  agent: string;
  command: AgentCommand;
  cwd: string;
  /** Directory for this task's log files (created if missing). */
  logDir: string;
  maxOutputBuffer: number;
  /** Grace between SIGTERM and SIGKILL of the process group. */
  killGraceMs: number;
  /** The environment the agent's is drawn from (through a safelist); default the worker's process.env. */
  baseEnv?: Record<string, string | undefined>;
  /** Modules that register agents, which the agent host imports for the agent's output parser. */
  agentModules: readonly string[];
  /** The agent host ends the agent when no runner followed it for this long; null: never (see ShimSpec). */
  keepaliveMs?: number | null;
}

/** Follow the live run of a runner that died (DESIGN §10): its files, from where they are. */
export interface AdoptRequest {
  kind: 'adopt';
  taskId: string;
  attempt: number;
  logDir: string;
  killGraceMs: number;
  /** The agent (or, in a run of an earlier version, its shim): leader of the run's process group. */
  pid: number;
  pidStart: number | null;
}

/** What a launcher is asked to do. */
export type LauncherJob = LaunchRequest | AdoptRequest;

/**
 * Why an agent run ended. `lost`: its agent host ended without an outcome (it was killed from outside), so the run
 * counts as interrupted and is resumed.
 */
export type RunEnd = 'exited' | 'output_limit' | 'spawn_error' | 'cancelled' | 'lost';

/** The final word of a launcher about one run. */
export interface RunOutcome {
  end: RunEnd;
  exitCode: number | null;
  signal: string | null;
  /** A one-line explanation for failures (spawn error text, limit hit, …). */
  error?: string | undefined;
  result: AgentResult;
  outputBytes: number;
  /** The last lines of readable output (at most 50), for checkpoints and summaries. */
  lastLines: string[];
  /**
   * The git state of the working directory once the agent ended, for the checkpoint: taken by the agent host, so the
   * runner spawns no git of its own between a run's end and its commit (a spawn from the runner, a process of
   * 100+ MiB, cost ~25 ms of its event loop).
   */
  git?: GitState | undefined;
}

/** Commands the main thread sends to a launcher over its MessagePort. */
export const ParentCommand = { Cancel: 'cancel' } as const;
export type ParentCommand = (typeof ParentCommand)[keyof typeof ParentCommand];

/** Commands a launcher sends to the main thread over its MessagePort. */
export const ChildCommand = { Started: 'started', Progress: 'progress', Exited: 'exited' } as const;
export type ChildCommand = (typeof ChildCommand)[keyof typeof ChildCommand];

/** One message in either direction. */
export type LauncherMessage =
  | { cmd: typeof ParentCommand.Cancel; taskId: string; value?: { reason?: string } }
  | { cmd: typeof ChildCommand.Started; taskId: string; value: { pid: number; pidStartTime: number | null } }
  | { cmd: typeof ChildCommand.Progress; taskId: string; value: { outputBytes: number; sessionId?: string; lines: number } }
  | { cmd: typeof ChildCommand.Exited; taskId: string; value: RunOutcome };

/** Log file paths of one task, relative to nothing: absolute, under the data dir. */
export function taskLogPaths(logDir: string, taskId: string): { raw: string; stderr: string; text: string } {
  return {
    raw: `${logDir}/${taskId}.stdout.jsonl`,
    stderr: `${logDir}/${taskId}.stderr.log`,
    text: `${logDir}/${taskId}.log`,
  };
}
