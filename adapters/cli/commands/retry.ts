import { Command, Option } from 'clipanion';
import { EngineCommand, exitCode, type Engine } from '../context.js';

/** `delegate retry <id>`: run a finished task again as a new task. */
export class RetryCommand extends EngineCommand {
  static override paths = [['retry']];
  static override usage = Command.Usage({
    description: 'Run a failed, completed or cancelled task again as a new task (same inputs; retryOf links them)',
    examples: [['Retry', '$0 retry task-1a2b3c4d5e6f']],
  });

  taskId = Option.String({ required: true, name: 'task-id' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the new task as JSON' });

  async run(engine: Engine): Promise<number> {
    const task = await engine.tasks.retry(this.taskId);
    await engine.ensureRunner();
    if (this.json) this.printJson(task);
    else this.print(task.taskId);
    return exitCode.ok;
  }
}
