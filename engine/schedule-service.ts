/**
 * The front doors' schedule API (SPEC §4): create, list, get, pause, resume and cancel schedules. Like
 * TaskService it only validates and commits; a runner fires the slots. Pause, resume and cancel are steps of the
 * schedule's statechart through the same step path the runner uses.
 */
import type { Clock } from './clock.js';
import type { DelegateConfig } from './config.js';
import { UsageError } from './errors.js';
import { EventBus } from './events.js';
import { createLogger } from './logger.js';
import { scheduleStates, type ScheduleEvent } from '../actors/schedule.machine.js';
import { ScheduleActors, scheduleEffects } from './schedule-actors.js';
import { checkScheduleInput, scheduledTask, scheduleTaskSchema, type ScheduleCheckOptions } from './schedule-input.js';
import { nextSlots } from './schedule-slots.js';
import { decideCreate, ruleOf } from './schedule-steps.js';
import type { ScheduleRecord, ScheduleRunOutcome } from './store/schedule-records.js';
import type { Store } from './store/store.js';
import { parseInput } from './task-input.js';
import type { TaskService } from './task-service.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A schedule as front doors show it (times in ISO 8601 UTC). */
export interface ScheduleView {
  scheduleId: string;
  status: string;
  prompt: string;
  scheduleType: 'cron' | 'one_time';
  cronExpression: string | null;
  scheduledAt: string | null;
  timezone: string;
  missedRunPolicy: string;
  priority: string;
  workingDirectory: string;
  agent: string;
  maxRuns: number | null;
  /** Tasks started so far. */
  runCount: number;
  expiresAt: string | null;
  /** The schedule this one follows (it fires when that one next starts a task); null for a schedule of its own. */
  afterScheduleId: string | null;
  /** US dollars its tasks may spend per day, if limited. */
  dailyBudgetUsd: number | null;
  nextRunAt: string | null;
  cancelReason: string | null;
  createdAt: string;
  updatedAt: string;
}

/** When a schedule runs, in a few words, for both front doors: `cron '0 2 * * *' in UTC`, `once at …`, `once after sched-…'s next run`. */
export function scheduleWhen(view: Pick<ScheduleView, 'scheduleType' | 'cronExpression' | 'timezone' | 'scheduledAt' | 'afterScheduleId'>): string {
  if (view.scheduleType === 'cron') return `cron '${view.cronExpression}' in ${view.timezone}`;
  return view.afterScheduleId !== null ? `once after ${view.afterScheduleId}'s next run` : `once at ${view.scheduledAt}`;
}

/** One slot of a schedule's history. */
export interface ScheduleRunView {
  scheduledFor: string;
  firedAt: string;
  taskId: string | null;
  /** The task's status now; null for a slot that ran no task. */
  taskStatus: string | null;
  outcome: ScheduleRunOutcome;
  detail: string | null;
}

/** GetSchedule's answer: the schedule, its next slots and its history. */
export interface ScheduleDetail extends ScheduleView {
  /** The next (up to) 5 slots of an active or paused schedule. */
  nextRuns: string[];
  history: ScheduleRunView[];
}

/** The front doors' schedule API over one store. */
export class ScheduleService {
  private readonly actors: ScheduleActors;

  constructor(
    private readonly store: Store,
    config: DelegateConfig,
    private readonly clock: Clock,
    /** The front door's own working directory: the default for schedules. */
    private readonly cwd: string,
    tasks: TaskService,
    private readonly bus: EventBus = new EventBus(),
  ) {
    const log = createLogger('front-door', config.logLevel);
    this.actors = new ScheduleActors(
      store,
      clock,
      null,
      scheduleEffects({
        wake: () => undefined,
        cancelTask: (taskId, reason) => tasks.cancelWithCascade(taskId, reason),
        unfinishedTasks: (id) => store.unfinishedScheduleTasks(id),
      }),
      bus,
      log,
      { newTask: (schedule) => scheduledTask(schedule, config) },
    );
  }

  /** Validate and create a schedule with its first timer; nothing is written when the input is bad. */
  async create(raw: unknown, options: ScheduleCheckOptions = {}): Promise<ScheduleView> {
    const input = parseInput(scheduleTaskSchema, raw);
    const now = this.clock.now();
    const { schedule, firstRunAt } = checkScheduleInput(input, now, this.cwd, options);
    const step = decideCreate({ at: now, nextRunAt: firstRunAt, oneTime: schedule.type === 'one_time', maxRuns: schedule.maxRuns, expiresAt: schedule.expiresAt });
    const created = await this.store.insertSchedule(schedule, step, now);
    this.bus.publish(created.events);
    return this.view(created.schedule);
  }

