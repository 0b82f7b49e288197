import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { statusLabel } from '../format.js';

/** `delegate cancel <id>`: cancel a task; a running agent's process tree is killed. */
export class CancelCommand extends EngineCommand {
  static override paths = [['cancel']];
  static override usage = Command.Usage({
    description: 'Cancel a task (kills its agent if running; its dependants fail with dependency_failed)',
    examples: [['Cancel with a reason', '$0 cancel task-1a2b3c4d5e6f --reason "wrong branch"']],
  });

  taskId = Option.String({ required: true, name: 'task-id' });
  reason = valueOption('--reason', 'TEXT', 'Why, kept in the task history');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the task as JSON' });

  async run(engine: Engine): Promise<number> {
    const task = await engine.tasks.cancel(this.taskId, this.reason);
    if (this.json) this.printJson(task);
    else this.print(`${task.taskId} ${statusLabel(task)}`);
    return exitCode.ok;
  }
}
