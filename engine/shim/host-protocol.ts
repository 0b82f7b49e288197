/**
 * What a runner and the agent host of its data dir say over the host's unix socket: one JSON object per line.
 * The run's files stay the truth (run-files.ts); these lines only spare the runner its polling.
 */
import type { ShimStarted } from '../pool/run-files.js';

/** Start the run whose `spec.json` is in `runDir`, with this environment (never written to disk: it may hold keys). */
export interface AgentHostRequest {
  op: 'start';
  runDir: string;
  env: Record<string, string>;
}

/** The agent of a run started (also in its `started.json`), or the run ended (its `exit.json`, if it still has a directory). */
export type AgentHostReply = { runDir: string; started: ShimStarted } | { runDir: string; ended: true };
