import { Command, Option } from 'clipanion';
import { UsageError } from '../../../engine/errors.js';
import type { WaitProgress } from '../../../engine/task-waiter.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { formatDuration, formatTaskTable, isFinished } from '../format.js';
import { valueOption } from '../options.js';
import { liveTaskLines } from '../wait.js';

/** Bounds of --timeout: the longest task timeout is a day, so a wait need not be longer. */
const timeoutLimits = { min: 1000, max: 86_400_000 } as const;

/** `delegate wait <id…>`: block until tasks finish, with a live line per task on a terminal. */
export class WaitCommand extends EngineCommand {
  static override paths = [['wait']];
  static override usage = Command.Usage({
    description: 'Wait for tasks to finish, showing a live line per task on a terminal',
    details:
      'Exits 0 when every task completed; 1 when any failed or was cancelled, or when --timeout passed first (the tasks keep running); 2 on a usage error. Piped, it prints nothing until the end; --json prints one document {tasks, timedOut}. Ctrl-C ends the wait, not the tasks (exit 130).',
    examples: [
      ['Wait for two tasks', '$0 wait task-1a2b3c4d5e6f task-6f5e4d3c2b1a'],
      ['At most ten minutes, as JSON', '$0 wait task-1a2b3c4d5e6f --timeout 600000 --json'],
    ],
  });

  taskIds = Option.Rest({ required: 1, name: 'task-id' });
  timeout = valueOption('--timeout', 'MS', 'Stop waiting after this many milliseconds (exit 1); default: until they finish');
  jsonOutput = Option.Boolean('--json', false, { description: 'Print {tasks, timedOut} as JSON' });

  async run(engine: Engine): Promise<number> {
    const timeoutMs = this.timeout === undefined ? undefined : Number(this.timeout);
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < timeoutLimits.min || timeoutMs > timeoutLimits.max)) {
      throw new UsageError('invalid_input', `--timeout '${this.timeout}': expected a whole number of milliseconds from ${timeoutLimits.min} to ${timeoutLimits.max}`);
    }
    // Ctrl-C ends the wait, not the tasks: they run on the runner.
    const interrupt = new AbortController();
    const onSigint = (): void => interrupt.abort();
    process.once('SIGINT', onSigint);
    const display = this.interactive ? liveTaskLines(this.context.stderr as NodeJS.WriteStream) : undefined;
    // A task that is not finished needs a runner: start one if none is up (as the commands that queue tasks do).
    let runnerCheck: Promise<void> | undefined;
    const onProgress = (progress: WaitProgress): void => {
      if (!runnerCheck && !isFinished(progress.task.status)) runnerCheck = engine.ensureRunner().catch((error: unknown) => this.note(`delegate: could not start a runner: ${String(error)}`));
      display?.update(progress);
    };
    const startedAt = Date.now();
    try {
      const { tasks, timedOut } = await engine.tasks.wait(this.taskIds, { field: 'task-id', timeoutMs, signal: interrupt.signal, onProgress });
      display?.done();
      if (this.json) this.printJson({ tasks, timedOut });
      else {
        this.print(formatTaskTable(tasks));
        if (timedOut) this.note(`timed out after ${formatDuration(Date.now() - startedAt)}: ${tasks.filter((task) => isFinished(task.status)).length} of ${tasks.length} finished; the others keep running`);
      }
      return !timedOut && tasks.every((task) => task.status === 'completed') ? exitCode.ok : exitCode.failed;
    } catch (error) {
      display?.done();
      if (!interrupt.signal.aborted) throw error;
      this.note('the tasks keep running in the background; see them with: delegate status');
      if (this.json) this.printJson({ tasks: await Promise.all(this.taskIds.map((id) => engine.tasks.get(id))), timedOut: false, interrupted: true });
      return exitCode.interrupted;
    } finally {
      process.off('SIGINT', onSigint);
      await runnerCheck;
    }
  }
}
