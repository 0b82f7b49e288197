import { Command, Option } from 'clipanion';
import { valueOption } from '../options.js';
import { exitCode, type Engine } from '../context.js';
import { formatTaskDetail } from '../format.js';
import { list, TaskOptionsCommand } from '../task-options.js';
import { progressLine, waitForTasks } from '../wait.js';

/** `delegate delegate <prompt…>`: queue a task for a background agent. */
export class DelegateTaskCommand extends TaskOptionsCommand {
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
  dependsOn = valueOption('--depends-on', 'ID,ID', 'Comma-separated task ids to wait for');
  continueFrom = valueOption('--continue-from', 'ID', 'A dependency whose checkpoint is added to the prompt');
  wait = Option.Boolean('--wait', false, { description: 'Wait for the task to finish' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the task as JSON' });

  async run(engine: Engine): Promise<number> {
    const input = {
      prompt: this.prompt.join(' '),
      ...this.taskFields(),
      ...(this.dependsOn !== undefined ? { dependsOn: list(this.dependsOn) } : {}),
      ...(this.continueFrom !== undefined ? { continueFrom: this.continueFrom } : {}),
    };
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
