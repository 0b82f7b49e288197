import { Command, Option } from 'clipanion';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { parseDelay } from '../../../engine/task-input.js';

/** `delegate pipeline <p1> <p2> …`: steps that run one after another, each continuing from the last. */
export class PipelineCommand extends EngineCommand {
  static override paths = [['pipeline']];
  static override usage = Command.Usage({
    description: 'Queue prompts as a chain: each step waits for the previous one and gets its checkpoint in its prompt',
    details: 'With --delay, each step starts that long after the previous one completed. If a step fails, the steps after it fail with dependency_failed.',
    examples: [
      ['Build, then test, then deploy', '$0 pipeline "npm run build" "npm test" "npm run deploy"'],
      ['Five minutes between steps', '$0 pipeline "open the PR" "address review comments" --delay 5m'],
    ],
  });

  prompts = Option.Rest({ required: 1, name: 'prompt' });
  delay = Option.String('--delay', { description: 'Wait between steps: 30s, 5m, 2h (default none)' });
  priority = Option.String('-p,--priority', { description: 'P0, P1 or P2 for every step' });
  workingDirectory = Option.String('-w,--working-directory', { description: 'Absolute directory to run in (default: here)' });
  agent = Option.String('--agent', { description: 'Agent to run (default claude)' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the tasks as JSON' });

  async run(engine: Engine): Promise<number> {
    const delayMs = this.delay === undefined ? undefined : parseDelay(this.delay, '--delay');
    const common = Object.fromEntries(
      Object.entries({ priority: this.priority, workingDirectory: this.workingDirectory, agent: this.agent }).filter(([, value]) => value !== undefined),
    );
    const tasks = await engine.tasks.pipeline(
      this.prompts.map((prompt) => ({ prompt, ...(delayMs !== undefined ? { delayMs } : {}) })),
      common,
    );
    await engine.ensureRunner();
    if (this.json) this.printJson(tasks);
    else this.print(tasks.map((task) => task.taskId).join('\n'));
    return exitCode.ok;
  }
}
