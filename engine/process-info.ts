/**
 * Process identity on this host. A pid alone can be reused after a process dies, so a process is identified by
 * pid plus its start time (Linux: field 22 of /proc/<pid>/stat, clock ticks since boot).
 */
import { readFileSync } from 'node:fs';

/** Start time of a process in clock ticks since boot; null where /proc is unavailable or the process is gone. */
export function processStartTime(pid: number): number | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after it start at the last ')'.
    const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(rest[19]);
    return Number.isFinite(ticks) ? ticks : null;
  } catch {
    return null;
  }
}

/** True when a process with this pid runs and, where known, started at `startTime` (so a reused pid is not taken for it). */
export function isProcessAlive(pid: number, startTime: number | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  if (isZombie(pid)) return false;
  if (startTime === null) return true;
  const actual = processStartTime(pid);
  return actual === null || actual === startTime;
}

/** A zombie has exited and only waits to be reaped by its parent: it runs nothing. */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

/**
 * Kill the process group led by `pid` — only if that pid is still the process that started at `startTime`
 * (a reused pid is never killed). SIGTERM first, SIGKILL after `graceMs`. Resolves true once it is gone.
 */
export async function killProcessGroup(pid: number, startTime: number | null, graceMs: number): Promise<boolean> {
  if (!isProcessAlive(pid, startTime)) return true;
  const signalGroup = (signal: NodeJS.Signals): void => {
    try {
      process.kill(-pid, signal);
    } catch {
      try {
        process.kill(pid, signal);
      } catch {
        // Gone already.
      }
    }
  };
  signalGroup('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isProcessAlive(pid, startTime)) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  signalGroup('SIGKILL');
  for (let tries = 0; tries < 40 && isProcessAlive(pid, startTime); tries++) await new Promise((resolve) => setTimeout(resolve, 25));
  return !isProcessAlive(pid, startTime);
}
