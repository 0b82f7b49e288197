/**
 * What a runner and the agent host of its data dir say over the host's unix socket: one JSON object per line.
 * The run's files stay the truth (run-files.ts); these lines only spare the runner its polling.
 */
import type { ShimProgress, ShimStarted } from '../pool/run-files.js';

/** Start the run whose `spec.json` is in `runDir`, with this environment (never written to disk: it may hold keys). */
export interface AgentHostRequest {
  op: 'start';
  runDir: string;
  env: Record<string, string>;
  /**
   * Send the run's progress as replies too. A host of an earlier version ignores this and its `started` reply
   * says nothing of it: the runner then reads `progress.json`, as it did.
   */
  progress?: boolean;
}

/**
 * The agent of a run started (also in its `started.json`; `pushesProgress` when progress replies will follow),
 * its progress (also in `progress.json`), or the run ended (its `exit.json`, if it still has a directory).
 */
export type AgentHostReply =
  | { runDir: string; started: ShimStarted; pushesProgress?: true }
  | { runDir: string; progress: ShimProgress }
  | { runDir: string; ended: true };
