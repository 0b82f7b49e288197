/**
 * The Store over one SQL connection. Each verb picks its transaction (none for reads, one `write` for every
 * state change) and calls the function of its concern; the SQL itself lives in tasks, runs, nodes and checkpoints.
 */
import { ifCommitUnknown } from '../errors.js';
import * as checkpoints from './checkpoints.js';
import * as events from './events.js';
import * as holds from './holds.js';
import * as nodes from './nodes.js';
import * as output from './output.js';
import * as runs from './runs.js';
import * as schedules from './schedules.js';
import type { NewSchedule, ScheduleFilter, ScheduleRecord, ScheduleRunRecord, ScheduleStep, ScheduleStepCommit } from './schedule-records.js';
import * as timers from './timers.js';
import * as worktrees from './worktrees.js';
import { together, type SqlDriver } from './sql-driver.js';
import type {
  ActorSnapshotRow,
  Checkpoint,
  CommitOptions,
  DaySpend,
  DueTimer,
  EngineEvent,
  EventFilter,
  HostExclusivity,
  NewEngineEvent,
  NewTask,
  NewTaskNode,
  NodeRecord,
  NodeRegistration,
  OpenRun,
  OutputChunk,
  OutputMark,
  OwnedRun,
  RunProcess,
  RunUsageQuery,
  RunUsageSum,
  RunTakeover,
  ShippedChunk,
  SubmitDecider,
  TaskClaim,
  TaskEvent,
  TaskFence,
  TaskFilter,
  TaskLinks,
  TaskRecord,
  TaskRun,
  TaskStep,
  WorktreeRecord,
  UsageHold,
} from './records.js';
import type { Store } from './store.js';
import { topologicalOrder } from './task-graph.js';
import * as tasks from './tasks.js';
import * as usage from './usage.js';

/** The Store of the engine: a thin class over the per-concern SQL functions. */
export class SqlStore implements Store {
  /** Whether this store's last claim found a task (see claimNextTask). */
  #claimedLast = false;

  constructor(private readonly db: SqlDriver) {}

  get kind(): 'embedded' | 'client' {
    return this.db.kind;
  }

  get file(): string | null {
    return this.db.file;
  }

  async insertTask(task: NewTask, dependsOn: readonly string[], now: number, decide: (pendingDeps: number, failedDependency: string | null) => TaskStep): Promise<TaskRecord> {
    const { tasks: [inserted] } = await this.insertTaskGraph([{ task, dependsOn }], now, (_task, pending, failed) => decide(pending, failed));
    return inserted!;
  }

  async insertTaskGraph(graph: readonly NewTaskNode[], now: number, decide: SubmitDecider): Promise<{ tasks: TaskRecord[]; events: EngineEvent[] }> {
    // Checked before the transaction (a malformed batch never takes the write lock), and rejects rather than throws.
    const order = topologicalOrder(graph);
    return this.db.write((tx) => tasks.insertTaskGraph(tx, graph, order, now, decide));
  }

  latestCheckpoint(taskId: string): Promise<Checkpoint | null> {
    return checkpoints.latestCheckpoint(this.db, taskId);
  }

  getTask(id: string): Promise<TaskRecord | null> {
    return tasks.getTask(this.db, id);
  }

  listTasks(filter: TaskFilter = {}): Promise<TaskRecord[]> {
    return tasks.listTasks(this.db, filter);
  }

  dependenciesOf(id: string): Promise<string[]> {
    return tasks.dependenciesOf(this.db, id);
  }

  dependantsOf(id: string): Promise<string[]> {
    return tasks.dependantsOf(this.db, id);
  }

  taskLinks(ids: readonly string[]): Promise<Map<string, TaskLinks>> {
    return tasks.taskLinks(this.db, ids);
  }

  taskEvents(id: string): Promise<TaskEvent[]> {
    return tasks.taskEvents(this.db, id);
  }

  taskRuns(id: string): Promise<TaskRun[]> {
    return runs.taskRuns(this.db, id);
  }

  sumRunUsage(query: RunUsageQuery): Promise<RunUsageSum[]> {
    return usage.sumRunUsage(this.db, query);
  }

  countUnfinished(): Promise<number> {
    return tasks.countUnfinished(this.db);
  }

