/**
 * The one step path of durable schedule actors, the same shape as TaskActors (DESIGN §1): load → decide with
 * `transition()` → one fenced transaction → run the returned effects through the effect table. A due timer is
 * turned into FIRE here: the firing plan (engine/schedule-steps.ts) is committed with the step, so the slot's
 * history row and its task exist exactly when the step does. One mailbox per schedule in this process; across
 * processes the consumed timer, the fence (state, runs) and the slot's UNIQUE key make a second firing write
 * nothing.
 */
import type { ScheduleActionParams, ScheduleActionType, ScheduleEvent } from '../actors/schedule.machine.js';
import type { Clock } from './clock.js';
import { ifCommitUnknown } from './errors.js';
import type { EventBus } from './events.js';
import type { Logger } from './logger.js';
import { Mailboxes } from './mailboxes.js';
import { decideScheduleEvent, planFiring, planFollowing, type DecidedScheduleStep, type ScheduleAction } from './schedule-steps.js';
import type { ScheduleFiring, ScheduleRecord, ScheduleStepCommit } from './store/schedule-records.js';
import type { EngineEvent, NewTask, Store } from './store/store.js';

/** How one schedule effect is carried out after its step committed. */
export type ScheduleEffectHandler<K extends ScheduleActionType> = (params: ScheduleActionParams[K], context: { schedule: ScheduleRecord }) => unknown;

/** The schedule effect table: one handler for every action the schedule machine can return. */
export type ScheduleEffects = { [K in ScheduleActionType]: ScheduleEffectHandler<K> };

/** How a schedule step ended. */
export type ScheduleStepResult =
  | { committed: true; schedule: ScheduleRecord; events: EngineEvent[] }
  | { committed: false; reason: 'gone' | 'refused' | 'contended' | 'moved-on'; schedule: ScheduleRecord | null };

/** What the actors need besides the store: the task a firing creates. */
export interface ScheduleActorsOptions {
  /** The task a firing of `schedule` inserts (a new id every call). */
  newTask(schedule: ScheduleRecord): NewTask;
}

