import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';

/** `delegate resume <id> [--context …]`: continue a finished task from its checkpoint. */
export class ResumeCommand extends EngineCommand {
  static override paths = [['resume']];
  static override usage = Command.Usage({
    description: 'Resume a finished task as a new task with its checkpoint (and your context) in the prompt',
    details:
      "The new task's prompt starts with the earlier run's checkpoint: git branch, HEAD and uncommitted files, its error and last 50 output lines. When the earlier agent session is known, the new run continues it (claude --resume … --fork-session), so the agent remembers what it did.",
    examples: [
      ['Resume a failed task', '$0 resume task-1a2b3c4d5e6f'],
      ['With instructions', '$0 resume task-1a2b3c4d5e6f --context "Try a different approach this time"'],
    ],
  });

  taskId = Option.String({ required: true, name: 'task-id' });
  additionalContext = valueOption('--context', 'TEXT', 'Additional instructions for the resumed run');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the new task as JSON' });

  async run(engine: Engine): Promise<number> {
    const task = await engine.tasks.resume(this.taskId, this.additionalContext);
    await engine.ensureRunner();
    if (this.json) this.printJson(task);
    else this.print(task.taskId);
    return exitCode.ok;
  }
}
