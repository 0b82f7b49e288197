/**
 * How the CLI shows a wait (`delegate wait`, `delegate delegate --wait`, `delegate demo`): a live line per task
 * on a terminal, redrawn in place. The waiting itself is the engine's (TaskService.wait, driven by events).
 */
import type { WaitProgress } from '../../engine/task-waiter.js';
import type { TaskView } from '../../engine/task-service.js';
import { formatCost, formatDuration, printable, statusLabel } from './format.js';

const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A drawer of wait progress: `update` on every change, `done` once the wait is over (clears the lines). */
export interface WaitDisplay {
  update(progress: WaitProgress): void;
  done(): void;
}

const marks: Record<string, string> = { completed: '✔', failed: '✘', cancelled: '⊘', paused: '‖' };

/** Text cut to `width` columns (one character, one column: ids, states and escaped text are narrow). */
function fit(text: string, width: number): string {
  return text.length > width ? `${text.slice(0, Math.max(0, width - 1))}…` : text;
}

/** How long a task has run (or ran), for the live line. */
function elapsed(task: TaskView, now: number): string {
  if (task.durationMs !== null) return formatDuration(task.durationMs);
  return task.startedAt ? formatDuration(now - Date.parse(task.startedAt)) : '';
}

/**
 * Live lines on a terminal: one per task (state, time, cost, last output line) while they fit the screen, one
 * summary line (counts per state) when they do not. Redrawn on every change and every second (the clock moves).
 */
export function liveTaskLines(stream: NodeJS.WriteStream, startedAt = Date.now()): WaitDisplay {
  let frame = 0;
  let drawnLines = 0;
  let latest: WaitProgress | undefined;
  const lastLines = new Map<string, string>();
  const draw = (): void => {
    if (!latest) return;
    const now = Date.now();
    // A pseudo-terminal may report 0 columns and rows: then assume a common size.
    const columns = Math.max(40, stream.columns || 100);
    const rows = stream.rows || 24;
    const spin = spinner[frame++ % spinner.length]!;
    const tasks = latest.tasks;
    let lines: string[];
    if (tasks.length < rows - 1) {
      const idWidth = Math.max(...tasks.map((task) => task.taskId.length));
      const statusWidth = Math.max(...tasks.map((task) => statusLabel(task).length));
      lines = tasks.map((task) => {
        const head = `${marks[task.status] ?? spin} ${printable(task.taskId).padEnd(idWidth)}  ${statusLabel(task).padEnd(statusWidth)} ${elapsed(task, now).padStart(7)}${task.costUsd !== null ? `  ${formatCost(task.costUsd)}` : ''}`;
        const tail = lastLines.get(task.taskId);
        return fit(tail ? `${head}  ${tail}` : head, columns - 1);
      });
    } else {
      const counts = new Map<string, number>();
      for (const task of tasks) counts.set(task.status, (counts.get(task.status) ?? 0) + 1);
      const cost = tasks.reduce((sum, task) => sum + (task.costUsd ?? 0), 0);
      const parts = [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
      lines = [fit(`${spin} ${latest.finished}/${latest.total} done — ${parts} — ${formatDuration(now - startedAt)}${cost > 0 ? ` — ${formatCost(cost)}` : ''}`, columns - 1)];
    }
    // Back to the first line drawn, then every line rewritten and cleared to its end.
    const up = drawnLines > 0 ? `\x1b[${drawnLines}A` : '';
    stream.write(`${up}${lines.map((line) => `\r\x1b[2K${line}\n`).join('')}`);
    drawnLines = lines.length;
  };
  const ticker = setInterval(draw, 1000);
  ticker.unref();
  return {
    update: (progress) => {
      latest = progress;
      if (progress.lastLine !== null) lastLines.set(progress.task.taskId, progress.lastLine);
      draw();
    },
    done: () => {
      clearInterval(ticker);
      if (drawnLines > 0) stream.write(`\x1b[${drawnLines}A\r\x1b[J`);
      drawnLines = 0;
    },
  };
}
