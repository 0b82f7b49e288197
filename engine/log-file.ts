/**
 * The logs of detached processes: `runner.log` in the data dir and `agent-host.log` in its runs directory. Their
 * processes write to an inherited file descriptor for as long as they live, so a log is rotated when one is
 * started: past `maxLogBytes` it becomes `<file>.1` (replacing the one before), and the new process writes to a
 * fresh file. A log thus stays within about twice the limit plus what one process writes in its lifetime.
 *
 * What this does not do: a process already running (a second runner of the data dir) goes on writing to the
 * file it opened, now `<file>.1`; and of two processes starting at the same moment, the later rename can move
 * the earlier one's fresh log over `.1`. Either way lines land in the other file or an old `.1` is lost, never
 * anything else: these logs are for reading, and nothing depends on them.
 */
import { openSync, renameSync, statSync } from 'node:fs';

/** Size past which a log is rotated when the next process starts. */
export const maxLogBytes = 8 * 1024 * 1024;

/** Open `file` for appending (the caller closes the descriptor), first rotating it when it has grown past `limit`. */
export function openRotatedLog(file: string, limit: number = maxLogBytes): number {
  try {
    if ((statSync(file, { throwIfNoEntry: false })?.size ?? 0) > limit) renameSync(file, `${file}.1`);
  } catch {
    // Another starter rotated it first, or it cannot be moved: appending to it is still right.
  }
  return openSync(file, 'a');
}
