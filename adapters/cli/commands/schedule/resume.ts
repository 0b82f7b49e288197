import { Command } from 'clipanion';
import type { Engine } from '../../context.js';
import { ScheduleChangeCommand } from './change.js';

/** `delegate schedule resume <id>`. */
export class ScheduleResumeCommand extends ScheduleChangeCommand {
  static override paths = [['schedule', 'resume']];
  static override usage = Command.Usage({
    description: 'Resume a paused schedule (slots missed meanwhile go through its missed-run policy)',
    examples: [['Resume', '$0 schedule resume sched-1a2b3c4d5e6f']],
  });

  async run(engine: Engine): Promise<number> {
    const view = await engine.schedules.resume(this.scheduleId);
    await engine.ensureRunner();
    return this.show(view);
  }
}
