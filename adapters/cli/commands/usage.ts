import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { formatUsage } from '../format.js';

/** `delegate usage`: what the agents cost, in total and per day, agent or schedule. */
export class UsageCommand extends EngineCommand {
  static override paths = [['usage']];
  static override usage = Command.Usage({
    description: 'Sum the cost, tokens and turns of agent runs, in total or per day, agent or schedule',
    details: 'Every run that reported its usage counts, also an earlier attempt of a task that ran again (after a usage limit, say). Days are calendar days in this machine’s time zone.',
    examples: [
      ['Everything on record', '$0 usage'],
      ['The last 7 days, per day', '$0 usage --since 7d --by day'],
      ['Per schedule since a date, as JSON', '$0 usage --since 2026-11-01 --by schedule --json'],
    ],
  });

  since = valueOption('--since', 'TIME', 'Only runs that ended since an ISO 8601 time or a duration ago (90m, 12h, 7d)');
  by = valueOption('--by', 'day|agent|schedule', 'Break the sums down per day, agent or schedule');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(engine: Engine): Promise<number> {
    const summary = await engine.usage.summary({ since: this.since, by: this.by }, (field) => `--${field}`);
    if (this.json) this.printJson(summary);
    else this.print(formatUsage(summary));
    return exitCode.ok;
  }
}
