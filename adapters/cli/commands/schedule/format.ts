/** How the `delegate schedule` commands show schedules on a terminal. */
import { scheduleWhen, type ScheduleDetail, type ScheduleView } from '../../../../engine/schedule-service.js';

/** One line: what it is, when it runs next, how often it ran. */
export function scheduleSummary(view: ScheduleView): string {
  const when = scheduleWhen(view);
  return `${view.status} · ${when} · next ${view.nextRunAt ?? '-'} · ${view.runCount} run(s)`;
}

/** A table of schedules, newest first. */
export function scheduleTable(views: readonly ScheduleView[]): string {
  if (views.length === 0) return 'No schedules.';
  const rows = views.map((view) => [view.scheduleId, view.status, view.scheduleType === 'cron' ? `${view.cronExpression} (${view.timezone})` : view.afterScheduleId !== null ? `after ${view.afterScheduleId}` : view.scheduledAt ?? '', view.nextRunAt ?? '-', String(view.runCount), view.prompt.split('\n')[0]!.slice(0, 40)]);
  const header = ['ID', 'STATUS', 'WHEN', 'NEXT RUN', 'RUNS', 'PROMPT'];
  const widths = header.map((title, index) => Math.max(title.length, ...rows.map((row) => row[index]!.length)));
  return [header, ...rows].map((row) => row.map((cell, index) => cell.padEnd(widths[index]!)).join('  ').trimEnd()).join('\n');
}

/** A schedule in detail: its fields, next runs and history. */
export function scheduleDetailText(detail: ScheduleDetail): string {
  const lines = [
    `${detail.scheduleId}  ${scheduleSummary(detail)}`,
    `prompt: ${detail.prompt}`,
    `policy: ${detail.missedRunPolicy} · priority ${detail.priority} · agent ${detail.agent} · in ${detail.workingDirectory}`,
    ...(detail.maxRuns !== null ? [`max runs: ${detail.maxRuns}`] : []),
    ...(detail.expiresAt !== null ? [`expires: ${detail.expiresAt}`] : []),
    ...(detail.dailyBudgetUsd !== null ? [`daily budget: $${detail.dailyBudgetUsd.toFixed(2)}`] : []),
    ...(detail.cancelReason !== null ? [`cancelled: ${detail.cancelReason}`] : []),
    `next runs: ${detail.nextRuns.length ? detail.nextRuns.join(', ') : '-'}`,
    'history:',
    ...(detail.history.length
      ? detail.history.map((run) => `  ${run.scheduledFor}  ${run.outcome}${run.taskId ? `  ${run.taskId} (${run.taskStatus})` : ''}${run.detail ? `  ${run.detail}` : ''}`)
      : ['  (none yet)']),
  ];
  return lines.join('\n');
}
