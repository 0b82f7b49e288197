/** Waiting for tasks to finish, with a one-line progress display on a terminal (quiet when piped). */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TaskService, TaskView } from '../../engine/task-service.js';
import { formatCost, formatDuration, isFinished } from './format.js';

/**
 * Poll until every task is finished; `draw` receives the latest views on each poll. When `signal` aborts, it
 * rejects with the signal's reason once no read is in flight, so the caller may close the store at once.
 */
export async function waitForTasks(
  tasks: TaskService,
  ids: readonly string[],
  options: { pollMs?: number; draw?: (views: TaskView[]) => void; signal?: AbortSignal } = {},
): Promise<TaskView[]> {
  const pollMs = options.pollMs ?? 200;
  for (;;) {
    options.signal?.throwIfAborted();
    const views = await Promise.all(ids.map((id) => tasks.get(id)));
    options.draw?.(views);
    if (views.every((view) => isFinished(view.status))) return views;
    await sleep(pollMs, undefined, options.signal ? { signal: options.signal } : {});
  }
}

const spinner = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

/** A progress line drawer for a TTY stream: counts per state, elapsed time and cost so far. */
export function progressLine(stream: NodeJS.WritableStream, startedAt = Date.now()): { draw: (views: TaskView[]) => void; done: () => void } {
  let frame = 0;
  let drawn = false;
  return {
    draw: (views) => {
      const counts = new Map<string, number>();
      for (const view of views) counts.set(view.status, (counts.get(view.status) ?? 0) + 1);
      const cost = views.reduce((sum, view) => sum + (view.costUsd ?? 0), 0);
      const parts = [...counts].map(([status, count]) => `${count} ${status}`).join(', ');
      const finished = views.filter((view) => isFinished(view.status)).length;
      stream.write(
        `\r\x1b[2K${spinner[frame++ % spinner.length]} ${finished}/${views.length} done — ${parts} — ${formatDuration(Date.now() - startedAt)}${cost > 0 ? ` — ${formatCost(cost)}` : ''}`,
      );
      drawn = true;
    },
    done: () => {
      if (drawn) stream.write('\r\x1b[2K');
    },
  };
}
