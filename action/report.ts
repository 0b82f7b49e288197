/**
 * What a run leaves behind: the step's outputs (`conclusion`, `results`, `total_cost_usd`, `failed_count`,
 * `execution_file`), the job summary table and the execution file (SPEC §10). Everything written here has gone
 * through `redact`, so a secret an agent printed is not republished by the Action.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import * as core from '@actions/core';
import type { TaskView } from '../engine/task-service.js';

/** One task's result, as the `results` output and the execution file give it (snake_case, like the inputs). */
export interface TaskResult {
  /** The id in the `tasks` input (`prompt` for a single prompt); the task id for a task a schedule fired. */
  id: string;
  task_id: string;
  /** The schedule that fired it (tick mode); null for the input's own tasks. */
  schedule_id: string | null;
  status: string;
  fail_reason: string | null;
  error: string | null;
  exit_code: number | null;
  duration_ms: number | null;
  cost_usd: number | null;
  num_turns: number | null;
  session_id: string | null;
  depends_on: string[];
  /** The agent's final answer (cut to 2000 characters in the `results` output). */
  result: string | null;
}

/** A finished task with what the report shows of it. */
export interface FinishedTask {
  id: string;
  scheduleId: string | null;
  view: TaskView;
  /** Its dependencies by the ids of the input. */
  dependsOn: string[];
  /** The last lines of its output (checkpoint), already redacted. */
  lastLines: string[];
}

const resultOutputLimit = 2000;

/** The result of one task; `redact` applied to its free text. */
export function taskResult(task: FinishedTask, redact: (text: string) => string): TaskResult {
  const { view } = task;
  return {
    id: task.id,
    task_id: view.taskId,
    schedule_id: task.scheduleId,
    status: view.status,
    fail_reason: view.failReason,
    error: view.error === null ? null : redact(view.error),
    exit_code: view.exitCode,
    duration_ms: view.durationMs,
    cost_usd: view.costUsd,
    num_turns: view.numTurns,
    session_id: view.sessionId,
    depends_on: task.dependsOn,
    result: view.result === null ? null : redact(view.result),
  };
}

/** `1.2 s`, `3 min 4 s`, `—`. */
export function formatDuration(ms: number | null): string {
  if (ms === null) return '—';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  return `${minutes} min ${Math.round((ms % 60_000) / 1000)} s`;
}

/** `$0.0123`, `—`. */
export function formatCost(usd: number | null): string {
  return usd === null ? '—' : `$${usd.toFixed(4)}`;
}

const statusMark: Record<string, string> = { completed: '✅', failed: '❌', cancelled: '⏹️' };

function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (char) => `&#${char.charCodeAt(0)};`);
}

/** The summary's status cell: `❌ failed (exit_code)`. */
function statusText(view: TaskView): string {
  const reason = view.failReason ? ` (${view.failReason})` : '';
  return `${statusMark[view.status] ?? '•'} ${view.status}${reason}`;
}

/** Totals over the finished tasks. */
export interface RunTotals {
  conclusion: 'success' | 'failure';
  totalCostUsd: number;
  /** Tasks that failed or were cancelled themselves. */
  failedCount: number;
  /** Tasks that never ran because a dependency failed (as GitHub skips a job whose needs failed). */
  notRunCount: number;
}

const neverRan = (task: FinishedTask): boolean => task.view.failReason === 'dependency_failed';

/** Totals of a run; it succeeded when every task completed. */
export function totalsOf(tasks: readonly FinishedTask[]): RunTotals {
  const incomplete = tasks.filter((task) => task.view.status !== 'completed');
  const notRunCount = incomplete.filter(neverRan).length;
  const totalCostUsd = tasks.reduce((sum, task) => sum + (task.view.costUsd ?? 0), 0);
  return { conclusion: incomplete.length === 0 ? 'success' : 'failure', totalCostUsd, failedCount: incomplete.length - notRunCount, notRunCount };
}

/** Round a dollar sum for output: float sums print as 0.036899999999999995 otherwise. */
function dollars(usd: number): number {
  return Math.round(usd * 1e6) / 1e6;
}

/** Write the execution file, set the outputs and write the job summary. Returns the totals. */
export async function publishReport(tasks: readonly FinishedTask[], options: { executionDir: string; redact: (text: string) => string; note?: string }): Promise<RunTotals> {
  const totals = totalsOf(tasks);
  const results = tasks.map((task) => taskResult(task, options.redact));
  const executionFile = path.join(options.executionDir, 'delegate-execution.json');
  const execution = {
    conclusion: totals.conclusion,
    total_cost_usd: dollars(totals.totalCostUsd),
    failed_count: totals.failedCount,
    tasks: tasks.map((task, index) => ({ ...results[index]!, prompt: options.redact(task.view.prompt), last_lines: task.lastLines })),
  };
  writeFileSync(executionFile, `${JSON.stringify(execution, null, 2)}\n`);

  core.setOutput('conclusion', totals.conclusion);
  core.setOutput(
    'results',
    JSON.stringify(results.map((result) => ({ ...result, result: result.result && result.result.length > resultOutputLimit ? `${result.result.slice(0, resultOutputLimit)}…` : result.result }))),
  );
  core.setOutput('total_cost_usd', String(dollars(totals.totalCostUsd)));
  core.setOutput('failed_count', String(totals.failedCount));
  core.setOutput('execution_file', executionFile);

  const summary = core.summary.addHeading('delegate', 2);
  if (options.note) summary.addRaw(`<p>${escapeHtml(options.note)}</p>`, true);
  if (tasks.length === 0) {
    summary.addRaw('<p>No tasks ran.</p>', true);
  } else {
    summary.addTable([
      [
        { data: 'Task', header: true },
        { data: 'Status', header: true },
        { data: 'Duration', header: true },
        { data: 'Cost', header: true },
        { data: 'Last lines', header: true },
      ],
      ...tasks.map((task) => [
        `<code>${escapeHtml(task.id)}</code>${task.scheduleId ? `<br>${escapeHtml(task.scheduleId)}` : ''}`,
        escapeHtml(statusText(task.view)),
        formatDuration(task.view.durationMs),
        formatCost(task.view.costUsd),
        task.lastLines.slice(-5).map(escapeHtml).join('<br>') || (task.view.error ? escapeHtml(options.redact(task.view.error)) : ''),
      ]),
    ]);
    const completed = tasks.length - totals.failedCount - totals.notRunCount;
    const notRun = totals.notRunCount > 0 ? `, ${totals.notRunCount} not run (a dependency failed)` : '';
    summary.addRaw(
      `<p>${tasks.length} task${tasks.length === 1 ? '' : 's'}: ${completed} completed, ${totals.failedCount} failed${notRun} · total ${formatCost(dollars(totals.totalCostUsd))}</p>`,
      true,
    );
    for (const task of tasks) {
      if (task.lastLines.length === 0) continue;
      summary.addDetails(`${escapeHtml(task.id)}: last ${task.lastLines.length} lines`, `\n\n<pre>${task.lastLines.map(escapeHtml).join('\n')}</pre>\n\n`);
    }
  }
  // Outside GitHub (a local run) there is no summary file to write to.
  if (process.env.GITHUB_STEP_SUMMARY) await summary.write();
  else summary.emptyBuffer();
  return totals;
}
