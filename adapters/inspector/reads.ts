/**
 * What the inspector page asks the database: the live actors of every runner sharing it, one actor in detail,
 * a page of finished tasks, and the dependency graph around a task. Every read is bounded (live actors only,
 * history by keyset pages, graphs by a node cap), so a database with a long history answers as fast as a new one.
 */
import { UsageError } from '../../engine/errors.js';
import type { EngineEvent } from '../../engine/events.js';
import { finishedStates, unfinishedStates, type ActorKind, type Store, type TaskRecord } from '../../engine/store/store.js';
import type { TaskService, TaskView } from '../../engine/task-service.js';

/** How many unfinished tasks the live list shows (the rest are counted, not listed). */
export const liveTaskLimit = 300;
/** How many events of one actor its detail shows. */
export const actorEventLimit = 100;
/** How many tasks a dependency graph shows at most. */
export const graphNodeLimit = 200;

/** One live actor as the list shows it. */
export interface LiveActor {
  id: string;
  kind: ActorKind;
  /** The statechart's state value: a string, or an object for nested and parallel states. */
  value: unknown;
  nodeId: string | null;
  /** A short line of what it is doing (a task's prompt, a slot's task). */
  label: string;
  updatedAt: number;
}

/** A runner node sharing the database. */
export interface LiveNode {
  id: string;
  host: string;
  pid: number;
  startedAt: number;
  heartbeatAt: number;
}

/** Everything alive now: nodes with their supervisors and slots, unfinished tasks, running schedules. */
export interface LiveView {
  nodes: LiveNode[];
  actors: LiveActor[];
  /** Unfinished tasks in all; more than listed when over {@link liveTaskLimit}. */
  unfinishedTasks: number;
  /** The newest event id when this was read: events after it are news to the page. */
  lastEventId: number;
}

/** A finished task in the history table. */
export interface HistoryRow {
  id: string;
  state: string;
  priority: string;
  prompt: string;
  failReason: string | null;
  attempt: number;
  createdAt: number;
  startedAt: number | null;
  endedAt: number | null;
  durationMs: number | null;
  costUsd: number | null;
}

/** One page of history and the cursor of the next (null on the last page). */
export interface HistoryPage {
  rows: HistoryRow[];
  next: string | null;
}

/** One actor in detail: its state, what a task view tells, and its recent events. */
export interface ActorDetail {
  id: string;
  kind: ActorKind;
  value: unknown;
  /** The task as front doors show it (why it waits or failed), for tasks. */
  task: TaskView | null;
  /** Context of a node-local actor or a schedule, as its snapshot holds it. */
  context: unknown;
  events: EngineEvent[];
}

/** A task of a graph and a dependency edge (`from` must complete before `to` may run). */
export interface GraphView {
  nodes: Array<{ id: string; state: string; prompt: string; failReason: string | null; pendingDeps: number }>;
  edges: Array<{ from: string; to: string }>;
  /** True when the graph had more tasks than {@link graphNodeLimit}. */
  truncated: boolean;
}

/** The first line of a prompt, shortened for a list. */
function snippet(text: string, length = 80): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > length ? `${line.slice(0, length - 1)}…` : line;
}

/** Snapshot JSON of a node-local actor, without what only its launcher reads. */
function parseSnapshot(json: string): { value: unknown; context: Record<string, unknown> } {
  try {
    const parsed = JSON.parse(json) as { value?: unknown; context?: Record<string, unknown> };
    const { launch: _launch, ...context } = parsed.context ?? {};
    return { value: parsed.value ?? null, context };
  } catch {
    return { value: null, context: {} };
  }
}

/** What the live list says a node-local actor is doing. */
function nodeActorLabel(context: Record<string, unknown>): string {
  if (typeof context.taskId === 'string') return `${context.taskId}${typeof context.attempt === 'number' ? ` (attempt ${context.attempt})` : ''}`;
  return '';
}

/** The reads behind the page's API. */
export class InspectorReads {
  constructor(
    private readonly store: Store,
    private readonly tasks: TaskService,
  ) {}

