/**
 * The engine API the front doors (CLI, MCP, Action) share: submit, inspect, cancel and read the logs of tasks.
 * Front doors stay thin: they parse their own syntax, call these verbs and render the result. A front door
 * never runs an agent; a runner node (engine/runner) claims the work from the database.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Clock } from './clock.js';
import type { DelegateConfig } from './config.js';
import { agentByName, agentNames, type TokenCounts } from './agent.js';
import { ClaimGate, holdOnTask, limitLines, readLimits, type BudgetStatus, type ClaimLimits } from './claim-holds.js';
import { printable } from './control-characters.js';
import { UsageError } from './errors.js';
import { TaskOutputFollower, type OutputFollower } from './log-follower.js';
import { taskLogPaths } from './pool/protocol.js';
import type { Checkpoint, NewTask, NewTaskNode, NewWorktree, Store, SubmitDecider, TaskLinks, TaskRecord } from './store/store.js';
import { finishedStates, unfinishedStates } from './store/store.js';
import { decideSubmit } from './task-steps.js';
import { TaskActors } from './task-actors.js';
import { frontDoorEffects } from './task-effects.js';
import { EventBus } from './events.js';
import { waitForTasks, type WaitOptions, type WaitResult } from './task-waiter.js';
import { LocalOrphans, type AgentStop } from './orphans.js';
import { createLogger } from './logger.js';
import { taskLimits } from './config.js';
import { createWorktree, discardWorktree, worktreeBranch } from './worktrees.js';
import { additionalContextSchema, cancelReasonSchema, checkWorkingDirectory, delegateTaskSchema, parseInput, shown, type DelegateTaskInput } from './task-input.js';

/** A task as front doors show it (times in ISO 8601 UTC). */
/** Which tasks a listing shows: one status (default all), newest first, at most `limit` (default 50). */
export interface TaskListFilter {
  status?: string | undefined;
  limit?: number | undefined;
}

export interface TaskView {
  taskId: string;
  status: string;
  priority: string;
  prompt: string;
  agent: string;
  workingDirectory: string;
  /** The git worktree it runs in (`worktree: true`), and that worktree's branch; null when it runs in place. */
  worktreePath: string | null;
  worktreeBranch: string | null;
  /** The claude --permission-mode the task runs with. */
  permissionMode: string | null;
  failReason: string | null;
  error: string | null;
  /** Why it was cancelled, as `cancel --reason` / CancelTask's `reason` gave it. */
  cancelReason: string | null;
  exitCode: number | null;
  attempt: number;
  createdAt: string;
  startedAt: string | null;
  completedAt: string | null;
  durationMs: number | null;
  /** When a task paused by a usage limit goes back to the queue. */
  resumeAt: string | null;
  /** For a ready task held back by a usage limit or a spent budget: when it may start (ISO 8601 UTC). */
  heldUntil: string | null;
  /** What a paused or held task waits for, in one line (a usage limit, a daily budget). */
  waitingFor: string | null;
  /** Cost, turns and tokens summed over every run of the task (an interrupted run costs money too). */
  costUsd: number | null;
  sessionId: string | null;
  numTurns: number | null;
  tokens: TokenCounts | null;
  /** The model the agent reported running, else the one the task asked for; null when neither is known. */
  model: string | null;
  result: string | null;
  dependsOn: string[];
  dependants: string[];
  /** What a status alone would not tell, e.g. that the task's runner died while its agent runs on. */
  note: string | null;
  continueFrom: string | null;
  parentTaskId: string | null;
  retryOf: string | null;
}

/** Usage limits and budgets in force, as `delegate status` and TaskStatus show them. */
export interface LimitsView {
  /** Usage-limit holds in force: no task of the agent on the account starts before `until`. */
  holds: Array<{ agent: string; account: string; until: string; limitType: string | null; taskId: string | null }>;
  /** Budgets that are set, with today's spend (the runner's local day). */
  budgets: BudgetStatus[];
  /** When the budgets' day ends (ISO 8601 UTC). */
  dayEndsAt: string;
  /** One line per hold and budget, warnings included. */
  lines: string[];
}

