import { Command, Option } from 'clipanion';
import { UsageError } from '../../../engine/errors.js';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { isFinished, printable } from '../format.js';
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
  tail = valueOption('--tail', 'N', 'Only the last N lines');
  follow = Option.Boolean('-f,--follow', false, { description: 'Keep printing new output until the task finishes' });
  stream = valueOption('--stream', 'stdout|stderr|both', 'stdout (default), stderr or both');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print JSON' });

  async run(engine: Engine): Promise<number> {
    const tail = this.tail === undefined ? undefined : Number(this.tail);
    if (tail !== undefined && (!Number.isInteger(tail) || tail < 0)) {
      throw new UsageError('invalid_input', `--tail '${this.tail}': expected a whole number of lines >= 0`);
    }
    if (this.stream !== undefined && !streams.includes(this.stream as LogStream)) {
      throw new UsageError('invalid_input', `--stream '${this.stream}': expected stdout, stderr or both`);
    }
    const stream = (this.stream ?? 'stdout') as LogStream;
    if (this.json || !this.follow) {
      const { task, lines } = await engine.tasks.logs(this.taskId, { tail, stream });
      if (this.json) this.printJson({ taskId: this.taskId, status: task.status, lines });
      else for (const line of lines) this.print(printable(line, { multiline: true }));
      return exitCode.ok;
    }
    // One follower from the start of the log serves the first screen (cut to --tail) and every later poll, so
    // nothing written between them is lost or printed twice, and each poll reads only what was appended.
    const follower = engine.tasks.followLogs(this.taskId, stream);
    for (let first = true; ; first = false) {
      // The status before the file: once it says finished, the run's output was all written before this read.
      const { status } = await engine.tasks.get(this.taskId);
      const finished = isFinished(status);
      let lines = await follower.read();
      // A finished run will never end its last line: print it as it is, as plain `logs` does.
      if (finished) lines.push(...follower.end());
      // slice(-0) would be every line.
      if (first && tail !== undefined) lines = tail === 0 ? [] : lines.slice(-tail);
      for (const line of lines) this.print(printable(line, { multiline: true }));
      if (finished) return exitCode.ok;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }
}
