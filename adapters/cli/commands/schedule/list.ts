import { Command, Option } from 'clipanion';
import { exitCode, EngineCommand, type Engine } from '../../context.js';
import { valueOption } from '../../options.js';
import { scheduleTable } from './format.js';

/** `delegate schedule list`: schedules, newest first. */
export class ScheduleListCommand extends EngineCommand {
  static override paths = [['schedule', 'list']];
  static override usage = Command.Usage({
    description: 'List schedules, newest first, with their next run',
    examples: [
      ['All schedules', '$0 schedule list'],
      ['Active ones as JSON', '$0 schedule list --status active --json'],
    ],
  });

  status = valueOption('--status', 'STATE', 'Only schedules in this state (active, paused, completed, cancelled, expired)');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(engine: Engine): Promise<number> {
    const schedules = await engine.schedules.list({ status: this.status });
    if (this.json) this.printJson(schedules);
    else this.print(scheduleTable(schedules));
    return exitCode.ok;
  }
}
