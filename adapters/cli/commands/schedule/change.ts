/** The base of `delegate schedule pause|resume|cancel <id>`: the commands that move a schedule through its lifecycle. */
import { Option } from 'clipanion';
import { exitCode, EngineCommand } from '../../context.js';
import { scheduleSummary } from './format.js';
import type { ScheduleView } from '../../../../engine/schedule-service.js';

/** Shared output of the lifecycle commands. */
export abstract class ScheduleChangeCommand extends EngineCommand {
  scheduleId = Option.String({ required: true, name: 'schedule-id' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the schedule as JSON' });

  protected show(view: ScheduleView): number {
    if (this.json) this.printJson(view);
    else this.print(`${view.scheduleId} ${scheduleSummary(view)}`);
    return exitCode.ok;
  }
}
