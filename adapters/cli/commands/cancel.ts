import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { agentStopText } from '../format.js';

/** `delegate cancel <id>`: cancel a task; a running agent's process tree is killed. */
export class CancelCommand extends EngineCommand {
  static override paths = [['cancel']];
  static override usage = Command.Usage({
    description: 'Cancel a task (kills its agent if running; its dependants fail with dependency_failed)',
    details: 'Prints which dependants failed with it (with --json: the task plus failedDependants). The reason is kept with the task: `delegate status <id>` shows it.',
    examples: [['Cancel with a reason', '$0 cancel task-1a2b3c4d5e6f --reason "wrong branch"']],
  });

  taskId = Option.String({ required: true, name: 'task-id' });
  reason = valueOption('--reason', 'TEXT', 'Why, kept with the task and in its history');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the task and the dependants that failed as JSON' });

  async run(engine: Engine): Promise<number> {
    const { task, failedDependants } = await engine.tasks.cancelWithCascade(this.taskId, this.reason);
    if (this.json) {
      this.printJson({ ...task, failedDependants });
      return exitCode.ok;
    }
    const count = failedDependants.length;
    const line = `${task.status} ${task.taskId}${count ? `; ${count} dependant${count === 1 ? '' : 's'} failed: ${failedDependants.join(', ')}` : ''}`;
    this.print([line, agentStopText(task.agentStop)].filter(Boolean).join('. '));
    return exitCode.ok;
  }
}
