/**
 * What `delegate service install` and `uninstall` share: the target for this platform, and running (or, when the
 * service manager is not installed, printing) its commands.
 */
import { spawnSync } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { serviceTarget, type ServiceTarget } from '../../service-unit.js';

/** The target for the running platform, read from the command's environment (tests pass a temp HOME). */
export function currentTarget(env: NodeJS.ProcessEnv): ServiceTarget {
  // Windows has no getuid; there the target is systemd-shaped text nobody runs, as on any non-macOS platform.
  return serviceTarget(process.platform, env, process.getuid?.() ?? 0);
}

/** Absolute path of bin/delegate.js: this file is dist/adapters/cli/commands/service/manager.js. */
export function delegateBin(): string {
  return fileURLToPath(new URL('../../../../../bin/delegate.js', import.meta.url));
}

/** The executable `name` on the environment's PATH, if any: the CLI's own env, not this process's, so tests can hide it. */
export function findOnPath(name: string, env: NodeJS.ProcessEnv): string | undefined {
  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here: try the next directory.
    }
  }
  return undefined;
}

/** A command as a user would paste it into a shell. */
export function shellLine(argv: string[]): string {
  return argv.map((word) => (/^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`)).join(' ');
}

/** Result of running a service manager's commands. */
export type ManagerRun = { ran: true; failed?: { line: string; output: string } } | { ran: false };

/** Run the commands when their program (systemctl, launchctl) is on PATH; stops at the first that fails. */
export function runManager(commands: string[][], env: NodeJS.ProcessEnv): ManagerRun {
  const program = commands[0]?.[0];
  const found = program === undefined ? undefined : findOnPath(program, env);
  if (!found) return { ran: false };
  for (const argv of commands) {
    const result = spawnSync(found, argv.slice(1), { env, encoding: 'utf8', timeout: 30_000 });
    if (result.status !== 0) return { ran: true, failed: { line: shellLine(argv), output: `${result.stderr ?? ''}${result.error?.message ?? ''}`.trim() } };
  }
  return { ran: true };
}
