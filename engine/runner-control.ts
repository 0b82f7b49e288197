/**
 * How front doors make sure a runner is alive for their data dir on this host (SPEC §2), and how `delegate
 * stop` ends it. Starting is done once even when many front doors race: a lock file taken with O_EXCL elects
 * one starter, and the runner itself refuses to register while another live runner exists (checked inside
 * the registration's write transaction), so at most one auto-started runner survives.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, statSync, unlinkSync, writeSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DelegateConfig } from './config.js';
import { openRotatedLog } from './log-file.js';
import { isProcessAlive, localHostIdentity } from './process-info.js';
import { isLiveLocalNode } from './node-liveness.js';
import type { NodeRecord, Store } from './store/store.js';

/** The CLI entry (bin/delegate.js, which loads the compiled CLI), so a runner can be started from any front door. */
export function cliEntry(): string {
  const here = fileURLToPath(import.meta.url);
  const root = path.resolve(path.dirname(here), here.includes(`${path.sep}dist${path.sep}`) ? '../..' : '..');
  return path.join(root, 'bin', 'delegate.js');
}

/** Live runners of this data dir on this host. */
export async function liveLocalRunners(store: Store, config: DelegateConfig): Promise<NodeRecord[]> {
  // Heartbeats are written by the database's clock, so they are judged by it too.
  const host = localHostIdentity(config.hostId);
  const [nodes, now] = await Promise.all([store.listNodes(host), store.dbNow()]);
  return nodes.filter((node) => node.dataDir === config.dataDir && isLiveLocalNode(node, now, config.leaseMs, host));
}

/** Start `delegate serve` detached (its output to runner.log); returns its pid. */
export function spawnDetachedRunner(config: DelegateConfig, env: NodeJS.ProcessEnv = process.env, extraArgs: string[] = []): number {
  mkdirSync(config.dataDir, { recursive: true });
  const log = openRotatedLog(path.join(config.dataDir, 'runner.log'));
  try {
    // A front door run by an agent carries that agent's run marker; the runner must not, or recovering that
    // agent's run would take the runner for part of it.
    const { DELEGATE_RUN: _marker, ...runnerEnv } = env;
    const child = spawn(process.execPath, [cliEntry(), 'serve', ...extraArgs], {
      detached: true,
      stdio: ['ignore', log, log],
      env: { ...runnerEnv, DELEGATE_DATA_DIR: config.dataDir },
      cwd: config.dataDir,
    });
    child.unref();
    return child.pid ?? -1;
  } finally {
    closeSync(log);
  }
}

/** What `ensureRunner` found or did. */
export type RunnerState = 'running' | 'started' | 'starting' | 'disabled';

/** What a front door tells the user when no runner will pick up the work (autostart off). */
export const noRunnerHint = 'no runner is running for this data dir and DELEGATE_AUTOSTART=0: the task waits in the queue until you start one with `delegate serve`';

/** A starter lock older than this was left by a front door that died mid-start. */
const staleLockMs = 20_000;
/** How long the starter waits for its runner to register; less than the stale age, so its lock is never taken. */
const startWaitMs = 15_000;

/**
 * Make sure a runner serves this data dir on this host; start one (detached) when none does. Returns
 * `started` when this call started it, `running` when one was up, `starting` when another front door is
 * starting it right now (or one was started but is slow to register), `disabled` when none runs and
 * DELEGATE_AUTOSTART=0 (the work stays queued).
 */
export async function ensureRunner(store: Store, config: DelegateConfig, env: NodeJS.ProcessEnv = process.env): Promise<RunnerState> {
  for (let tries = 0; ; tries++) {
    if ((await liveLocalRunners(store, config)).length > 0) return 'running';
    if (!config.autostart) return 'disabled';
    mkdirSync(config.dataDir, { recursive: true });
    const lock = path.join(config.dataDir, 'runner-start.lock');
    let fd: number;
    try {
      fd = openSync(lock, 'wx');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const age = lockAge(lock);
      // The holder is starting one, unless it died mid-start (stale) or just finished (gone: look again).
      if (age !== null && age < staleLockMs) return 'starting';
      if (age !== null) removeQuietly(lock);
      if (tries < 3) continue;
      return 'starting';
    }
    try {
      writeSync(fd, String(process.pid));
      // Another front door may have finished starting one between our check and the lock.
      if ((await liveLocalRunners(store, config)).length > 0) return 'running';
      const pid = spawnDetachedRunner(config, env, ['--autostarted']);
      return (await waitForRunner(store, config, startWaitMs, pid)) || (await liveLocalRunners(store, config)).length > 0 ? 'started' : 'starting';
    } finally {
      closeSync(fd);
      removeQuietly(lock);
    }
  }
}

/** Milliseconds since the lock was written, or null when it is gone. */
function lockAge(file: string): number | null {
  try {
    return Date.now() - statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

function removeQuietly(file: string): void {
  try {
    unlinkSync(file);
  } catch {
    // Already removed.
  }
}

/** Wait until a live runner is registered (a detached start returns once it is up). */
export async function waitForRunner(store: Store, config: DelegateConfig, timeoutMs: number, pid?: number): Promise<NodeRecord | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const live = await liveLocalRunners(store, config);
    const found = pid === undefined ? live[0] : live.find((node) => node.pid === pid);
    if (found) return found;
    if (pid !== undefined && !isProcessAlive(pid, null)) return null;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return null;
}

/** SIGTERM every live runner of this data dir on this host and wait for them to exit. Returns how many stopped. */
export async function stopLocalRunners(store: Store, config: DelegateConfig, timeoutMs = 30_000): Promise<NodeRecord[]> {
  const runners = await liveLocalRunners(store, config);
  for (const runner of runners) {
    try {
      process.kill(runner.pid, 'SIGTERM');
    } catch {
      // Already gone.
    }
  }
  const deadline = Date.now() + timeoutMs;
  while (runners.some((runner) => isProcessAlive(runner.pid, runner.pidStart)) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return runners;
}
