import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { Command } from 'clipanion';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { formatCost, formatTaskTable } from '../format.js';
import { liveTaskLines } from '../wait.js';
import { resolveClaudeBin, findOnPath } from '../../agents/claude.js';

/** Small, read-only prompts: the demo must be cheap and harmless with a real claude. */
const demoTasks = [
  { prompt: 'In one sentence: what is a directed acyclic graph?', priority: 'P2' },
  { prompt: 'In one sentence: why do job queues use leases?', priority: 'P1' },
  { prompt: 'In one sentence: what does a cron expression "0 9 * * 1-5" mean?', priority: 'P2' },
  { prompt: 'Reply with the single word: ready', priority: 'P0' },
  { prompt: 'In one sentence: what is a process group in Unix?', priority: 'P2' },
] as const;

/** `delegate demo`: a small batch end to end, with progress and a summary. */
export class DemoCommand extends EngineCommand {
  static override paths = [['demo']];
  static override usage = Command.Usage({
    description: 'Run a small batch of tasks end to end and show a summary',
    details:
      'Uses claude when it is on PATH (or DELEGATE_CLAUDE_BIN), with read-only prompts in plan mode; otherwise a built-in demo agent that only echoes and says so.',
    examples: [['Run the demo', '$0 demo']],
  });

  async run(engine: Engine): Promise<number> {
    const env = this.context.env;
    const haveClaude = env.DELEGATE_CLAUDE_BIN ? true : findOnPath('claude', env.PATH) !== undefined;
    const agent = haveClaude ? 'claude' : 'demo';
    if (haveClaude) this.note(`demo: using claude at ${resolveClaudeBin(env)} (plan mode, ${demoTasks.length} one-sentence prompts)`);
    else this.note('demo: claude is not on PATH, so this runs the built-in demo agent, which only echoes the prompt.\n      Install Claude Code (npm i -g @anthropic-ai/claude-code) or set DELEGATE_CLAUDE_BIN for real work.');
    const workingDirectory = mkdtempSync(path.join(os.tmpdir(), 'delegate-demo-'));
    const ids: string[] = [];
    for (const task of demoTasks) {
      const view = await engine.tasks.delegate({ ...task, agent, workingDirectory, permissionMode: 'plan', timeout: 300_000 });
      ids.push(view.taskId);
      this.note(`queued ${view.taskId} ${task.priority} ${task.prompt}`);
    }
    await engine.ensureRunner();
    const progress = this.interactive ? liveTaskLines(this.context.stderr as NodeJS.WriteStream) : undefined;
    const { tasks: done } = await engine.tasks.wait(ids, {
      onProgress: (update) => {
        if (progress) return progress.update(update);
        // Piped: one line per state change instead of redrawn lines.
        if (update.change === 'state') this.note(`${update.task.taskId} ${update.task.status}`);
      },
    });
    progress?.done();
    const completed = done.filter((view) => view.status === 'completed').length;
    const cost = done.reduce((sum, view) => sum + (view.costUsd ?? 0), 0);
    this.print(formatTaskTable(done));
    this.print(`\n${completed}/${done.length} completed, total cost ${formatCost(cost)}. Read a task's output: delegate logs ${ids[0]}`);
    return completed === done.length ? exitCode.ok : exitCode.failed;
  }
}
