import { Command } from 'clipanion';
import type { Engine } from '../../context.js';
import { ScheduleChangeCommand } from './change.js';

/** `delegate schedule pause <id>`. */
export class SchedulePauseCommand extends ScheduleChangeCommand {
  static override paths = [['schedule', 'pause']];
  static override usage = Command.Usage({ description: 'Pause an active schedule (nothing fires until it is resumed)', examples: [['Pause', '$0 schedule pause sched-1a2b3c4d5e6f']] });

  async run(engine: Engine): Promise<number> {
    return this.show(await engine.schedules.pause(this.scheduleId));
  }
}