  async claimNextTask(claim: TaskClaim, decide: (task: TaskRecord) => TaskStep | null): Promise<{ task: TaskRecord; events: EngineEvent[] } | null> {
    // Most polls find nothing: look first without taking the write lock that every other runner needs too. Not
    // after a claim that found a task, though: the queue likely holds more, and the look would be a second
    // query of the same rows for every task claimed.
    if (!this.#claimedLast && !(await tasks.anyReadyTask(this.db, claim.now, claim.skip, claim.hold))) return null;
    const claimed = await this.db.write((tx) => tasks.claimNextTask(tx, claim, decide));
    this.#claimedLast = claimed !== null;
    return claimed;
  }

  async commitTaskStep(id: string, fence: TaskFence, step: TaskStep, options: CommitOptions): Promise<EngineEvent[] | null> {
    try {
      return await this.db.write((tx) => tasks.commitTaskStep(tx, id, fence, step, options));
    } catch (error) {
      if (error instanceof tasks.StaleStep) return null;
      throw error;
    }
  }

  recordRunProcess(taskId: string, attempt: number, process: RunProcess): Promise<void> {
    return runs.recordRunProcess(this.db, taskId, attempt, process);
  }

  openRuns(): Promise<{ now: number; runs: OpenRun[] }> {
    return runs.openRuns(this.db);
  }

  takeOverRun(run: RunTakeover): Promise<boolean> {
    // Whether it was taken over shows in the task's owner.
    return ifCommitUnknown(this.db.write((tx) => runs.takeOverRun(tx, run)), () => runs.ownsRun(this.db, run.to, run.taskId, run.attempt));
  }

  endRun(taskId: string, attempt: number, outcome: string, now: number): Promise<void> {
    // The same UPDATE again means the same: it ends the run if it has not ended.
    const end = () => this.db.write((tx) => runs.endRun(tx, taskId, attempt, outcome, now));
    return ifCommitUnknown(end(), end);
  }

  removeNodeIfIdle(id: string): Promise<boolean> {
    return ifCommitUnknown(this.db.write((tx) => nodes.removeNodeIfIdle(tx, id)), async () => !(await nodes.nodeExists(this.db, id)));
  }

  recordRunSession(taskId: string, attempt: number, sessionId: string): Promise<void> {
    return runs.recordRunSession(this.db, taskId, attempt, sessionId);
  }

  appendOutput(chunks: readonly ShippedChunk[]): Promise<void> {
    return this.db.write((tx) => output.appendOutput(tx, chunks));
  }

  outputMark(taskId: string, host: string): Promise<OutputMark> {
    return output.outputMark(this.db, taskId, host);
  }

  outputAfter(taskId: string, afterSeq: number, limit: number): Promise<OutputChunk[]> {
    return output.outputAfter(this.db, taskId, afterSeq, limit);
  }

  renewLeases(nodeId: string, leaseMs: number, owned: readonly OwnedRun[]): Promise<OwnedRun[]> {
    return this.db.write((tx) => runs.renewLeases(tx, nodeId, leaseMs, owned));
  }

  ownedRuns(nodeId: string): Promise<OwnedRun[]> {
    return runs.ownedRuns(this.db, nodeId);
  }

  registerNode(node: NodeRecord, exclusiveOnHost?: HostExclusivity): Promise<NodeRegistration> {
    return this.db.write((tx) => nodes.registerNode(tx, node, exclusiveOnHost));
  }

  heartbeatNode(id: string): Promise<boolean> {
    // What a heartbeat answers is whether the node is still registered, which a look shows.
    return ifCommitUnknown(this.db.write((tx) => nodes.heartbeatNode(tx, id)), () => nodes.nodeExists(this.db, id));
  }

  removeNode(id: string): Promise<void> {
    const remove = () => this.db.write((tx) => nodes.removeNode(tx, id));
    return ifCommitUnknown(remove(), remove);
  }

  listNodes(host?: string): Promise<NodeRecord[]> {
    return nodes.listNodes(this.db, host);
  }

  dbNow(): Promise<number> {
    return runs.dbNow(this.db);
  }

  nextTimerDueAt(): Promise<number | null> {
    return timers.nextTimerDueAt(this.db);
  }

  claimDueTimers(nodeId: string, now: number, lockMs: number, limit: number): Promise<DueTimer[]> {
    // The timer loop only claims once nextTimerDueAt says something is due.
    // A claim whose answer was lost: the timers it locked carry its lock (otherwise they wait for it to lapse).
    const claim = this.db.write((tx) => timers.claimDueTimers(tx, nodeId, now, lockMs, limit));
    return ifCommitUnknown(claim, () => timers.timersLockedBy(this.db, nodeId, now + lockMs));
  }

  dropTimer(id: number): Promise<void> {
    const drop = () => this.db.write((tx) => timers.dropTimer(tx, id));
    return ifCommitUnknown(drop(), drop);
  }

  timerExists(id: number): Promise<boolean> {
    return timers.timerExists(this.db, id);
  }

  eventsAfter(afterId: number, filter: EventFilter, limit: number): Promise<EngineEvent[]> {
    return events.eventsAfter(this.db, afterId, filter, limit);
  }

  recentActorEvents(actorId: string, limit: number): Promise<EngineEvent[]> {
    return events.recentActorEvents(this.db, actorId, limit);
  }

  lastEventId(): Promise<number> {
    return events.lastEventId(this.db);
  }

  liveActorSnapshots(): Promise<ActorSnapshotRow[]> {
    return events.liveActorSnapshots(this.db);
  }

  async recordNodeActors(batch: readonly NewEngineEvent[], snapshots: readonly ActorSnapshotRow[]): Promise<void> {
    await this.db.write((tx) => together([events.appendEvents(tx, batch), events.saveActorSnapshots(tx, snapshots)]));
  }

  insertSchedule(schedule: NewSchedule, step: ScheduleStep, now: number): Promise<{ schedule: ScheduleRecord; events: EngineEvent[] }> {
    return this.db.write((tx) => schedules.insertSchedule(tx, schedule, step, now));
  }

  getSchedule(id: string): Promise<ScheduleRecord | null> {
    return schedules.getSchedule(this.db, id);
  }

  listSchedules(filter: ScheduleFilter = {}): Promise<ScheduleRecord[]> {
    return schedules.listSchedules(this.db, filter);
  }

  getSchedules(ids: readonly string[]): Promise<ScheduleRecord[]> {
    return schedules.getSchedules(this.db, ids);
  }

  async commitScheduleSteps(commits: readonly ScheduleStepCommit[]): Promise<EngineEvent[][] | null> {
    try {
      return await this.db.write((tx) => schedules.commitScheduleSteps(tx, commits));
    } catch (error) {
      if (error instanceof schedules.ScheduleStepRefused) return null;
      throw error;
    }
  }

  getWorktree(path: string): Promise<WorktreeRecord | null> {
    return worktrees.getWorktree(this.db, path);
  }

  listWorktrees(): Promise<WorktreeRecord[]> {
    return worktrees.listWorktrees(this.db);
  }

  worktreeTasks(path: string): Promise<Array<{ id: string; state: string }>> {
    return worktrees.worktreeTasks(this.db, path);
  }

  markWorktree(path: string, what: 'merged' | 'removed', at: number): Promise<void> {
    return this.db.write((tx) => worktrees.markWorktree(tx, path, what, at));
  }

  scheduleRuns(id: string, limit: number): Promise<ScheduleRunRecord[]> {
    return schedules.scheduleRuns(this.db, id, limit);
  }

  unfinishedScheduleTasks(id: string): Promise<string[]> {
    return schedules.unfinishedScheduleTasks(this.db, id);
  }

  busySchedules(ids: readonly string[]): Promise<string[]> {
    return schedules.busySchedules(this.db, ids);
  }

  countActiveSchedules(): Promise<number> {
    return schedules.countActiveSchedules(this.db);
  }

  usageHolds(now: number): Promise<UsageHold[]> {
    return holds.usageHolds(this.db, now);
  }

  spendSince(since: number): Promise<DaySpend> {
    return holds.spendSince(this.db, since);
  }

  scheduleBudgets(): Promise<Record<string, number>> {
    return holds.scheduleBudgets(this.db);
  }

  async dataVersion(): Promise<number | null> {
    // A server has no data_version for other clients' commits. Every step writes an event, so the newest event id
    // (one primary-key lookup) changes whenever anything a runner or a front door waits for does.
    return (await this.db.dataVersion()) ?? (await events.lastEventId(this.db));
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
