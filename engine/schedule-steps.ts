/**
 * Decide: the pure half of every schedule step (DESIGN §1, §6). Applies one event to a schedule's statechart with
 * XState's `transition()` and turns the result into a `ScheduleStep` (snapshot, columns, timers) plus the
 * effects to run after the commit. `planFiring` works out what a due timer means — which slots are due, what the
 * missed-run policy does with the late ones, whether the previous run still blocks a new one — and what the
 * firing writes with its step. Nothing here writes or runs anything.
 */
import {
  finishedScheduleStates,
  scheduleMachine,
  scheduleStepAccepted,
  type ScheduleActionParams,
  type ScheduleActionType,
  type ScheduleEvent,
  type ScheduleInput,
  type ScheduleSnapshot,
  type ScheduleState,
} from '../actors/schedule.machine.js';
import { nextSlot, slotsThrough, type SlotRule } from './schedule-slots.js';
import type { NewScheduleRun, ScheduleFiring, ScheduleRecord, ScheduleStep } from './store/schedule-records.js';
import type { NewTask } from './store/store.js';
import { pureTransitions } from './pure-transition.js';
import { splitActions, type RawAction } from './step-actions.js';
import { decideSubmit } from './task-steps.js';

/** A slot this much older than the firing counts as missed (the engine was down, the machine slept, it was paused). */
export const missedGraceMs = 60_000;

/** A named effect the schedule statechart asked for. */
export type ScheduleAction = { [K in ScheduleActionType]: { type: K; params: ScheduleActionParams[K] } }[ScheduleActionType];

/** A decided schedule step and the effects to run once it is committed. */
export interface DecidedScheduleStep {
  step: ScheduleStep;
  actions: ScheduleAction[];
}

function toStep(eventType: string, next: ScheduleSnapshot, actions: readonly RawAction[], now: number): DecidedScheduleStep {
  const value = next.value as ScheduleState;
  const context = next.context;
  const { timers, effects } = splitActions<ScheduleAction>('schedule', actions, now);
  return {
    step: { event: eventType, snapshot: { value, context }, set: { runs: context.runs, nextRunAt: context.nextRunAt, cancelReason: context.cancelReason }, timers },
    actions: effects,
  };
}

const scheduleTransitions = pureTransitions(scheduleMachine);

/** The step that creates a schedule: `active`, with its first timer armed. */
export function decideCreate(input: ScheduleInput): ScheduleStep {
  const [initial, actions] = scheduleTransitions.initialTransition(input);
  return toStep('CREATE', initial, actions as readonly RawAction[], input.at).step;
}

/** Restore a schedule's statechart from its row. */
export function scheduleSnapshotOf(schedule: ScheduleRecord): ScheduleSnapshot {
  return scheduleMachine.resolveState(schedule.snapshot);
}

/** Decide one event for a schedule; null when its statechart does not accept it now. */
export function decideScheduleEvent(schedule: ScheduleRecord, event: ScheduleEvent, now: number): DecidedScheduleStep | null {
  const snapshot = scheduleSnapshotOf(schedule);
  if (!scheduleStepAccepted(snapshot, event)) return null;
  const [next, actions] = scheduleTransitions.transition(snapshot, event);
  const decided = toStep(event.type, next, actions as readonly RawAction[], now);
  // A schedule that ends can never run again, so what follows it can never fire: it is cancelled, saying why.
  const value = decided.step.snapshot.value;
  if (finishedScheduleStates.includes(value)) {
    const how = value === 'cancelled' ? 'was cancelled' : value === 'expired' ? 'expired' : 'completed';
    decided.step.followers = { ended: { type: 'CANCEL', reason: `the schedule it follows, ${schedule.id}, ${how}; it will not run again` } };
  }
  return decided;
}

/** The slot rule of a schedule. */
export function ruleOf(schedule: Pick<ScheduleRecord, 'cronExpression' | 'scheduledAt' | 'timezone'>): SlotRule {
  return { cronExpression: schedule.cronExpression, scheduledAt: schedule.scheduledAt, timezone: schedule.timezone };
}

/** What a due timer turns into: the FIRE event for the statechart and what the firing writes with it. */
export interface FiringPlan {
  event: Extract<ScheduleEvent, { type: 'FIRE' }>;
  firing: ScheduleFiring;
  /** One line for the history (what happened to which slots). */
  detail: string;
  /** What the schedules that follow this one hear: the task it started, when it started one. */
  followers?: Extract<ScheduleEvent, { type: 'UPSTREAM_RAN' }> | undefined;
}

