/**
 * The GitHub Action (SPEC §10): one workflow step runs a prompt or a DAG of tasks with Claude on the checked-out
 * repository. The step is a front door and a runner node in one process: it queues the tasks through the
 * engine's TaskService, runs them on an in-process Runner against an embedded database in RUNNER_TEMP (or the
 * shared `database_url`), follows them on the event bus, and stops once its tasks are done. With
 * `database_url` the same run is a heartbeat for the schedules stored there: the runner's timer loop fires the
 * due ones on start (under their missed-run policies), and the step waits for the tasks they started too.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as core from '@actions/core';
// Registers the built-in agents before any input names one.
import { agentsModuleUrl } from '../adapters/agents/index.js';
import { findOnPath } from '../adapters/agents/claude.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig, type LogLevel } from '../engine/config.js';
import { isStoreError, isUsageError } from '../engine/errors.js';
import { EventBus, type EngineEvent } from '../engine/events.js';
import { createLogger } from '../engine/logger.js';
import { Runner } from '../engine/runner.js';
import { ScheduleService } from '../engine/schedule-service.js';
import { openStore, type Store } from '../engine/store/store.js';
import { TaskService, type TaskView } from '../engine/task-service.js';
import { delegateTaskSchema, parseInput } from '../engine/task-input.js';
import { ActionInputError } from './action-input-error.js';
import { readInputs, type ActionInputs } from './inputs.js';
import { publishReport, formatCost, formatDuration, type FinishedTask } from './report.js';

const finished = new Set(['completed', 'failed', 'cancelled']);

/** How often task states are read from the database besides the event bus (a task another runner runs is not on it). */
const checkEveryMs = 1000;

/** Most output lines printed in a task's log group; the rest are in its log file. */
const groupLineLimit = 2000;

/** A task this step waits for. */
interface WatchedTask {
  /** Its id in the input, or its task id when a schedule fired it. */
  id: string;
  scheduleId: string | null;
  dependsOn: string[];
}

/** Replaces every secret value with `***` (GitHub masks its log; this covers what the Action writes itself). */
function redactor(secrets: readonly string[]): (text: string) => string {
  const values = [...new Set(secrets)].filter((secret) => secret.length >= 4).sort((a, b) => b.length - a.length);
  return (text) => values.reduce((out, secret) => out.split(secret).join('***'), text);
}

function logLevel(): LogLevel {
  const level = process.env.LOG_LEVEL?.trim();
  if (level === 'debug' || level === 'info' || level === 'warn' || level === 'error') return level;
  return core.isDebug() ? 'debug' : 'warn';
}

/**
 * The claude binary agents run: the input's, DELEGATE_CLAUDE_BIN, claude on PATH, or else Claude Code installed
 * with npm into the runner's temp dir (a fresh GitHub runner has none).
 */
function resolveClaude(inputs: ActionInputs, toolDir: string): string {
  const given = inputs.claudeExecutable ?? process.env.DELEGATE_CLAUDE_BIN ?? findOnPath('claude', process.env.PATH);
  if (given) return given;
  const prefix = path.join(toolDir, 'claude-code');
  const bin = path.join(prefix, 'node_modules', '.bin', 'claude');
  if (!existsSync(bin)) {
    core.info(`Claude Code is not on PATH: installing @anthropic-ai/claude-code@${inputs.claudeCodeVersion} into ${prefix}`);
    const installed = spawnSync('npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--loglevel=error', `@anthropic-ai/claude-code@${inputs.claudeCodeVersion}`], {
      stdio: ['ignore', 'inherit', 'inherit'],
    });
    if (installed.status !== 0 || !existsSync(bin)) {
      throw new ActionInputError('path_to_claude_code_executable', 'path_to_claude_code_executable: no claude on PATH and installing Claude Code with npm failed; install it in an earlier step or give its path');
    }
  }
  return bin;
}

/** Print a finished task's output in its own log group, with workflow commands switched off inside it. */
function printTaskGroup(task: WatchedTask, view: TaskView, lines: string[], redact: (text: string) => string): void {
  const reason = view.failReason ? ` (${view.failReason})` : '';
  core.startGroup(`${task.id}: ${view.status}${reason} · ${formatDuration(view.durationMs)} · ${formatCost(view.costUsd)}`);
  // An agent's output is untrusted: `::set-output`/`::add-mask::` lines in it must not be obeyed by the runner.
  const token = randomBytes(8).toString('hex');
  process.stdout.write(`::stop-commands::${token}\n`);
  const shown = lines.length > groupLineLimit ? lines.slice(-groupLineLimit) : lines;
  if (shown.length < lines.length) process.stdout.write(`… ${lines.length - shown.length} earlier lines not shown\n`);
  for (const line of shown) process.stdout.write(`${redact(line)}\n`);
  if (view.error) process.stdout.write(`error: ${redact(view.error)}\n`);
  process.stdout.write(`::${token}::\n`);
  core.endGroup();
}