  /** Schedules, newest first, optionally of one status. */
  async list(filter: { status?: string | undefined; limit?: number | undefined } = {}): Promise<ScheduleView[]> {
    if (filter.status !== undefined && !(scheduleStates as readonly string[]).includes(filter.status)) {
      throw new UsageError('invalid_input', `status '${filter.status}': expected one of ${scheduleStates.join(', ')}`);
    }
    const rows = await this.store.listSchedules({ states: filter.status ? [filter.status] : undefined, limit: filter.limit });
    return rows.map((row) => this.view(row));
  }

  /** One schedule with its next 5 slots and its newest `historyLimit` history rows. */
  async get(scheduleId: string, historyLimit = 20): Promise<ScheduleDetail> {
    const schedule = await this.require(scheduleId);
    const live = schedule.state === 'active' || schedule.state === 'paused';
    const from = schedule.nextRunAt;
    const nextRuns = live && from !== null ? [from, ...nextSlots(ruleOf(schedule), from, 4)].filter((slot) => schedule.expiresAt === null || slot <= schedule.expiresAt) : [];
    const history = await this.store.scheduleRuns(scheduleId, historyLimit);
    return {
      ...this.view(schedule),
      nextRuns: nextRuns.map((slot) => iso(slot)!),
      history: history.map((run) => ({
        scheduledFor: iso(run.scheduledFor)!,
        firedAt: iso(run.firedAt)!,
        taskId: run.taskId,
        taskStatus: run.taskState,
        outcome: run.outcome,
        detail: run.detail,
      })),
    };
  }

  /** Pause an active schedule: its timer is cancelled until it is resumed. */
  pause(scheduleId: string): Promise<ScheduleView> {
    return this.step(scheduleId, { type: 'PAUSE' }, 'only an active schedule can be paused');
  }

  /** Resume a paused schedule: a slot missed meanwhile fires at once, under its missed-run policy. */
  resume(scheduleId: string): Promise<ScheduleView> {
    return this.step(scheduleId, { type: 'RESUME', at: this.clock.now() }, 'only a paused schedule can be resumed');
  }

  /** Cancel an active or paused schedule; with `cancelTasks`, its unfinished tasks are cancelled too. */
  cancel(scheduleId: string, reason?: string, cancelTasks = false): Promise<ScheduleView> {
    return this.step(scheduleId, { type: 'CANCEL', reason, cancelTasks }, 'only an active or paused schedule can be cancelled');
  }

  private async step(scheduleId: string, event: ScheduleEvent, refusal: string): Promise<ScheduleView> {
    await this.require(scheduleId);
    const result = await this.actors.send(scheduleId, event);
    if (!result.committed) {
      const current = result.schedule ?? (await this.require(scheduleId));
      throw new UsageError('conflict', `schedule ${scheduleId} is ${current.state}; ${refusal}`);
    }
    return this.view(result.schedule);
  }

  private async require(scheduleId: string): Promise<ScheduleRecord> {
    const schedule = await this.store.getSchedule(scheduleId);
    if (!schedule) throw new UsageError('not_found', `scheduleId '${scheduleId}': no such schedule`);
    return schedule;
  }

  private view(schedule: ScheduleRecord): ScheduleView {
    return {
      scheduleId: schedule.id,
      status: schedule.state,
      prompt: schedule.prompt,
      scheduleType: schedule.type,
      cronExpression: schedule.cronExpression,
      scheduledAt: iso(schedule.scheduledAt),
      timezone: schedule.timezone,
      missedRunPolicy: schedule.missedRunPolicy,
      priority: schedule.priority,
      workingDirectory: schedule.workingDirectory,
      agent: schedule.agent,
      maxRuns: schedule.maxRuns,
      runCount: schedule.runs,
      expiresAt: iso(schedule.expiresAt),
      afterScheduleId: schedule.afterScheduleId,
      dailyBudgetUsd: schedule.dailyBudgetUsd,
      nextRunAt: iso(schedule.nextRunAt),
      cancelReason: schedule.cancelReason,
      createdAt: iso(schedule.createdAt)!,
      updatedAt: iso(schedule.updatedAt)!,
    };
  }
}