/** The firing's task, inserted with the step; it waits for `dependsOn` like any task. */
function firingTask(task: NewTask, dependsOn: string[], now: number): NonNullable<ScheduleFiring['task']> {
  return { task, dependsOn, decide: (pending, failed) => decideSubmit(task, pending, failed, now) };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Plan the firing of a schedule whose timer came due, at `now`. The due slots run from the armed `nextRunAt` to
 * `now` (at most maxMissedSlots are enumerated; older ones beyond the cap are passed over). The newest slot is on
 * time when it is within `missedGraceMs`; the others are missed, and the policy decides:
 * - `skip`: missed slots run nothing and are not recorded; an on-time slot runs;
 * - `catchup`: ONE task runs for all due slots together, recorded on the newest one (`catchup` when any was missed);
 * - `fail`: each missed slot is recorded as a `missed` run without a task; an on-time slot runs.
 * A slot that would run while the previous run's task is unfinished is recorded as `skipped_overlap` instead.
 */
export function planFiring(schedule: ScheduleRecord, now: number, previousUnfinished: boolean, newTask: () => NewTask): FiringPlan {
  const rule = ruleOf(schedule);
  const first = schedule.nextRunAt;
  const walked = first === null ? null : slotsThrough(rule, first, now);
  const due = walked === null ? [] : walked.slots.filter((slot) => schedule.expiresAt === null || slot <= schedule.expiresAt);
  const after = due.length > 0 ? Math.max(now, due.at(-1)!) : now;
  // The walk's first slot past `now` is the next one: a slot between the last due one and `now` would be due.
  const nextRunAt = schedule.type === 'one_time' ? null : due.length === 0 && first !== null && first > now ? first : walked?.after !== undefined ? walked.after : nextSlot(rule, after);
  const newest = due.at(-1);
  const onTime = newest !== undefined && now - newest <= missedGraceMs ? newest : undefined;
  const missed = onTime === undefined ? due : due.slice(0, -1);
  const runs: NewScheduleRun[] = [];
  let runSlot: number | undefined = onTime;
  let outcome: NewScheduleRun['outcome'] = 'started';
  let detail = '';
  if (schedule.missedRunPolicy === 'fail') {
    for (const slot of missed) runs.push({ scheduledFor: slot, outcome: 'missed', detail: 'missed: no runner was up at its time', withTask: false });
    if (missed.length) detail = `${missed.length} missed slot(s) recorded as failed`;
  } else if (schedule.missedRunPolicy === 'catchup' && missed.length > 0) {
    runSlot = newest;
    outcome = 'catchup';
    detail = `one catch-up run for ${due.length} slot(s) from ${iso(due[0]!)}`;
  } else if (missed.length > 0) {
    detail = `${missed.length} missed slot(s) skipped`;
  }
  let task: NewTask | null = null;
  if (runSlot !== undefined) {
    if (previousUnfinished) {
      runs.push({ scheduledFor: runSlot, outcome: 'skipped_overlap', detail: 'the previous run was still unfinished', withTask: false });
      detail = [detail, `slot ${iso(runSlot)} skipped: previous run unfinished`].filter(Boolean).join('; ');
    } else {
      task = newTask();
      runs.push({ scheduledFor: runSlot, outcome, detail: outcome === 'catchup' ? detail : null, withTask: true });
      detail = [detail, `slot ${iso(runSlot)} started ${task.id}`].filter(Boolean).join('; ');
    }
  }
  return {
    event: { type: 'FIRE', at: now, started: task !== null, nextRunAt },
    firing: { runs, task: task ? firingTask(task, [], now) : null },
    detail,
    followers: task && runSlot !== undefined ? { type: 'UPSTREAM_RAN', taskId: task.id, scheduledFor: runSlot } : undefined,
  };
}

/**
 * Plan the firing of a chained schedule whose followed schedule started `upstream.taskId`: its one task runs
 * after that task (and fails with `dependency_failed` if it fails), recorded on the followed slot's time.
 */
export function planFollowing(schedule: ScheduleRecord, now: number, upstream: Extract<ScheduleEvent, { type: 'UPSTREAM_RAN' }>, newTask: () => NewTask): FiringPlan {
  const task = newTask();
  const detail = `${schedule.afterScheduleId ?? 'the followed schedule'} started ${upstream.taskId}; ${task.id} runs after it`;
  return {
    event: { type: 'FIRE', at: now, started: true, nextRunAt: null },
    firing: { runs: [{ scheduledFor: upstream.scheduledFor, outcome: 'started', detail, withTask: true }], task: firingTask(task, [upstream.taskId], now) },
    detail,
    followers: { type: 'UPSTREAM_RAN', taskId: task.id, scheduledFor: upstream.scheduledFor },
  };
}
