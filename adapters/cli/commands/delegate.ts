import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Command, Option } from 'clipanion';
import { UsageError } from '../../../engine/errors.js';
import { optionalRest, valueOption } from '../options.js';
import { exitCode, type Engine } from '../context.js';
import { formatTaskDetail } from '../format.js';
import { list, TaskOptionsCommand } from '../task-options.js';
import type { TaskView } from '../../../engine/task-service.js';
import { liveTaskLines } from '../wait.js';

/** Everything a stream gives until it ends. */
async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** `delegate delegate <prompt…>`: queue a task for a background agent. */
export class DelegateTaskCommand extends TaskOptionsCommand {
  static override paths = [['delegate']];
  static override usage = Command.Usage({
    description: 'Queue a task for a background Claude Code session',
    details:
      'The prompt is the arguments joined by spaces; `-` alone reads it from stdin, and --prompt-file reads it from a file. The task runs on a runner node for this data dir (started in the background when none is up) and keeps running after this command returns. With --wait, waits for it and exits 0 when it completed, 1 when it failed or was cancelled; Ctrl-C ends the wait (exit 130), not the task.',
    examples: [
      ['Queue a task', '$0 delegate "npm run build" --priority P1'],
      ['A long prompt from a file', '$0 delegate --prompt-file task.md'],
      ['A prompt from another command', 'git diff | $0 delegate -'],
      ['Run after another task', '$0 delegate "npm test" --depends-on task-1a2b3c4d5e6f'],
      ['Wait for the result', '$0 delegate "summarise README.md" --wait'],
    ],
  });

  // Not required by clipanion: --prompt-file may give the prompt instead (checked in readPrompt).
  prompt = optionalRest('prompt');
  promptFile = valueOption('--prompt-file', 'FILE', 'Read the prompt from a file (- for stdin)');
  dependsOn = valueOption('--depends-on', 'ID,ID', 'Comma-separated task ids to wait for');
  continueFrom = valueOption('--continue-from', 'ID', 'A dependency whose checkpoint is added to the prompt');
  wait = Option.Boolean('--wait', false, { description: 'Wait for the task to finish' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the task as JSON' });

  async run(engine: Engine): Promise<number> {
    const input = {
      prompt: await this.readPrompt(),
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
    // Ctrl-C ends the wait, not the task: it runs on the runner, so say how to follow it instead of dying silently.
    const interrupt = new AbortController();
    const onSigint = (): void => interrupt.abort();
    process.once('SIGINT', onSigint);
    if (!this.json) this.note(`${task.taskId} queued`);
    const progress = this.interactive ? liveTaskLines(this.context.stderr as NodeJS.WriteStream) : undefined;
    let done: TaskView;
    try {
      [done] = (await engine.tasks.wait([task.taskId], { signal: interrupt.signal, onProgress: progress?.update })).tasks as [TaskView];
    } catch (error) {
      if (!interrupt.signal.aborted) throw error;
      progress?.done();
      this.note(`${task.taskId} keeps running in the background; follow it with: delegate logs ${task.taskId} --follow`);
      if (this.json) this.printJson(await engine.tasks.get(task.taskId));
      return exitCode.interrupted;
    } finally {
      process.off('SIGINT', onSigint);
    }
    progress?.done();
    if (this.json) this.printJson(done);
    else this.print(formatTaskDetail(done));
    return done.status === 'completed' ? exitCode.ok : exitCode.failed;
  }
  /** The prompt from the arguments, stdin (`-`) or --prompt-file; an empty one is left to the engine's check. */
  private async readPrompt(): Promise<string> {
    const fromStdin = this.prompt.length === 1 && this.prompt[0] === '-';
    if (this.promptFile !== undefined && this.prompt.length > 0) {
      throw new UsageError('invalid_input', 'prompt: give it as arguments, - (stdin) or --prompt-file, not more than one');
    }
    if (this.promptFile === undefined && this.prompt.length === 0) {
      throw new UsageError('invalid_input', 'prompt: missing; give it as arguments, - to read stdin, or --prompt-file FILE');
    }
    if (!fromStdin && this.promptFile === undefined) return this.prompt.join(' ');
    let text: string;
    if (fromStdin || this.promptFile === '-') {
      if ((this.context.stdin as NodeJS.ReadStream).isTTY) this.note('reading the prompt from stdin (end it with Ctrl-D)');
      text = await readAll(this.context.stdin);
    } else {
      const file = path.resolve(this.context.cwd, this.promptFile!);
      const shown = `--prompt-file '${this.promptFile}'${file === this.promptFile ? '' : ` (${file})`}`;
      try {
        text = await readFile(file, 'utf8');
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        throw new UsageError('invalid_input', code === 'ENOENT' ? `${shown}: no such file` : `${shown}: cannot read it (${code ?? String(error)})`);
      }
    }
    // A file's final newline is not part of the prompt (as with $(cat file) in a shell).
    return text.replace(/\s+$/, '');
  }
}