/** Where a new task comes from: a retry, or a resume of a finished task. */
export interface Lineage {
  parentTaskId?: string | null;
  retryOf?: string | null;
  additionalContext?: string | null;
  forkSessionId?: string | null;
}

/** What a cancel did: the task, and every task that failed with `dependency_failed` because of it (transitively). */
export interface CancelOutcome {
  task: CancelView;
  failedDependants: string[];
}

/** One task of a graph queued by `delegateGraph`: DelegateTask input whose dependencies are named by entry keys. */
export interface TaskGraphEntry {
  /** The name the graph's other entries use for this one. */
  key: string;
  /** How errors name this entry in the caller's input, e.g. `tasks[2]`. */
  label: string;
  /** DelegateTask fields other than dependsOn and continueFrom. */
  input: Record<string, unknown>;
  /** Keys of earlier entries this one waits for. */
  dependsOn: readonly string[];
  /** The key of the entry (also in dependsOn) whose checkpoint this one continues from. */
  continueFrom?: string | undefined;
}

/** Which output of a task to read. */
export type LogStream = 'stdout' | 'stderr' | 'both';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** How the launcher marks stderr lines in a task's text log. */
const stderrMark = '[stderr] ';

/** A new random task id, `task-` plus 12 hex digits. */
export function newTaskId(): string {
  return `task-${randomBytes(6).toString('hex')}`;
}

/** The directory of task logs under a data dir. */
export function logDirOf(dataDir: string): string {
  return path.join(dataDir, 'logs');
}

/** Grace between SIGTERM and SIGKILL when a front door kills an orphaned agent. */
const killGraceMs = 5000;

/** How a front door's TaskService is wired to its process. */
export interface TaskServiceOptions {
  /** Where committed events go in this process (a runner in the same process may share it). */
  bus?: EventBus;
  /** Called when a task's runner died here but its agent runs on: a runner must come to adopt it. */
  onAdrift?: () => Promise<unknown>;
}

/** The result of a cancel: the task, and who stops its agent if it was running. */
export type CancelView = TaskView & { agentStop: AgentStop | null };

/** The front doors' engine API over one store. */
export class TaskService {
  /** The front door's step path of task actors (it commits cancels, and what dead runners left). */
  private readonly actors: TaskActors;
  private readonly orphans: LocalOrphans;
  private readonly bus: EventBus;

  constructor(
    private readonly store: Store,
    private readonly config: DelegateConfig,
    private readonly clock: Clock,
    /** The front door's own working directory: the default for tasks. */
    private readonly cwd: string,
    private readonly options: TaskServiceOptions = {},
  ) {
    const log = createLogger('front-door', config.logLevel);
    const logDir = logDirOf(config.dataDir);
    this.bus = options.bus ?? new EventBus();
    this.orphans = new LocalOrphans(store, clock, logDir, killGraceMs, log);
    this.actors = new TaskActors(store, clock, null, frontDoorEffects(logDir, this.orphans, config.account), this.bus, log);
    this.orphans.actors = this.actors;
  }

  /** Validate and queue a task; nothing is written when the input is bad. */
  async delegate(raw: unknown, lineage: Lineage = {}): Promise<TaskView> {
    const input: DelegateTaskInput = parseInput(delegateTaskSchema, raw);
    const node = this.prepare(input, lineage);
    const {
      tasks: [task],
    } = await this.insertGraph([node]);
    // Just inserted: what it depends on is what it was given, and nothing depends on it yet.
    return this.view(task!, { dependsOn: [...new Set(node.dependsOn)].sort(), dependants: [] });
  }

  /** Place the graph's worktrees, then insert it in one transaction; worktrees made for a graph not stored are undone. */
  private async insertGraph(nodes: NewTaskNode[]): Promise<{ tasks: TaskRecord[] }> {
    const now = this.clock.now();
    const made = await this.placeWorktrees(nodes, now);
    try {
      const { tasks, events } = await this.store.insertTaskGraph(nodes, now, this.submitDecider(now));
      this.bus.publish(events);
      return { tasks };
    } catch (error) {
      await Promise.all(made.map((worktree) => discardWorktree(worktree)));
      throw error;
    }
  }