/** Schedule actors of one process. */
export class ScheduleActors {
  readonly #mailboxes = new Mailboxes();

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly nodeId: string | null,
    private readonly effects: ScheduleEffects,
    private readonly bus: EventBus,
    private readonly log: Logger,
    private readonly options: ScheduleActorsOptions,
  ) {}

  /** Deliver `event` to schedule `id` through its mailbox; `timerId` is the durable timer it comes from. */
  send(id: string, event: ScheduleEvent, timerId?: number): Promise<ScheduleStepResult> {
    return this.#mailboxes.run(id, () => this.#step(id, event, timerId));
  }

  /**
   * Fire the schedules whose DUE timers came due together: one read of them all, a decision each, and one
   * transaction for every firing. A burst of schedules due in the same second (the top of the hour) would
   * otherwise pay a transaction and three reads per firing, a few milliseconds each while agents take the CPU.
   * All or none: when any one is refused (another node fired it, it moved on), the batch is rolled back and each
   * schedule takes its own step instead, which decides again on what it finds. Resolves to how many committed.
   */
  fireDue(due: ReadonlyArray<{ scheduleId: string; timerId: number }>): Promise<number> {
    const ids = [...new Set(due.map((timer) => timer.scheduleId))];
    return this.#mailboxes.runAll(ids, async () => {
      const one = async (timers: typeof due) => {
        let committed = 0;
        for (const timer of timers) if ((await this.#step(timer.scheduleId, { type: 'DUE' }, timer.timerId)).committed) committed++;
        return committed;
      };
      // A schedule twice in one batch has two timers of one key: rare enough to take the one-by-one path.
      if (ids.length !== due.length || due.length === 1) return one(due);
      const now = this.clock.now();
      const records = new Map((await this.store.getSchedules(ids)).map((schedule) => [schedule.id, schedule]));
      const busy = new Set(await this.store.busySchedules(ids));
      const batch: Array<{ timer: (typeof due)[number]; schedule: ScheduleRecord; decided: DecidedScheduleStep; firing: ScheduleFiring | undefined }> = [];
      const alone: Array<(typeof due)[number]> = [];
      for (const timer of due) {
        const schedule = records.get(timer.scheduleId);
        const planned = schedule && this.#decide(schedule, { type: 'DUE' }, now, busy.has(schedule.id));
        if (schedule && planned) batch.push({ timer, schedule, ...planned });
        else alone.push(timer); // gone or refused: its own step drops the timer
      }
      // A batch whose answer was lost goes the one-by-one way too: each step finds its timer consumed if it was saved.
      const written =
        batch.length === 0
          ? null
          : await ifCommitUnknown(this.store.commitScheduleSteps(batch.map((item) => this.#commitOf(item.schedule, item, now, item.timer.timerId))), () => null);
      if (!written) return one([...batch.map((item) => item.timer), ...alone]);
      this.bus.publish(written.flat());
      await Promise.all(batch.flatMap(({ decided, schedule }) => decided.actions.map((action) => this.#act(action, schedule))));
      return batch.length + (await one(alone));
    });
  }

  /** Wait until every step queued so far has finished. */
  idle(): Promise<void> {
    return this.#mailboxes.idle();
  }

  /**
   * Decide `event` for `schedule` at `now`; a due timer or a followed schedule's run becomes FIRE with the firing
   * it writes. `busy`: a task of the schedule is unfinished (a DUE only). Null when the statechart refuses it.
   */
  #decide(schedule: ScheduleRecord, event: ScheduleEvent, now: number, busy: boolean): { decided: DecidedScheduleStep; firing: ScheduleFiring | undefined } | null {
    if (event.type !== 'DUE' && event.type !== 'UPSTREAM_RAN') {
      const decided = decideScheduleEvent(schedule, event, now);
      return decided && { decided, firing: undefined };
    }
    const newTask = () => this.options.newTask(schedule);
    const plan = event.type === 'DUE' ? planFiring(schedule, now, busy, newTask) : planFollowing(schedule, now, event, newTask);
    const decided = decideScheduleEvent(schedule, plan.event, now);
    if (!decided) return null;
    if (plan.detail) decided.step.detail = plan.detail;
    // A run is news even when the schedule ends with it: active followers fire rather than being cancelled.
    if (plan.followers) decided.step.followers = { ...decided.step.followers, ran: plan.followers };
    return { decided, firing: plan.firing };
  }

  /** What committing a decided step writes: fenced on the state and run count it was decided from. */
  #commitOf(schedule: ScheduleRecord, { decided, firing }: { decided: DecidedScheduleStep; firing: ScheduleFiring | undefined }, now: number, timerId: number | undefined): ScheduleStepCommit {
    return {
      id: schedule.id,
      fence: { state: schedule.state, runs: schedule.runs },
      step: decided.step,
      now,
      nodeId: this.nodeId,
      ...(timerId !== undefined ? { timerId } : {}),
      ...(firing ? { firing } : {}),
    };
  }

  async #step(id: string, event: ScheduleEvent, timerId: number | undefined): Promise<ScheduleStepResult> {
    for (let tries = 0; tries < 5; tries++) {
      const schedule = await this.store.getSchedule(id);
      if (!schedule) {
        if (timerId !== undefined) await this.store.dropTimer(timerId);
        return { committed: false, reason: 'gone', schedule: null };
      }
      const busy = event.type === 'DUE' && (await this.store.busySchedules([id])).length > 0;
      const now = this.clock.now();
      const planned = this.#decide(schedule, event, now, busy);
      if (!planned) {
        if (timerId !== undefined) await this.store.dropTimer(timerId);
        return { committed: false, reason: 'refused', schedule };
      }
      const { decided } = planned;
      let written = await ifCommitUnknown(this.store.commitScheduleSteps([this.#commitOf(schedule, planned, now, timerId)]), () => 'unanswered' as const);
      if (written === 'unanswered') {
        // The answer was lost (a server that stopped at that moment). A timer's step consumes its timer, so the
        // timer says whether it was saved; saved, its events are read back and its actions run as a commit's.
        if (timerId === undefined || (await this.store.timerExists(timerId))) continue;
        this.log.info('the answer to a schedule step was lost; its timer is gone, so it was saved', { schedule: id, event: event.type });
        written = [(await this.store.eventsAfter(0, { actorId: id, sinceAt: now }, 100)).filter((row) => row.cause === decided.step.event)];
      }
      if (!written) {
        // Another node delivered this timer (or fired the slot): nothing to decide again.
        if (timerId !== undefined && !(await this.store.timerExists(timerId))) return { committed: false, reason: 'moved-on', schedule };
        continue;
      }
      const events = written.flat();
      const after = (await this.store.getSchedule(id)) ?? schedule;
      this.bus.publish(events);
      // Awaited inside the mailbox, so a front door that answers after the step has also cancelled the tasks.
      await Promise.all(decided.actions.map((action) => this.#act(action, after)));
      return { committed: true, schedule: after, events };
    }
    return { committed: false, reason: 'contended', schedule: await this.store.getSchedule(id) };
  }

  /** Run one effect; a failure is logged, never thrown into the committed step. */
  async #act(action: ScheduleAction, schedule: ScheduleRecord): Promise<void> {
    try {
      await (this.effects[action.type] as ScheduleEffectHandler<typeof action.type>)(action.params as never, { schedule });
    } catch (error) {
      this.log.error('schedule effect failed', { schedule: schedule.id, effect: action.type, error: String(error) });
    }
  }
}

/** What a process reaches from a schedule's effects. */
export interface ScheduleEffectTargets {
  /** A task was queued: a runner may claim it now (a front door has nothing to wake). */
  wake(): void;
  /** Cancel one of the schedule's tasks (through the task's own step path). */
  cancelTask(taskId: string, reason: string): Promise<unknown>;
  /** The schedule's unfinished tasks. */
  unfinishedTasks(scheduleId: string): Promise<string[]>;
}

/** The schedule effect table, the same in runners and front doors but for what `targets` reach. */
export function scheduleEffects(targets: ScheduleEffectTargets): ScheduleEffects {
  return {
    fired: (params) => {
      if (params.started) targets.wake();
    },
    cancelTasks: async (params, { schedule }) => {
      for (const taskId of await targets.unfinishedTasks(schedule.id)) await targets.cancelTask(taskId, params.reason);
    },
  };
}
