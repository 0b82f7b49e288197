/**
 * The V8 settings of every delegate process: the CLI and its runner and MCP server (bin/delegate.js) and the
 * agent host (shim/host.ts), which Node starts directly. bin/delegate.js sets them before the CLI's modules load,
 * the host as its first statement (after its imports), before any run; they hold for worker threads too. Each was
 * measured by interleaved A/B runs on a 2-core machine:
 * - the young generation stays at its first size (1 MiB a semi-space) instead of growing to 16 MiB: what these
 *   processes allocate per call or per run dies young. MCP server after 1,000 calls 122 -> 94 MiB, runner held
 *   86-88 -> 80 MiB, at equal CPU per run within this VM's noise.
 * - no optimizing compiler (TurboFan). The runner's JS is glue between native calls (SQL, system calls, messages),
 *   and compiling on a background thread competed with it for the two cores: runner CPU per instant task
 *   10.8-12.0 ms against 12.6-13.0 (200 and 800 tasks), 1,000 cron fires p99 lag 645-650 ms against 840-910 and
 *   ~1,540 fires/s against ~1,150, 8-15 MiB less memory; the DAG of 1,000 tasks within its noise (runner CPU per
 *   completion 13.0-13.1 ms against 12.9-14.2).
 * In the agent host, whose every run forks it, a smaller process forks faster: its RSS over 200 instant runs
 * 49.5 MiB against 57.5, 128-131 page faults a run against 160, and Node's spawn of the agent p50 14.6-15.6 ms
 * against 15.7-16.7 (p90 22-26 against 24-30) in three pairs.
 */
import v8 from 'node:v8';

export function applyV8Settings(): void {
  v8.setFlagsFromString('--semi-space-growth-factor=1');
  v8.setFlagsFromString('--no-opt');
}