/** Schedules due when the step started (tick mode): the step waits until each has fired and adds its tasks. */
async function dueSchedules(schedules: ScheduleService, now: number): Promise<string[]> {
  const active = await schedules.list({ status: 'active', limit: 1000 });
  return active.filter((schedule) => schedule.nextRunAt !== null && Date.parse(schedule.nextRunAt) <= now).map((schedule) => schedule.scheduleId);
}

/** Run the Action; reports every outcome through @actions/core and never throws for a bad input or a failed task. */
export async function run(): Promise<void> {
  let inputs: ActionInputs;
  try {
    inputs = readInputs();
    // Every task's fields are checked now, so a bad one fails the step before the database is touched.
    for (const task of inputs.tasks) {
      try {
        parseInput(delegateTaskSchema, taskFields(task, inputs));
      } catch (error) {
        if (isUsageError(error)) throw new ActionInputError(task.label === 'prompt' ? 'prompt' : 'tasks', `${task.label === 'prompt' ? '' : `${task.label}.`}${error.message}`);
        throw error;
      }
    }
  } catch (error) {
    if (error instanceof ActionInputError) {
      core.setFailed(error.message);
      return;
    }
    throw error;
  }
  const redact = redactor(inputs.secrets);
  const runnerTemp = process.env.RUNNER_TEMP || os.tmpdir();
  const dataDir = path.join(runnerTemp, 'delegate');
  mkdirSync(dataDir, { recursive: true });

  let claudeBin: string;
  try {
    claudeBin = resolveClaude(inputs, runnerTemp);
  } catch (error) {
    if (error instanceof ActionInputError) {
      core.setFailed(error.message);
      return;
    }
    throw error;
  }

  const engineEnv: NodeJS.ProcessEnv = {
    ...process.env,
    DELEGATE_DATA_DIR: dataDir,
    // This process stops its runner itself once its tasks are done; nothing else starts or idles one out.
    DELEGATE_IDLE_EXIT: '0',
    DELEGATE_AUTOSTART: '0',
    LOG_LEVEL: logLevel(),
    DELEGATE_CLAUDE_BIN: claudeBin,
    ...(inputs.databaseUrl ? { DELEGATE_DATABASE_URL: inputs.databaseUrl } : { DELEGATE_DATABASE_URL: '' }),
    ...(inputs.databaseToken ? { DELEGATE_DATABASE_TOKEN: inputs.databaseToken } : {}),
    ...(inputs.taskTimeoutMs !== undefined ? { TASK_TIMEOUT: String(inputs.taskTimeoutMs) } : {}),
    ...(inputs.maxConcurrency !== undefined ? { DELEGATE_MAX_WORKERS: String(inputs.maxConcurrency) } : {}),
  };
  // The agents' environment: the launcher passes on only its safelist, which includes ANTHROPIC_* and CLAUDE_*.
  const agentEnv: NodeJS.ProcessEnv = {
    ...engineEnv,
    ...(inputs.anthropicApiKey ? { ANTHROPIC_API_KEY: inputs.anthropicApiKey } : {}),
    ...(inputs.claudeCodeOauthToken ? { CLAUDE_CODE_OAUTH_TOKEN: inputs.claudeCodeOauthToken } : {}),
  };

  let store: Store | undefined;
  let runner: Runner | undefined;
  try {
    const config = loadConfig(engineEnv);
    store = await openStore(config.databaseUrl, { authToken: config.databaseToken });
    const bus = new EventBus();
    const taskService = new TaskService(store, config, systemClock, inputs.workingDirectory, { bus });
    const scheduleService = new ScheduleService(store, config, systemClock, inputs.workingDirectory, taskService, bus);
    const startedAt = systemClock.now();
    const tick = inputs.databaseUrl !== undefined;
    const pendingSchedules = new Set(tick ? await dueSchedules(scheduleService, startedAt) : []);

    const watched = new Map<string, WatchedTask>();
    // Until the input's tasks are queued, their own events must not be taken for tasks a schedule started.
    let submitted = false;
    let wake: () => void = () => undefined;
    bus.subscribe((event: EngineEvent) => {
      if (event.kind !== 'task') return;
      // A task queued in this process that is not one of the input's was started by a schedule this runner fired.
      if (event.type === 'task:queued' && !watched.has(event.actorId) && submitted) watched.set(event.actorId, { id: event.actorId, scheduleId: null, dependsOn: [] });
      const task = watched.get(event.actorId);
      if (!task) return;
      if (event.type === 'task:running') core.info(`▶ ${task.id}: running${event.attempt && event.attempt > 1 ? ` (attempt ${event.attempt})` : ''}`);
      if (event.type === 'task:paused') core.info(`⏸ ${task.id}: paused${event.detail ? `: ${redact(event.detail)}` : ''}`);
      if (finished.has(event.to)) wake();
    });

    const views = await taskService.delegateGraph(
      inputs.tasks.map((task) => ({ key: task.id, label: task.label, input: taskFields(task, inputs), dependsOn: task.dependsOn, continueFrom: task.continueFrom })),
    );
    // Reported in the order of the input, not the dependency order they were queued in.
    const inInputOrder = inputs.tasks.map((task, index) => ({ task, view: views[index]! })).sort((a, b) => a.task.index - b.task.index);
    for (const { task, view } of inInputOrder) watched.set(view.taskId, { id: task.id, scheduleId: null, dependsOn: task.dependsOn });
    submitted = true;
    if (views.length > 0) core.info(`Queued ${views.length} task${views.length === 1 ? '' : 's'}: ${inputs.tasks.map((task) => task.id).join(', ')}`);
    if (pendingSchedules.size > 0) core.info(`Due schedules: ${[...pendingSchedules].join(', ')}`);

    const started = await Runner.start({
      config,
      logger: createLogger('runner', config.logLevel),
      autostarted: false,
      env: agentEnv,
      agentModules: [agentsModuleUrl()],
      bus,
    });
    if (!('runner' in started)) throw new Error('a runner was already registered for this node');
    runner = started.runner;

    // Cancelling the workflow run signals this process: stop the agents (they run in their own process groups) and report.
    let stopping = false;
    const onSignal = (signal: string): void => {
      if (stopping) return;
      stopping = true;
      core.warning(`${signal}: cancelling the unfinished tasks`);
      for (const id of watched.keys()) void taskService.cancel(id, `workflow step got ${signal}`).catch(() => undefined);
      wake();
    };
    process.once('SIGINT', () => onSignal('SIGINT'));
    process.once('SIGTERM', () => onSignal('SIGTERM'));

    const reported = new Map<string, FinishedTask>();
    for (;;) {
      for (const scheduleId of [...pendingSchedules]) {
        const schedule = await scheduleService.get(scheduleId, 20);
        const fired = schedule.history.filter((run) => Date.parse(run.firedAt) >= startedAt);
        const stillDue = schedule.status === 'active' && schedule.nextRunAt !== null && Date.parse(schedule.nextRunAt) <= startedAt;
        for (const run of fired) {
          if (run.taskId === null) continue;
          watched.set(run.taskId, { id: run.taskId, scheduleId, dependsOn: [] });
        }
        if (!stillDue) pendingSchedules.delete(scheduleId);
      }
      for (const [taskId, task] of watched) {
        if (reported.has(taskId)) continue;
        const view = await taskService.get(taskId);
        if (!finished.has(view.status)) continue;
        const [{ lines }, checkpoint] = await Promise.all([taskService.logs(taskId), taskService.checkpoint(taskId)]);
        const lastLines = (checkpoint?.lastLines ?? lines.slice(-50)).map(redact);
        printTaskGroup(task, view, lines.length > 0 ? lines : lastLines, redact);
        reported.set(taskId, { id: task.id, scheduleId: task.scheduleId, view, dependsOn: task.dependsOn, lastLines });
      }
      if (pendingSchedules.size === 0 && reported.size === watched.size) break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, checkEveryMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }

    // Input order first, then what schedules fired, in the order they finished.
    const order = [...watched.keys()];
    const results = order.map((id) => reported.get(id)!);
    const totals = await publishReport(results, {
      executionDir: runnerTemp,
      redact,
      ...(tick ? { note: `Ran the due schedules of ${inputs.databaseUrl!.startsWith('file:') ? inputs.databaseUrl : 'the shared database'} as well.` } : {}),
    });
    if (totals.conclusion === 'failure') {
      const incomplete = results.filter((task) => task.view.status !== 'completed').map((task) => `${task.id} (${task.view.failReason ?? task.view.status})`);
      core.setFailed(`${incomplete.length} of ${results.length} task${results.length === 1 ? '' : 's'} did not complete: ${incomplete.join(', ')}`);
    }
  } catch (error) {
    if (isUsageError(error) || isStoreError(error)) core.setFailed(redact(error.message));
    else core.setFailed(redact(error instanceof Error ? (error.stack ?? error.message) : String(error)));
  } finally {
    if (runner) await runner.shutdown('the step is done');
    await store?.close().catch(() => undefined);
  }
}

/** DelegateTask fields of one task of the input (dependencies are added by delegateGraph). */
function taskFields(task: ActionInputs['tasks'][number], inputs: ActionInputs): Record<string, unknown> {
  return {
    prompt: task.prompt,
    workingDirectory: inputs.workingDirectory,
    ...(task.priority !== undefined ? { priority: task.priority } : {}),
    ...(task.agent !== undefined ? { agent: task.agent } : {}),
    ...(inputs.taskTimeoutMs !== undefined ? { timeout: inputs.taskTimeoutMs } : {}),
    ...inputs.claudeFields,
  };
}
