/**
 * Process identity on this host. A pid alone can be reused after a process dies, so a process is identified by
 * pid plus its start time (Linux: field 22 of /proc/<pid>/stat, clock ticks since boot).
 */
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';

/** Fields of /proc/<pid>/stat after the command name (field 3 onwards), or null when the process is gone. */
function statFields(pid: number): string[] | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces and parentheses; fields after it start at the last ')'.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch {
    return null;
  }
}

/** Start time (field 22) from stat fields, in clock ticks since boot. */
function startTimeOf(fields: string[] | null): number | null {
  const ticks = Number(fields?.[19]);
  return fields && Number.isFinite(ticks) ? ticks : null;
}

/** Start time of a process in clock ticks since boot; null where /proc is unavailable or the process is gone. */
export function processStartTime(pid: number): number | null {
  return startTimeOf(statFields(pid));
}

/**
 * True when a process with this pid runs and, where known, started at `startTime` (so a reused pid is not taken
 * for it). A zombie has exited and only waits to be reaped by its parent: it runs nothing.
 */
export function isProcessAlive(pid: number, startTime: number | null): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const fields = statFields(pid);
  if (fields?.[0] === 'Z') return false;
  if (startTime === null) return true;
  const actual = startTimeOf(fields);
  return actual === null || actual === startTime;
}

function procPids(): number[] {
  try {
    return readdirSync('/proc')
      .filter((name) => /^\d+$/.test(name))
      .map(Number);
  } catch {
    return [];
  }
}

/** Live (not zombie) members of a process group, from /proc. */
export function processGroupMembers(pgid: number): number[] {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    // No process at all in the group: skip the scan (the common case, once per finished run).
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return [];
  }
  return procPids().filter((pid) => {
    const fields = statFields(pid);
    return fields !== null && fields[0] !== 'Z' && Number(fields[2]) === pgid;
  });
}

/** Process groups of live processes whose environment holds `name=value` (what an agent of a run carries). */
export function processGroupsWithEnv(name: string, value: string): number[] {
  const needle = `${name}=${value}`;
  const groups = new Set<number>();
  for (const pid of procPids()) {
    if (pid === process.pid) continue;
    let environ: string;
    try {
      environ = readFileSync(`/proc/${pid}/environ`, 'latin1');
    } catch {
      continue;
    }
    if (!environ.split('\0').includes(needle)) continue;
    const fields = statFields(pid);
    if (fields && fields[0] !== 'Z') groups.add(Number(fields[2]));
  }
  return [...groups];
}

/**
 * Kill the process group of an agent whose leader was `pid`, started at `startTime` — never a reused pid's.
 * SIGTERM first, SIGKILL after `graceMs`; resolves true once no live member is left. The group is judged by its
 * members, not its leader: a leader that exited (or is a zombie nobody reaps) can leave tools running. A process
 * group id is not handed out again while the group has members, so a group with this id is still the run's,
 * unless the leader's pid now belongs to a process that started at another time (then the old group is gone).
 */
export async function killProcessGroup(pid: number, startTime: number | null, graceMs: number): Promise<boolean> {
  const current = statFields(pid);
  // A live process holds the pid and we cannot tell it is ours: not ours to kill (the run's environment marker
  // finds the agent exactly when its start time was never recorded).
  if (current !== null && current[0] !== 'Z' && (startTime === null || startTimeOf(current) !== startTime)) return true;
  return killGroupById(pid, graceMs);
}

/** SIGTERM, then SIGKILL after `graceMs`, the members of process group `pgid`; true once none is left. */
export async function killGroupById(pgid: number, graceMs: number): Promise<boolean> {
  const signal = (name: NodeJS.Signals): void => {
    try {
      process.kill(-pgid, name);
    } catch {
      // No member left, or none we may signal.
    }
  };
  if (processGroupMembers(pgid).length === 0) return true;
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (processGroupMembers(pgid).length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  signal('SIGKILL');
  for (let tries = 0; tries < 40; tries++) {
    if (processGroupMembers(pgid).length === 0) return true;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return processGroupMembers(pgid).length === 0;
}

let hostIdentity: string | undefined;

/**
 * This host as the recovery sweep must know it: the hostname alone is not enough, because containers that share
 * a database may share a hostname but not a pid namespace, and a pid means something only within one boot of
 * one pid namespace. So: hostname, boot id and pid namespace — unless DELEGATE_HOST_ID names the host.
 */
export function localHostIdentity(hostId: string | undefined = process.env.DELEGATE_HOST_ID): string {
  // Named by the user (the config's DELEGATE_HOST_ID): runners that cannot see each other's processes (other
  // machines, or tests playing them).
  const named = hostId?.trim();
  if (named) return named;
  if (hostIdentity === undefined) {
    const read = (file: string): string => {
      try {
        return readFileSync(file, 'utf8').trim();
      } catch {
        return '';
      }
    };
    let pidNamespace = '';
    try {
      pidNamespace = readlinkSync('/proc/self/ns/pid');
    } catch {
      pidNamespace = '';
    }
    const boot = read('/proc/sys/kernel/random/boot_id').slice(0, 8);
    hostIdentity = [os.hostname(), boot, pidNamespace.replace(/\D/g, '')].filter(Boolean).join('/');
  }
  return hostIdentity;
}