  async live(): Promise<LiveView> {
    const [lastEventId, nodes, snapshots, tasks, unfinishedTasks, schedules] = await Promise.all([
      this.store.lastEventId(),
      this.store.listNodes(),
      this.store.liveActorSnapshots(),
      this.store.listTasks({ states: unfinishedStates, limit: liveTaskLimit }),
      this.store.countUnfinished(),
      this.store.listSchedules({ states: ['active', 'paused'], limit: liveTaskLimit }),
    ]);
    const actors: LiveActor[] = [];
    for (const row of snapshots) {
      const { value, context } = parseSnapshot(row.snapshot);
      actors.push({ id: row.actorId, kind: row.kind, value, nodeId: row.nodeId, label: nodeActorLabel(context), updatedAt: row.updatedAt });
    }
    for (const task of tasks) actors.push({ id: task.id, kind: 'task', value: task.state, nodeId: task.owner, label: snippet(task.prompt), updatedAt: task.updatedAt });
    for (const schedule of schedules) {
      actors.push({ id: schedule.id, kind: 'schedule', value: schedule.state, nodeId: null, label: snippet(schedule.prompt), updatedAt: schedule.updatedAt });
    }
    return {
      nodes: nodes.map((node) => ({ id: node.id, host: node.host, pid: node.pid, startedAt: node.startedAt, heartbeatAt: node.heartbeatAt })),
      actors,
      unfinishedTasks,
      lastEventId,
    };
  }

  /** A page of finished tasks, newest first, after `cursor` (from the previous page's `next`). */
  async history(cursor: string | null, limit: number): Promise<HistoryPage> {
    const after = cursor === null ? undefined : parseCursor(cursor);
    const tasks = await this.store.listTasks({ states: finishedStates, limit: limit + 1, after });
    const rows = tasks.slice(0, limit).map(historyRow);
    const last = tasks.length > limit ? tasks[limit - 1] : undefined;
    return { rows, next: last ? `${last.createdAt}:${last.id}` : null };
  }

  async actor(kind: string, id: string): Promise<ActorDetail> {
    const events = () => this.store.recentActorEvents(id, actorEventLimit);
    if (kind === 'task') {
      const task = await this.tasks.get(id);
      return { id, kind, value: task.status, task, context: null, events: await events() };
    }
    if (kind === 'schedule') {
      const schedule = await this.store.getSchedule(id);
      if (!schedule) throw new UsageError('not_found', `id ${id}: no such schedule`);
      return { id, kind, value: schedule.state, task: null, context: schedule.snapshot.context, events: await events() };
    }
    if (kind === 'slot' || kind === 'supervisor') {
      const row = (await this.store.liveActorSnapshots()).find((snapshot) => snapshot.actorId === id);
      if (!row) throw new UsageError('not_found', `id ${id}: no live ${kind} (its runner may have stopped)`);
      const { value, context } = parseSnapshot(row.snapshot);
      return { id, kind, value, task: null, context, events: await events() };
    }
    throw new UsageError('invalid_input', `kind '${kind}': expected task, schedule, slot or supervisor`);
  }

  /** The tasks connected to `id` by dependencies (either way), up to {@link graphNodeLimit}. */
  async graph(id: string): Promise<GraphView> {
    const found = new Map<string, TaskRecord>();
    const edges = new Map<string, { from: string; to: string }>();
    const queue = [id];
    let truncated = false;
    while (queue.length > 0) {
      const next = queue.shift()!;
      if (found.has(next)) continue;
      if (found.size >= graphNodeLimit) {
        truncated = true;
        break;
      }
      const task = await this.store.getTask(next);
      if (!task) {
        if (next === id) throw new UsageError('not_found', `id ${id}: no such task`);
        continue;
      }
      found.set(next, task);
      const [dependencies, dependants] = await Promise.all([this.store.dependenciesOf(next), this.store.dependantsOf(next)]);
      for (const from of dependencies) edges.set(`${from}>${next}`, { from, to: next });
      for (const to of dependants) edges.set(`${next}>${to}`, { from: next, to });
      queue.push(...dependencies, ...dependants);
    }
    return {
      nodes: [...found.values()].map((task) => ({ id: task.id, state: task.state, prompt: snippet(task.prompt, 40), failReason: task.failReason, pendingDeps: task.pendingDeps })),
      // An edge to a task beyond the cap would point nowhere.
      edges: [...edges.values()].filter((edge) => found.has(edge.from) && found.has(edge.to)),
      truncated,
    };
  }
}

/** A history cursor `<createdAt>:<task id>`, or a UsageError naming it. */
function parseCursor(cursor: string): { createdAt: number; id: string } {
  const match = /^(\d+):(task-[0-9a-zA-Z-]+)$/.exec(cursor);
  if (!match) throw new UsageError('invalid_input', `after '${cursor}': expected a cursor from a previous page (<createdAt>:<task id>)`);
  return { createdAt: Number(match[1]), id: match[2]! };
}

function historyRow(task: TaskRecord): HistoryRow {
  return {
    id: task.id,
    state: task.state,
    priority: task.priority,
    prompt: snippet(task.prompt),
    failReason: task.failReason,
    attempt: task.attempt,
    createdAt: task.createdAt,
    startedAt: task.startedAt,
    endedAt: task.endedAt,
    durationMs: task.startedAt !== null && task.endedAt !== null ? task.endedAt - task.startedAt : null,
    costUsd: task.costUsd,
  };
}