  /**
   * Give each `worktree: true` task its worktree: the one of the task it carries on (continueFrom, resume, retry;
   * in this batch or stored), or a fresh one of its working directory's repository. Returns those made here.
   */
  private async placeWorktrees(nodes: NewTaskNode[], now: number): Promise<NewWorktree[]> {
    const made: NewWorktree[] = [];
    const placed = new Map<string, NewTask>();
    try {
      for (const node of nodes) {
        const { task } = node;
        if (!task.worktree) continue;
        const sourceId = task.continueFrom ?? task.parentTaskId ?? task.retryOf;
        const inBatch = sourceId ? placed.get(sourceId) : undefined;
        const source = inBatch ?? (sourceId ? await this.store.getTask(sourceId) : null);
        const stored = !inBatch && source?.worktreePath ? await this.store.getWorktree(source.worktreePath) : null;
        const live = inBatch !== undefined || (stored !== null && stored.removedAt === null && existsSync(stored.path));
        if (source?.worktreePath && live) {
          task.worktreePath = source.worktreePath;
          task.workingDirectory = source.workingDirectory;
        } else {
          const created = await createWorktree(this.config.dataDir, task.workingDirectory, task.id, now);
          made.push(created.worktree);
          node.worktree = created.worktree;
          task.worktreePath = created.worktree.path;
          task.workingDirectory = created.workingDirectory;
        }
        placed.set(task.id, task);
      }
    } catch (error) {
      await Promise.all(made.map((worktree) => discardWorktree(worktree)));
      throw error;
    }
    return made;
  }

  /**
   * Queue a pipeline: each step depends on the previous one and continues from its checkpoint, and waits
   * `delayMs` after it completes. All steps are written in one transaction.
   */
  async pipeline(steps: ReadonlyArray<{ prompt: string; delayMs?: number | undefined }>, common: Omit<DelegateTaskInput, 'prompt' | 'dependsOn' | 'continueFrom'> = {}): Promise<TaskView[]> {
    if (steps.length < 1) throw new UsageError('invalid_input', 'steps: expected at least one step');
    const nodes: NewTaskNode[] = [];
    steps.forEach((step, index) => {
      if (step.delayMs !== undefined && (!Number.isInteger(step.delayMs) || step.delayMs < 0 || step.delayMs > taskLimits.timeoutMs.max)) {
        throw new UsageError('invalid_input', `steps[${index}].delay ${step.delayMs}: expected milliseconds from 0 to ${taskLimits.timeoutMs.max}`);
      }
      const previous = nodes[index - 1]?.task.id;
      let input: DelegateTaskInput;
      try {
        input = parseInput(delegateTaskSchema, { ...common, prompt: step.prompt, ...(previous ? { dependsOn: [previous], continueFrom: previous } : {}) });
      } catch (error) {
        if (error instanceof UsageError) throw new UsageError(error.code, `steps[${index}].${error.message}`);
        throw error;
      }
      nodes.push(this.prepare(input, {}, previous ? (step.delayMs ?? 0) : 0));
    });
    const { tasks } = await this.insertGraph(nodes);
    return this.linkedViews(tasks);
  }

  /**
   * Queue a graph of tasks in one transaction, each naming its dependencies by the keys of entries before it
   * (callers order the graph; the Action sorts its `tasks` input). Nothing is written when any entry is bad; an
   * entry's error is prefixed with its `label`, so the caller's own input is named. Returns views in entry order.
   */
  async delegateGraph(entries: readonly TaskGraphEntry[]): Promise<TaskView[]> {
    const idOfKey = new Map<string, string>();
    const nodes: NewTaskNode[] = [];
    for (const entry of entries) {
      const idOf = (key: string): string => {
        const id = idOfKey.get(key);
        if (id === undefined) throw new UsageError('invalid_input', `${entry.label}: depends on '${printable(key)}', which is not an earlier entry`);
        return id;
      };
      const dependsOn = entry.dependsOn.map(idOf);
      const continueFrom = entry.continueFrom === undefined ? undefined : idOf(entry.continueFrom);
      let node: NewTaskNode;
      try {
        const input = parseInput(delegateTaskSchema, { ...entry.input, ...(dependsOn.length ? { dependsOn } : {}), ...(continueFrom ? { continueFrom } : {}) });
        node = this.prepare(input, {});
      } catch (error) {
        if (error instanceof UsageError) throw new UsageError(error.code, `${entry.label}.${error.message}`);
        throw error;
      }
      if (idOfKey.has(entry.key)) throw new UsageError('invalid_input', `${entry.label}: the key '${printable(entry.key)}' is used twice`);
      idOfKey.set(entry.key, node.task.id);
      nodes.push(node);
    }
    const { tasks } = await this.insertGraph(nodes);
    return this.linkedViews(tasks);
  }

