import { Command, Option } from 'clipanion';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { isFinished } from '../format.js';
import type { LogStream } from '../../../engine/task-service.js';

const streams: readonly LogStream[] = ['stdout', 'stderr', 'both'];

/** `delegate logs <id>`: the agent's output as text. */
export class LogsCommand extends EngineCommand {
  static override paths = [['logs']];
  static override usage = Command.Usage({
    description: "Print a task's output (the agent's text; --stream stderr for its stderr)",
    examples: [
      ['Last 20 lines', '$0 logs task-1a2b3c4d5e6f --tail 20'],
      ['Follow until the task ends', '$0 logs task-1a2b3c4d5e6f --follow'],
    ],
  });

  taskId = Option.String({ required: true, name: 'task-id' });
  tail = Option.String('--tail', { description: 'Only the last N lines' });
  follow = Option.Boolean('-f,--follow', false, { description: 'Keep printing new output until the task finishes' });
  stream = Option.String('--stream', { description: 'stdout (default), stderr or both' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(engine: Engine): Promise<number> {
    this.json = this.jsonOutput;
    const tail = this.tail === undefined ? undefined : Number(this.tail);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) {
      this.note(`delegate: --tail '${this.tail}': expected a whole number of lines >= 0`);
      return exitCode.usage;
    }
    if (this.stream !== undefined && !streams.includes(this.stream as LogStream)) {
      this.note(`delegate: --stream '${this.stream}': expected stdout, stderr or both`);
      return exitCode.usage;
    }
    const stream = (this.stream ?? 'stdout') as LogStream;
    const first = await engine.tasks.logs(this.taskId, { tail, stream });
    if (this.json) {
      this.printJson({ taskId: this.taskId, status: first.task.status, lines: first.lines });
      return exitCode.ok;
    }
    for (const line of first.lines) this.print(line);
    if (!this.follow) return exitCode.ok;
    let printed = (await engine.tasks.logs(this.taskId, { stream })).lines.length;
    for (;;) {
      const { task, lines } = await engine.tasks.logs(this.taskId, { stream });
      for (const line of lines.slice(printed)) this.print(line);
      printed = Math.max(printed, lines.length);
      if (isFinished(task.status)) return exitCode.ok;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
