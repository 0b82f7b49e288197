/** Plain-text rendering of tasks for the terminal. */
import type { TaskView } from '../../engine/task-service.js';

/** `1.2s`, `3m 04s`, `2h 01m`. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m ${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

export function formatCost(usd: number | null): string {
  return usd === null ? '-' : `$${usd.toFixed(4)}`;
}

function oneLine(text: string, width: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

/** The status word with its fail reason, e.g. `failed (timeout)`. */
export function statusLabel(task: TaskView): string {
  return task.failReason ? `${task.status} (${task.failReason})` : task.status;
}

/** A table of tasks, newest first. */
export function formatTaskTable(tasks: readonly TaskView[], now = Date.now()): string {
  if (tasks.length === 0) return 'no tasks';
  const rows = tasks.map((task) => [
    task.taskId,
    statusLabel(task),
    task.priority,
    formatDuration(task.durationMs ?? (task.status === 'running' && task.startedAt ? now - Date.parse(task.startedAt) : null)),
    formatCost(task.costUsd),
    oneLine(task.prompt, 50),
  ]);
  const header = ['ID', 'STATUS', 'PRI', 'TIME', 'COST', 'PROMPT'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** Everything about one task. */
export function formatTaskDetail(task: TaskView): string {
  const lines: Array<[string, string | null]> = [
    ['status', statusLabel(task)],
    ['reason', task.cancelReason],
    ['priority', task.priority],
    ['agent', task.agent],
    ['prompt', oneLine(task.prompt, 200)],
    ['directory', task.workingDirectory],
    ['permissions', task.permissionMode],
    ['created', task.createdAt],
    ['started', task.startedAt],
    ['finished', task.completedAt],
    ['duration', task.durationMs === null ? null : formatDuration(task.durationMs)],
    ['resumes at', task.resumeAt],
    ['attempt', task.attempt > 0 ? String(task.attempt) : null],
    ['exit code', task.exitCode === null ? null : String(task.exitCode)],
    ['cost', task.costUsd === null ? null : formatCost(task.costUsd)],
    ['turns', task.numTurns === null ? null : String(task.numTurns)],
    ['session', task.sessionId],
    ['error', task.error],
    ['depends on', task.dependsOn.length ? task.dependsOn.join(', ') : null],
    ['dependants', task.dependants.length ? task.dependants.join(', ') : null],
    ['continues', task.continueFrom],
    ['resumes', task.parentTaskId],
    ['retries', task.retryOf],
    ['result', task.result === null ? null : oneLine(task.result, 300)],
  ];
  const shown = lines.filter((entry): entry is [string, string] => entry[1] !== null);
  return [task.taskId, ...shown.map(([label, value]) => `  ${`${label}:`.padEnd(12)}${value}`)].join('\n');
}

/** Terminal states. */
export function isFinished(status: string): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}
