/**
 * Plain-text rendering of tasks for the terminal. Every text that came from a user or an agent goes through
 * `printable`, so a stored escape sequence is shown, not obeyed.
 */
import { printable } from '../../engine/control-characters.js';
import type { TokenCounts } from '../../engine/agent.js';
import type { AgentStop } from '../../engine/orphans.js';
import type { LimitsView, TaskView } from '../../engine/task-service.js';
import type { UsageSummary, UsageTotals } from '../../engine/usage-service.js';

export { printable };

/**
 * A value as one JSON document. JSON.stringify escapes C0 but leaves DEL, C1 (U+009B is CSI to some terminals)
 * and U+2028/U+2029 raw; they are written as `\u` escapes, so the text parses to the same value.
 */
export function formatJson(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(/[\u007f-\u009f\u2028\u2029]/g, (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `1.2s`, `3m 04s`, `2h 01m`. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '-';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const minutes = Math.floor(ms / 60_000);
  if (minutes < 60) return `${minutes}m ${String(Math.floor((ms % 60_000) / 1000)).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h ${String(minutes % 60).padStart(2, '0')}m`;
}

/** `$0.0123`, or `-` when unknown. */
export function formatCost(usd: number | null): string {
  return usd === null ? '-' : `$${usd.toFixed(4)}`;
}

/** A count with thousands separators, the same on every machine: `14,208`. */
export function formatCount(count: number): string {
  return count.toLocaleString('en-US');
}

/** `12 in, 42 out, 1,536 cache write, 14,208 cache read`. */
export function formatTokens(tokens: TokenCounts): string {
  return `${formatCount(tokens.input)} in, ${formatCount(tokens.output)} out, ${formatCount(tokens.cacheCreation)} cache write, ${formatCount(tokens.cacheRead)} cache read`;
}

function oneLine(text: string, width: number): string {
  const flat = printable(text.replace(/\s+/g, ' ').trim());
  return flat.length > width ? `${flat.slice(0, width - 1)}…` : flat;
}

/** The status word with its fail reason, e.g. `failed (timeout)`, or `ready (held)` for a task held back by a limit. */
export function statusLabel(task: TaskView): string {
  if (task.failReason) return `${task.status} (${task.failReason})`;
  return task.heldUntil ? `${task.status} (held)` : task.status;
}

/** Lines about usage limits and budgets to put above a task list; empty when none is set. */
export function formatLimits(limits: LimitsView): string {
  return limits.lines.map((line) => `${printable(line)}\n`).join('') + (limits.lines.length ? '\n' : '');
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
  ].map((cell) => printable(cell)));
  const header = ['ID', 'STATUS', 'PRI', 'TIME', 'COST', 'PROMPT'];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  const line = (cells: string[]): string => cells.map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  ');
  return [line(header), ...rows.map(line)].join('\n');
}

/** Everything about one task. */
export function formatTaskDetail(task: TaskView): string {
  const lines: Array<[string, string | null]> = [
    ['status', statusLabel(task)],
    ['note', task.note],
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
    ['held until', task.heldUntil],
    ['waits for', task.waitingFor],
    ['attempt', task.attempt > 0 ? String(task.attempt) : null],
    ['exit code', task.exitCode === null ? null : String(task.exitCode)],
    ['cost', task.costUsd === null ? null : formatCost(task.costUsd)],
    ['tokens', task.tokens === null ? null : formatTokens(task.tokens)],
    ['model', task.model],
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
  // Every value is a row's text: escaped, only the error keeps its own lines.
  return [printable(task.taskId), ...shown.map(([label, value]) => `  ${`${label}:`.padEnd(13)}${printable(value, { multiline: label === 'error' })}`)].join('\n');
}

/** Terminal states. */
export function isFinished(status: string): boolean {
  return status === 'completed' || status === 'failed' || status === 'cancelled';
}

/** What the reply says about the agent of a cancelled task. */
export function agentStopText(agentStop: AgentStop | null): string {
  switch (agentStop) {
    case 'runner':
      return 'Its runner kills its agent and every process the agent started.';
    case 'here':
      return 'Its runner had died; its agent and every process it started were killed here.';
    case 'requested':
      return 'Its agent runs on another host; that host stops it (its runner, or the recovery sweep once the lease lapses).';
    case null:
      return '';
  }
}

/** A usage summary as a table: one row per day, agent or schedule, then the total. */
export function formatUsage(summary: UsageSummary): string {
  const period = summary.since ? `of runs that ended since ${summary.since}` : 'of all runs on record';
  const zone = summary.by === 'day' ? ` (days in ${summary.timeZone})` : '';
  const cells = (label: string, totals: UsageTotals): string[] => [
    printable(label),
    formatCost(totals.costUsd),
    formatCount(totals.tokens.input),
    formatCount(totals.tokens.output),
    formatCount(totals.tokens.cacheCreation),
    formatCount(totals.tokens.cacheRead),
    formatCount(totals.turns),
    formatCount(totals.runs),
  ];
  const first = { day: 'DAY', agent: 'AGENT', schedule: 'SCHEDULE' }[summary.by ?? 'day'];
  const header = [summary.by ? first : '', 'COST', 'INPUT', 'OUTPUT', 'CACHE WRITE', 'CACHE READ', 'TURNS', 'RUNS'];
  const rows = [...summary.groups.map((group) => cells(group.key ?? '(no schedule)', group)), cells('total', summary.total)];
  const widths = header.map((title, column) => Math.max(title.length, ...rows.map((row) => row[column]!.length)));
  // Text left, numbers right, so digits line up.
  const line = (row: string[]): string => row.map((cell, column) => (column === 0 ? cell.padEnd(widths[column]!) : cell.padStart(widths[column]!))).join('  ').trimEnd();
  return [`Usage ${period}${zone}`, line(header), ...rows.map(line)].join('\n');
}