  /**
   * Resume a finished task as a new task (`parentTaskId`): its checkpoint and `additionalContext` go into the
   * prompt, and when its agent session is known the new run forks that session, so the agent keeps its memory.
   */
  async resume(taskId: string, rawContext?: string): Promise<TaskView> {
    const additionalContext = parseInput(additionalContextSchema, rawContext);
    const task = await this.require(taskId);
    if (!(finishedStates as readonly string[]).includes(task.state)) {
      throw new UsageError('conflict', `task ${taskId} is ${task.state}; only failed, completed or cancelled tasks can be resumed`);
    }
    const checkpoint = await this.store.latestCheckpoint(taskId);
    const input = await this.inputOf(task);
    delete input.dependsOn;
    delete input.continueFrom;
    return this.delegate(input, {
      parentTaskId: task.id,
      additionalContext: additionalContext?.trim() ? additionalContext.trim() : null,
      forkSessionId: checkpoint?.sessionId ?? null,
    });
  }

  /** The checkpoint of a task's latest finished attempt (git state, last lines, error, session). */
  async checkpoint(taskId: string): Promise<Checkpoint | null> {
    await this.require(taskId);
    return this.store.latestCheckpoint(taskId);
  }

  /** Turn validated input into a row to insert; checks what the schema cannot (directory, agent, continueFrom). */
  private prepare(input: DelegateTaskInput, lineage: Lineage, startDelayMs = 0): NewTaskNode {
    const workingDirectory = checkWorkingDirectory(input.workingDirectory ?? this.cwd);
    const agent = input.agent ?? 'claude';
    const known = agentNames();
    if (!known.includes(agent)) throw new UsageError('invalid_input', `agent '${agent}': expected one of ${known.join(', ')}`);
    const permissionMode = input.permissionMode ?? this.config.permissionMode;
    agentByName(agent).checkTask?.({
      prompt: input.prompt,
      model: input.model,
      permissionMode,
      allowedTools: input.allowedTools ?? [],
      disallowedTools: input.disallowedTools ?? [],
      maxBudgetUsd: input.maxBudgetUsd,
    });
    const dependsOn = input.dependsOn ?? [];
    if (input.continueFrom && !dependsOn.includes(input.continueFrom)) {
      throw new UsageError('invalid_input', `continueFrom ${input.continueFrom}: expected one of the dependsOn ids (add it to dependsOn)`);
    }
    return {
      dependsOn,
      task: {
        id: newTaskId(),
        prompt: input.prompt,
        priority: (input.priority ?? 'P2') as TaskRecord['priority'],
        agent,
        model: input.model ?? null,
        // The front door's DELEGATE_PERMISSION_MODE (e.g. from .mcp.json env) is what its user chose: keep it with the task.
        permissionMode,
        allowedTools: input.allowedTools ?? [],
        disallowedTools: input.disallowedTools ?? [],
        workingDirectory,
        timeoutMs: input.timeout ?? this.config.taskTimeoutMs,
        maxOutputBuffer: input.maxOutputBuffer ?? this.config.maxOutputBuffer,
        maxBudgetUsd: input.maxBudgetUsd ?? null,
        worktree: input.worktree ?? false,
        continueFrom: input.continueFrom ?? null,
        parentTaskId: lineage.parentTaskId ?? null,
        retryOf: lineage.retryOf ?? null,
        startDelayMs,
        additionalContext: lineage.additionalContext ?? null,
        forkSessionId: lineage.forkSessionId ?? null,
      },
    };
  }

