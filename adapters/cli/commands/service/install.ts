import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Command, Option } from 'clipanion';
import { loadConfig } from '../../../../engine/config.js';
import { isUsageError, UsageError } from '../../../../engine/errors.js';
import { exitCode, exitCodeOf, type DelegateContext } from '../../context.js';
import { printable } from '../../format.js';
import { serviceFileText } from '../../service-unit.js';
import { currentTarget, delegateBin, runManager, shellLine } from './manager.js';

/** `delegate service install`: a user-level systemd unit (launchd agent on macOS) that keeps `delegate serve` up. */
export class ServiceInstallCommand extends Command<DelegateContext> {
  static override paths = [['service', 'install']];
  static override usage = Command.Usage({
    description: 'Install a user service (systemd, or launchd on macOS) that keeps a runner up across reboots, so schedules fire',
    examples: [
      ['Install and start it', '$0 service install'],
      ['Show the unit without writing it', '$0 service install --dry-run'],
    ],
  });

  dryRun = Option.Boolean('--dry-run', false, { description: 'Print the service file and write nothing' });

  override async execute(): Promise<number> {
    const env = this.context.env;
    try {
      // A unit file is world-readable and shows up in `systemctl cat`: a secret does not belong in it.
      if (env.DELEGATE_DATABASE_TOKEN?.trim()) {
        throw new UsageError('invalid_config', 'DELEGATE_DATABASE_TOKEN is set: a service file never holds a token; install without it, then put DELEGATE_DATABASE_TOKEN=… in an EnvironmentFile with mode 0600 and add EnvironmentFile=<that file> to the unit');
      }
      const config = loadConfig(env);
      const environment: Array<[string, string]> = [['DELEGATE_DATA_DIR', config.dataDir]];
      if (env.DELEGATE_DATABASE_URL?.trim()) environment.push(['DELEGATE_DATABASE_URL', config.databaseUrl]);
      // A service lives on: it must never exit for being idle, or schedules stop firing.
      environment.push(['DELEGATE_IDLE_EXIT', '0']);
      // Service managers start with a minimal PATH: the runner must find `claude` (and git) where this shell does.
      if (env.PATH) environment.push(['PATH', env.PATH]);
      const target = currentTarget(env);
      const text = serviceFileText(target.kind, { node: process.execPath, bin: delegateBin(), environment });
      if (this.dryRun) {
        this.context.stdout.write(text);
        this.context.stderr.write(`(dry run: would write ${target.file}, then run: ${target.enable.map(shellLine).join(' && ')})\n`);
        return exitCode.ok;
      }
      mkdirSync(path.dirname(target.file), { recursive: true });
      writeFileSync(target.file, text, { mode: 0o644 });
      this.context.stdout.write(`wrote ${target.file}\n`);
      const run = runManager(target.enable, env);
      if (!run.ran) {
        this.context.stdout.write(`${target.enable[0]![0]} not found; to start the service, run:\n${target.enable.map((argv) => `  ${shellLine(argv)}\n`).join('')}`);
        return exitCode.ok;
      }
      if (run.failed) {
        this.context.stderr.write(`delegate: \`${run.failed.line}\` failed: ${printable(run.failed.output)}\n`);
        return exitCode.failed;
      }
      this.context.stdout.write(`started: ${target.enable.map(shellLine).join(' && ')}\n`);
      return exitCode.ok;
    } catch (error) {
      if (!isUsageError(error)) throw error;
      this.context.stderr.write(`delegate: ${printable(error.message)}\n`);
      return exitCodeOf(error.code);
    }
  }
}
