import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { formatTaskDetail } from '../format.js';
import { progressLine, waitForTasks } from '../wait.js';

/** Numbers from the command line go to the shared schema as numbers when they are, else as typed, so its message names the bad value. */
function numberish(value: string | undefined): number | string | undefined {
  if (value === undefined) return undefined;
  const parsed = Number(value);
  return value.trim() !== '' && Number.isFinite(parsed) ? parsed : value;
}

function list(value: string | undefined): string[] | undefined {
  if (value === undefined) return undefined;
  return value
    .split(',')
    .map((item) => item.trim())
    .filter((item) => item.length > 0);
}

/** `delegate delegate <prompt…>`: queue a task for a background agent. */
export class DelegateTaskCommand extends EngineCommand {
  static override paths = [['delegate']];
  static override usage = Command.Usage({
    description: 'Queue a task for a background Claude Code session',
    details: 'The task runs on a runner node for this data dir (started in the background when none is up) and keeps running after this command returns. With --wait, waits for it and exits 0 when it completed, 1 when it failed or was cancelled.',
    examples: [
      ['Queue a task', '$0 delegate "npm run build" --priority P1'],
      ['Run after another task', '$0 delegate "npm test" --depends-on task-1a2b3c4d5e6f'],
      ['Wait for the result', '$0 delegate "summarise README.md" --wait'],
    ],
  });

  prompt = Option.Rest({ required: 1, name: 'prompt' });
  priority = valueOption('-p,--priority', 'P0|P1|P2', 'P0, P1 or P2 (default P2)');
  dependsOn = valueOption('--depends-on', 'ID,ID', 'Comma-separated task ids to wait for');
  continueFrom = valueOption('--continue-from', 'ID', 'A dependency whose checkpoint is added to the prompt');
  timeout = valueOption('--timeout', 'MS', 'Milliseconds before the task is killed (1000–86400000)');
  maxOutputBuffer = valueOption('--max-output-buffer', 'BYTES', 'Bytes of output before the task is killed');
  workingDirectory = valueOption('-w,--working-directory', 'DIR', 'Absolute directory to run in (default: here)');
  agent = valueOption('--agent', 'NAME', 'Agent to run (default claude)');
  model = valueOption('--model', 'NAME', 'Model for the agent');
  permissionMode = valueOption('--permission-mode', 'MODE', 'claude --permission-mode for this task');
  allowedTools = valueOption('--allowed-tools', 'TOOLS', 'Comma-separated tools the agent may use');
  disallowedTools = valueOption('--disallowed-tools', 'TOOLS', 'Comma-separated tools the agent may not use');
  maxBudgetUsd = valueOption('--max-budget-usd', 'USD', 'Stop the agent after spending this many USD');
  wait = Option.Boolean('--wait', false, { description: 'Wait for the task to finish' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the task as JSON' });

  async run(engine: Engine): Promise<number> {
    const input = Object.fromEntries(
      Object.entries({
        prompt: this.prompt.join(' '),
        priority: this.priority,
        dependsOn: list(this.dependsOn),
        continueFrom: this.continueFrom,
        timeout: numberish(this.timeout),
        maxOutputBuffer: numberish(this.maxOutputBuffer),
        workingDirectory: this.workingDirectory,
        agent: this.agent,
        model: this.model,
        permissionMode: this.permissionMode,
        allowedTools: list(this.allowedTools),
        disallowedTools: list(this.disallowedTools),
        maxBudgetUsd: numberish(this.maxBudgetUsd),
      }).filter(([, value]) => value !== undefined),
    );
    const task = await engine.tasks.delegate(input);
    await engine.ensureRunner();
    if (!this.wait) {
      if (this.json) this.printJson(task);
      else this.print(task.taskId);
      return exitCode.ok;
    }
    if (!this.json) this.note(`${task.taskId} queued`);
    const progress = this.interactive ? progressLine(this.context.stderr) : undefined;
    const [done] = await waitForTasks(engine.tasks, [task.taskId], progress ? { draw: progress.draw } : {});
    progress?.done();
    if (this.json) this.printJson(done);
    else this.print(formatTaskDetail(done!));
    return done!.status === 'completed' ? exitCode.ok : exitCode.failed;
  }
}