  private submitDecider(now: number): SubmitDecider {
    return (task, pendingDeps, failedDependency) => decideSubmit(task, pendingDeps, failedDependency, now);
  }

  /** Run a finished task again as a new task with the same inputs and `retryOf` set. */
  async retry(taskId: string): Promise<TaskView> {
    const task = await this.require(taskId);
    if (!(finishedStates as readonly string[]).includes(task.state)) {
      throw new UsageError('conflict', `task ${taskId} is ${task.state}; only failed, completed or cancelled tasks can be retried`);
    }
    return this.delegate(await this.inputOf(task), { retryOf: task.id });
  }

  /** The DelegateTask input a stored task was created with. */
  private async inputOf(task: TaskRecord): Promise<DelegateTaskInput> {
    const dependsOn = await this.store.dependenciesOf(task.id);
    return {
      prompt: task.prompt,
      priority: task.priority,
      workingDirectory: task.workingDirectory,
      agent: task.agent,
      timeout: task.timeoutMs,
      maxOutputBuffer: task.maxOutputBuffer,
      allowedTools: task.allowedTools,
      disallowedTools: task.disallowedTools,
      worktree: task.worktree,
      ...(dependsOn.length ? { dependsOn } : {}),
      ...(task.continueFrom ? { continueFrom: task.continueFrom } : {}),
      ...(task.model ? { model: task.model } : {}),
      ...(task.permissionMode ? { permissionMode: task.permissionMode as DelegateTaskInput['permissionMode'] } : {}),
      ...(task.maxBudgetUsd !== null ? { maxBudgetUsd: task.maxBudgetUsd } : {}),
    };
  }

  /** One task, or a UsageError naming the unknown id. */
  async get(taskId: string): Promise<TaskView> {
    const [view] = await this.views([await this.require(taskId)]);
    return view!;
  }

  /** One task and the limits in force, read once for both (TaskStatus, `delegate status <id>`). */
  async getWithLimits(taskId: string): Promise<{ task: TaskView; limits: LimitsView }> {
    const task = await this.require(taskId);
    const limits = await this.readLimits();
    const [view] = await this.views([task], limits);
    return { task: view!, limits: limitsView(limits) };
  }

  /** Usage limits in force and budgets with today's spend. */
  async limits(): Promise<LimitsView> {
    return limitsView(await this.readLimits());
  }

  private readLimits(): Promise<ClaimLimits> {
    return readLimits(this.store, this.clock.now(), ClaimGate.options(this.config));
  }

  /** Newest first. */
  async list(filter: TaskListFilter = {}): Promise<TaskView[]> {
    return this.views(await this.listRecords(filter));
  }

  /** A page of tasks and the limits in force, read once for both (TaskStatus, `delegate status`). */
  async listWithLimits(filter: TaskListFilter = {}): Promise<{ tasks: TaskView[]; limits: LimitsView }> {
    const records = await this.listRecords(filter);
    const limits = await this.readLimits();
    return { tasks: await this.views(records, limits), limits: limitsView(limits) };
  }

  private listRecords(filter: TaskListFilter): Promise<TaskRecord[]> {
    const allStates = [...unfinishedStates, ...finishedStates] as readonly string[];
    if (filter.status !== undefined && !allStates.includes(filter.status)) {
      throw new UsageError('invalid_input', `status ${shown(filter.status)}: expected one of ${allStates.join(', ')}`);
    }
    return this.store.listTasks({ states: filter.status ? [filter.status] : undefined, limit: filter.limit ?? 50 });
  }

