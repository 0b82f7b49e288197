import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
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
  delay = valueOption('--delay', 'DURATION', 'Wait between steps: 30s, 5m, 2h (default none)');
  priority = valueOption('-p,--priority', 'P0|P1|P2', 'P0, P1 or P2 for every step');
  workingDirectory = valueOption('-w,--working-directory', 'DIR', 'Absolute directory to run in (default: here)');
  agent = valueOption('--agent', 'NAME', 'Agent to run (default claude)');
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
