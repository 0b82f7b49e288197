import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
import { exitCode, type Engine } from '../context.js';
import { TaskOptionsCommand } from '../task-options.js';
import { parseDelay, type DelegateTaskInput } from '../../../engine/task-input.js';

/** `delegate pipeline <p1> <p2> …`: steps that run one after another, each continuing from the last. */
export class PipelineCommand extends TaskOptionsCommand {
  static override paths = [['pipeline']];
  static override usage = Command.Usage({
    description: 'Queue prompts as a chain: each step waits for the previous one and gets its checkpoint in its prompt',
    details:
      'With --delay, each step starts that long after the previous one completed. If a step fails, the steps after it fail with dependency_failed. The task options (priority, timeout, agent, model, …) apply to every step.',
    examples: [
      ['Build, then test, then deploy', '$0 pipeline "npm run build" "npm test" "npm run deploy"'],
      ['Five minutes between steps', '$0 pipeline "open the PR" "address review comments" --delay 5m'],
    ],
  });

  prompts = Option.Rest({ required: 1, name: 'prompt' });
  delay = valueOption('--delay', 'DURATION', 'Wait between steps: 30s, 5m, 2h (default none)');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the tasks as JSON' });

  async run(engine: Engine): Promise<number> {
    const delayMs = this.delay === undefined ? undefined : parseDelay(this.delay, '--delay');
    const tasks = await engine.tasks.pipeline(
      this.prompts.map((prompt) => ({ prompt, ...(delayMs !== undefined ? { delayMs } : {}) })),
      // As typed on the command line: the engine parses every step with DelegateTask's schema, which names a bad value.
      this.taskFields() as Omit<DelegateTaskInput, 'prompt' | 'dependsOn' | 'continueFrom'>,
    );
    await engine.ensureRunner();
    if (this.json) this.printJson(tasks);
    else this.print(tasks.map((task) => task.taskId).join('\n'));
    return exitCode.ok;
  }
}