  /**
   * Views that do not lie: a running task whose runner died on this host is first settled with what its agent
   * left (or handed back when the agent is gone), and one whose agent runs on says so and calls for a runner.
   */
  private async views(tasks: readonly TaskRecord[], readLimits?: ClaimLimits): Promise<TaskView[]> {
    const { changed, adrift } = await this.orphans.reconcile(tasks);
    if (adrift.size > 0) await this.options.onAdrift?.();
    const current = await Promise.all(tasks.map(async (task) => (changed.has(task.id) ? ((await this.store.getTask(task.id)) ?? task) : task)));
    // Read once for the whole list, and only when some task could be waiting on a limit.
    const limits = readLimits ?? (current.some((task) => task.state === 'ready' || task.state === 'paused') ? await this.readLimits() : undefined);
    const views = await this.linkedViews(current, limits);
    for (const view of views) {
      if (adrift.has(view.taskId)) view.note = 'its runner died; the agent is still running and the next runner on this host adopts it';
    }
    return views;
  }

  /**
   * Cancel a task. The decision is committed here; the runner that owns a running task sees it is no longer
   * its run and kills the agent's process tree. Dependants fail with `dependency_failed` in the same commit.
   */
  async cancel(taskId: string, reason?: string): Promise<CancelView> {
    return (await this.cancelWithCascade(taskId, reason)).task;
  }

  /** {@link cancel}, also naming the dependants that failed in the same commit. */
  async cancelWithCascade(taskId: string, rawReason?: string): Promise<CancelOutcome> {
    const reason = parseInput(cancelReasonSchema, rawReason);
    await this.require(taskId);
    const result = await this.actors.send(taskId, { type: 'CANCEL', ...(reason ? { reason } : {}) }, reason ? { detail: reason } : {});
    if (result.committed) {
      // The statechart's killAgent, when the task was running: who stops the agent (see frontDoorEffects).
      const agentStop = ((await result.results.get('killAgent')) as AgentStop | undefined) ?? null;
      // The commit's events are exactly the cascade it wrote: read after it, a dependant could have failed for another reason.
      const failedDependants = result.events.filter((event) => event.kind === 'task' && event.actorId !== taskId && event.to === 'failed').map((event) => event.actorId);
      const [view] = await this.linkedViews([result.task]);
      return { task: { ...view!, agentStop }, failedDependants };
    }
    if (result.reason === 'refused') throw new UsageError('conflict', `task ${taskId} is already ${result.task?.state}; only unfinished tasks can be cancelled`);
    // The task moved on between each read and write (claimed, finished) more often than the step retries.
    throw new UsageError('conflict', `task ${taskId} kept changing; try again`);
  }

  /**
   * Wait until the tasks finish, the timeout passes or the signal aborts, driven by the event stream (see
   * task-waiter.ts). An unknown id is a UsageError naming it (as `field[index]`) before anything is waited for.
   */
  async wait(taskIds: readonly string[], options: WaitOptions & { field?: string } = {}): Promise<WaitResult> {
    const { field = 'taskIds', ...waitOptions } = options;
    const found = await Promise.all(taskIds.map((id) => this.store.getTask(id)));
    const unknown = found.findIndex((task) => task === null);
    if (unknown >= 0) throw new UsageError('not_found', `${field}[${unknown}] ${printable(taskIds[unknown]!)}: no such task (see delegate status for the list)`);
    return waitForTasks(
      { store: this.store, bus: this.bus, clock: this.clock, view: (id) => this.get(id), followOutput: (id) => this.followLogs(id) },
      taskIds,
      waitOptions,
    );
  }

  /** Output lines of a task: the agent's text (stdout), its stderr, or both. */
  async logs(taskId: string, options: { tail?: number | undefined; stream?: LogStream | undefined } = {}): Promise<{ task: TaskView; lines: string[] }> {
    const task = await this.get(taskId);
    const follower = this.followLogs(taskId, options.stream);
    let lines = [...(await follower.read()), ...follower.end()];
    // slice(-0) would be every line.
    if (options.tail !== undefined) lines = options.tail === 0 ? [] : lines.slice(-options.tail);
    return { task, lines };
  }

