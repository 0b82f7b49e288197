import { existsSync, rmSync } from 'node:fs';
import { Command, Option } from 'clipanion';
import { isUsageError } from '../../../../engine/errors.js';
import { exitCode, exitCodeOf, type DelegateContext } from '../../context.js';
import { printable } from '../../format.js';
import { currentTarget, runManager, shellLine } from './manager.js';

/** `delegate service uninstall`: stop and disable the user service, then remove its file. */
export class ServiceUninstallCommand extends Command<DelegateContext> {
  static override paths = [['service', 'uninstall']];
  static override usage = Command.Usage({
    description: 'Stop and remove the user service that `delegate service install` wrote',
    examples: [['Remove it', '$0 service uninstall']],
  });

  dryRun = Option.Boolean('--dry-run', false, { description: 'Say what would be stopped and removed, and change nothing' });

  override async execute(): Promise<number> {
    try {
      const env = this.context.env;
      const target = currentTarget(env);
      if (!existsSync(target.file)) {
        this.context.stdout.write(`no service installed (${target.file} does not exist)\n`);
        return exitCode.ok;
      }
      if (this.dryRun) {
        this.context.stdout.write(`would run: ${target.disable.map(shellLine).join(' && ')}\nwould remove ${target.file}\n`);
        return exitCode.ok;
      }
      // Stop it while the manager still knows the file; a unit that was never enabled fails here harmlessly.
      const run = runManager(target.disable, env);
      if (run.ran && run.failed) this.context.stderr.write(`delegate: \`${run.failed.line}\` failed (removing the file anyway): ${printable(run.failed.output)}\n`);
      rmSync(target.file, { force: true });
      this.context.stdout.write(`removed ${target.file}\n`);
      if (target.kind === 'systemd') {
        const reload = [['systemctl', '--user', 'daemon-reload']];
        if (run.ran) runManager(reload, env);
        else this.context.stdout.write(`systemctl not found; if the service was enabled elsewhere, run:\n${[...target.disable, ...reload].map((argv) => `  ${shellLine(argv)}\n`).join('')}`);
      } else if (!run.ran) {
        this.context.stdout.write(`launchctl not found; if the agent was loaded, run:\n${target.disable.map((argv) => `  ${shellLine(argv)}\n`).join('')}`);
      }
      return exitCode.ok;
    } catch (error) {
      if (!isUsageError(error)) throw error;
      this.context.stderr.write(`delegate: ${printable(error.message)}\n`);
      return exitCodeOf(error.code);
    }
  }
}
