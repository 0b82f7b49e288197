import { Command, Option } from 'clipanion';
import { UsageError } from '../../../engine/errors.js';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { formatJson, formatLimits, formatTaskDetail, formatTaskTable } from '../format.js';

/** `delegate status [id]`: one task in detail, or the newest tasks. */
export class StatusCommand extends EngineCommand {
  static override paths = [['status']];
  static override usage = Command.Usage({
    description: 'Show a task, or list tasks newest first',
    examples: [
      ['List tasks', '$0 status'],
      ['One task as JSON', '$0 status task-1a2b3c4d5e6f --json'],
      ['Only failed tasks', '$0 status --status failed'],
    ],
  });

  taskId = Option.String({ required: false, name: 'task-id' });
  status = valueOption('--status', 'STATE', 'Only tasks in this state');
  limit = valueOption('--limit', 'N', 'At most this many tasks (default 50)');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print JSON' });
  watch = Option.Boolean('--watch', false, { description: 'Redraw every second until interrupted' });

  async run(engine: Engine): Promise<number> {
    const limit = this.limit === undefined ? undefined : Number(this.limit);
    if (limit !== undefined && (!Number.isInteger(limit) || limit < 1 || limit > 10_000)) {
      throw new UsageError('invalid_input', `--limit '${this.limit}': expected a whole number from 1 to 10000`);
    }
    const render = async (): Promise<string> => {
      if (this.taskId) {
        const task = await engine.tasks.get(this.taskId);
        return this.json ? formatJson(task, 2) : formatTaskDetail(task);
      }
      // --json keeps its shape (an array of tasks); the limits are in TaskStatus and in the text.
      if (this.json) return formatJson(await engine.tasks.list({ status: this.status, limit }), 2);
      const { tasks, limits } = await engine.tasks.listWithLimits({ status: this.status, limit });
      return formatLimits(limits) + formatTaskTable(tasks);
    };
    if (!this.watch || this.json) {
      this.print(await render());
      return exitCode.ok;
    }
    const tty = (this.context.stdout as NodeJS.WriteStream).isTTY === true;
    for (;;) {
      const text = await render();
      this.context.stdout.write(tty ? `\x1b[H\x1b[2J${text}\n` : `${text}\n\n`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }
}