  /** A reader of a task's output lines that returns, on each read, only what was written since the last one. */
  followLogs(taskId: string, stream: LogStream = 'stdout'): OutputFollower {
    const paths = taskLogPaths(logDirOf(this.config.dataDir), taskId);
    // The text log is the run as it happened, stderr lines marked `[stderr] ` in place; stderr alone has its own
    // file here, and is the marked lines of the text log where it was shipped to the database.
    const isStderr = (line: string) => line.startsWith(stderrMark);
    if (stream === 'stderr') return new TaskOutputFollower(this.store, taskId, { file: paths.stderr }, { keep: isStderr, map: (line) => line.slice(stderrMark.length) });
    if (stream === 'both') return new TaskOutputFollower(this.store, taskId, { file: paths.text });
    return new TaskOutputFollower(this.store, taskId, { file: paths.text, keep: (line) => !isStderr(line) });
  }

  private async require(taskId: string): Promise<TaskRecord> {
    const task = await this.store.getTask(taskId);
    if (!task) throw new UsageError('not_found', `taskId ${printable(taskId)}: no such task (see delegate status for the list)`);
    return task;
  }

  /** Views of tasks as they are, with their links read in two queries for all of them, not two per task. */
  private async linkedViews(tasks: readonly TaskRecord[], limits?: ClaimLimits): Promise<TaskView[]> {
    const links = await this.store.taskLinks(tasks.map((task) => task.id));
    return tasks.map((task) => this.view(task, links.get(task.id)!, limits));
  }

  private view(task: TaskRecord, { dependsOn, dependants }: TaskLinks, limits?: ClaimLimits): TaskView {
    const waiting = limits ? this.waitingOf(task, limits) : null;
    return {
      taskId: task.id,
      status: task.state,
      priority: task.priority,
      prompt: task.prompt,
      agent: task.agent,
      workingDirectory: task.workingDirectory,
      worktreePath: task.worktreePath,
      worktreeBranch: task.worktreePath === null ? null : worktreeBranch(path.basename(task.worktreePath)),
      permissionMode: task.permissionMode,
      failReason: task.failReason,
      error: task.error,
      // From the statechart's context: the reason is part of the CANCEL decision, not a column.
      cancelReason: task.snapshot.context.cancelReason ?? null,
      exitCode: task.exitCode,
      attempt: task.attempt,
      createdAt: iso(task.createdAt)!,
      startedAt: iso(task.startedAt),
      completedAt: iso(task.endedAt),
      durationMs: task.startedAt !== null && task.endedAt !== null ? task.endedAt - task.startedAt : null,
      resumeAt: task.state === 'paused' ? iso(task.resumeAt) : null,
      heldUntil: waiting?.heldUntil ?? null,
      waitingFor: waiting?.waitingFor ?? null,
      costUsd: task.costUsd,
      sessionId: task.sessionId,
      numTurns: task.numTurns,
      tokens: task.tokens,
      model: task.modelUsed ?? task.model,
      result: task.result,
      dependsOn,
      dependants,
      continueFrom: task.continueFrom,
      parentTaskId: task.parentTaskId,
      retryOf: task.retryOf,
      note: null,
    };
  }

  /** What a paused or held-back ready task waits for. */
  private waitingOf(task: TaskRecord, limits: ClaimLimits): { heldUntil: string | null; waitingFor: string } | null {
    if (task.state === 'paused') {
      const hold = limits.holds.find((candidate) => candidate.taskId === task.id);
      const kind = hold?.limitType ? ` (${hold.limitType})` : '';
      return { heldUntil: null, waitingFor: `usage limit of ${task.agent}${kind}; resumes its session at ${iso(task.resumeAt) ?? 'the reset'}` };
    }
    if (task.state !== 'ready') return null;
    const held = holdOnTask(limits, this.config.account, task);
    return held ? { heldUntil: iso(held.until), waitingFor: held.reason } : null;
  }
}

/** The limits as front doors show them. */
function limitsView(limits: ClaimLimits): LimitsView {
  return {
    holds: limits.holds.map((hold) => ({ agent: hold.agent, account: hold.account, until: iso(hold.until)!, limitType: hold.limitType, taskId: hold.taskId })),
    budgets: limits.budgets,
    dayEndsAt: iso(limits.nextDayStart)!,
    lines: limitLines(limits),
  };
}
