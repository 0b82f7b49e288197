import { Command, Option } from 'clipanion';
import type { Engine } from '../../context.js';
import { ScheduleChangeCommand } from './change.js';
import { valueOption } from '../../options.js';

/** `delegate schedule cancel <id>`. */
export class ScheduleCancelCommand extends ScheduleChangeCommand {
  static override paths = [['schedule', 'cancel']];
  static override usage = Command.Usage({
    description: 'Cancel a schedule; --cancel-tasks also cancels its unfinished tasks',
    examples: [['Cancel it and its running task', '$0 schedule cancel sched-1a2b3c4d5e6f --reason "not needed" --cancel-tasks']],
  });

  reason = valueOption('--reason', 'TEXT', 'Why, kept with the schedule');
  cancelTasks = Option.Boolean('--cancel-tasks', false, { description: 'Also cancel its unfinished tasks' });

  async run(engine: Engine): Promise<number> {
    return this.show(await engine.schedules.cancel(this.scheduleId, this.reason, this.cancelTasks));
  }
}
