import { Command, Option } from 'clipanion';
import { UsageError } from '../../../../engine/errors.js';
import { exitCode, EngineCommand, type Engine } from '../../context.js';
import { valueOption } from '../../options.js';
import { scheduleDetailText } from './format.js';

/** `delegate schedule get <id>`: a schedule, its next 5 runs and its history. */
export class ScheduleGetCommand extends EngineCommand {
  static override paths = [['schedule', 'get']];
  static override usage = Command.Usage({
    description: 'Show a schedule with its next runs and execution history',
    examples: [['One schedule', '$0 schedule get sched-1a2b3c4d5e6f']],
  });

  scheduleId = Option.String({ required: true, name: 'schedule-id' });
  history = valueOption('--history', 'N', 'History rows to show (default 20)');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(engine: Engine): Promise<number> {
    const limit = this.history === undefined ? undefined : Number(this.history);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 1000)) {
      throw new UsageError('invalid_input', `--history '${this.history}': expected a whole number from 1 to 1000`);
    }
    const detail = await engine.schedules.get(this.scheduleId, limit);
    if (this.json) this.printJson(detail);
    else this.print(scheduleDetailText(detail));
    return exitCode.ok;
  }
}
