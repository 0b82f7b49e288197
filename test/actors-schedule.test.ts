/**
 * The schedule statechart as a pure decider, the croner slots it is fed (DST in America/New_York), and the
 * firing plan that applies the missed-run policies — all without a store or a clock.
 */
import { describe, expect, it } from 'vitest';
import { decideCreate, decideScheduleEvent, planFiring, planFollowing } from '../engine/schedule-steps.js';
import { cronProblem, nextSlots, slotsThrough } from '../engine/schedule-slots.js';
import type { ScheduleRecord } from '../engine/store/schedule-records.js';
import type { NewTask } from '../engine/store/store.js';

const t0 = Date.parse('2026-03-07T12:00:00Z');
const minute = 60_000;
const iso = (ms: number) => new Date(ms).toISOString();

/** A schedule row as the store would return it after its CREATE step. */
function scheduleOf(overrides: Partial<ScheduleRecord> & { nextRunAt: number }, input: { oneTime?: boolean; maxRuns?: number | null; expiresAt?: number | null } = {}): ScheduleRecord {
  const step = decideCreate({ at: t0, nextRunAt: overrides.nextRunAt, oneTime: input.oneTime ?? false, maxRuns: input.maxRuns ?? null, expiresAt: input.expiresAt ?? null });
  return {
    id: 'sched-test',
    prompt: 'p',
    type: input.oneTime ? 'one_time' : 'cron',
    cronExpression: input.oneTime ? null : '*/10 * * * *',
    scheduledAt: input.oneTime ? overrides.nextRunAt : null,
    timezone: 'UTC',
    missedRunPolicy: 'skip',
    priority: 'P2',
    workingDirectory: '/tmp',
    agent: 'claude',
    maxRuns: input.maxRuns ?? null,
    expiresAt: input.expiresAt ?? null,
    dailyBudgetUsd: null,
    afterScheduleId: null,
    state: step.snapshot.value,
    snapshot: step.snapshot,
    runs: 0,
    cancelReason: null,
    createdAt: t0,
    updatedAt: t0,
    ...overrides,
  };
}

/** The row after a committed step. */
function after(schedule: ScheduleRecord, step: NonNullable<ReturnType<typeof decideScheduleEvent>>['step']): ScheduleRecord {
  return { ...schedule, state: step.snapshot.value, snapshot: step.snapshot, ...step.set };
}

let taskCount = 0;
const newTask = (): NewTask => ({ id: `task-${++taskCount}` }) as NewTask;

describe('schedule statechart', () => {
  it('starts active with its first slot armed as a durable timer', () => {
    const step = decideCreate({ at: t0, nextRunAt: t0 + 10 * minute, oneTime: false, maxRuns: null, expiresAt: null });
    expect(step.snapshot.value).toBe('active');
    expect(step.timers).toEqual([{ kind: 'arm', key: 'due', event: { type: 'DUE' }, dueAt: t0 + 10 * minute }]);
  });

  it('arms the expiry instead when it comes before the next slot', () => {
    const step = decideCreate({ at: t0, nextRunAt: t0 + 60 * minute, oneTime: false, maxRuns: null, expiresAt: t0 + 30 * minute });
    expect(step.timers).toEqual([{ kind: 'arm', key: 'due', event: { type: 'EXPIRE' }, dueAt: t0 + 30 * minute }]);
    const expired = decideScheduleEvent(scheduleOf({ nextRunAt: t0 + 60 * minute }, { expiresAt: t0 + 30 * minute }), { type: 'EXPIRE' }, t0 + 30 * minute)!;
    expect(expired.step.snapshot.value).toBe('expired');
    expect(expired.step.timers).toEqual([{ kind: 'disarm', key: 'due' }]);
  });

  it('a chained schedule arms no slot of its own; its followed run fires it once, and its end tells its followers', () => {
    const step = decideCreate({ at: t0, nextRunAt: null, oneTime: true, maxRuns: null, expiresAt: null });
    expect(step).toMatchObject({ snapshot: { value: 'active' }, timers: [], set: { nextRunAt: null } });
    const chained: ScheduleRecord = { ...scheduleOf({ nextRunAt: t0 }, { oneTime: true }), id: 'sched-chained', afterScheduleId: 'sched-up', scheduledAt: null, nextRunAt: null, snapshot: step.snapshot };
    const plan = planFollowing(chained, t0 + minute, { type: 'UPSTREAM_RAN', taskId: 'task-up', scheduledFor: t0 }, newTask);
    expect(plan.firing.task).toMatchObject({ dependsOn: ['task-up'] });
    expect(plan.firing.runs).toEqual([expect.objectContaining({ scheduledFor: t0, outcome: 'started', withTask: true })]);
    expect(plan.followers).toEqual({ type: 'UPSTREAM_RAN', taskId: plan.firing.task!.task.id, scheduledFor: t0 });
    const fired = decideScheduleEvent(chained, plan.event, t0 + minute)!;
    expect(fired.step.snapshot.value).toBe('completed');
    expect(fired.step.followers).toEqual({ ended: { type: 'CANCEL', reason: 'the schedule it follows, sched-chained, completed; it will not run again' } });
    // With an expiry, that is the one timer it arms.
    expect(decideCreate({ at: t0, nextRunAt: null, oneTime: true, maxRuns: null, expiresAt: t0 + 60 * minute }).timers).toEqual([
      { kind: 'arm', key: 'due', event: { type: 'EXPIRE' }, dueAt: t0 + 60 * minute },
    ]);
  });

  it('re-arms after a firing and counts the run; completes at maxRuns', () => {
    const schedule = scheduleOf({ nextRunAt: t0 + 10 * minute }, { maxRuns: 2 });
    const first = decideScheduleEvent(schedule, { type: 'FIRE', at: t0 + 10 * minute, started: true, nextRunAt: t0 + 20 * minute }, t0 + 10 * minute)!;
    expect(first.step.snapshot.value).toBe('active');
    expect(first.step.set).toMatchObject({ runs: 1, nextRunAt: t0 + 20 * minute });
    expect(first.step.timers).toEqual([{ kind: 'disarm', key: 'due' }, { kind: 'arm', key: 'due', event: { type: 'DUE' }, dueAt: t0 + 20 * minute }]);
    expect(first.actions).toEqual([{ type: 'fired', params: { started: true } }]);
    const second = decideScheduleEvent(after(schedule, first.step), { type: 'FIRE', at: t0 + 20 * minute, started: true, nextRunAt: t0 + 30 * minute }, t0 + 20 * minute)!;
    expect(second.step.snapshot.value).toBe('completed');
    expect(second.step.set.runs).toBe(2);
    expect(second.step.timers).toEqual([{ kind: 'disarm', key: 'due' }]);
  });

  it('completes a one-time schedule once it ran', () => {
    const schedule = scheduleOf({ nextRunAt: t0 + minute }, { oneTime: true });
    const fired = decideScheduleEvent(schedule, { type: 'FIRE', at: t0 + minute, started: true, nextRunAt: null }, t0 + minute)!;
    expect(fired.step.snapshot.value).toBe('completed');
  });

  it('pauses (timer cancelled), refuses a second pause, resumes (timer re-armed, at once when the slot passed)', () => {
    const schedule = scheduleOf({ nextRunAt: t0 + 10 * minute });
    const paused = decideScheduleEvent(schedule, { type: 'PAUSE' }, t0)!;
    expect(paused.step.snapshot.value).toBe('paused');
    expect(paused.step.timers).toEqual([{ kind: 'disarm', key: 'due' }]);
    const pausedRow = after(schedule, paused.step);
    expect(decideScheduleEvent(pausedRow, { type: 'PAUSE' }, t0)).toBeNull();
    expect(decideScheduleEvent(pausedRow, { type: 'FIRE', at: t0, started: false, nextRunAt: null }, t0)).toBeNull();
    const resumed = decideScheduleEvent(pausedRow, { type: 'RESUME', at: t0 + 60 * minute }, t0 + 60 * minute)!;
    expect(resumed.step.snapshot.value).toBe('active');
    expect(resumed.step.timers).toEqual([{ kind: 'arm', key: 'due', event: { type: 'DUE' }, dueAt: t0 + 60 * minute }]);
  });

  it('cancels from active or paused, asking for the tasks to go only when told', () => {
    const schedule = scheduleOf({ nextRunAt: t0 + 10 * minute });
    const plain = decideScheduleEvent(schedule, { type: 'CANCEL', reason: 'done' }, t0)!;
    expect(plain.step.snapshot.value).toBe('cancelled');
    expect(plain.step.set.cancelReason).toBe('done');
    expect(plain.actions).toEqual([]);
    const withTasks = decideScheduleEvent(schedule, { type: 'CANCEL', cancelTasks: true }, t0)!;
    expect(withTasks.actions).toEqual([{ type: 'cancelTasks', params: { reason: 'schedule cancelled' } }]);
    expect(decideScheduleEvent(after(schedule, plain.step), { type: 'RESUME', at: t0 }, t0)).toBeNull();
  });
});

describe('slots in a time zone', () => {
  const ny = (cronExpression: string) => ({ cronExpression, scheduledAt: null, timezone: 'America/New_York' });

  it('spring forward: a daily 02:30 in the skipped hour fires at 03:00 EDT that day, then 02:30 EDT', () => {
    expect(nextSlots(ny('30 2 * * *'), Date.parse('2026-03-06T12:00:00Z'), 4).map(iso)).toEqual([
      '2026-03-07T07:30:00.000Z',
      '2026-03-08T07:00:00.000Z',
      '2026-03-09T06:30:00.000Z',
      '2026-03-10T06:30:00.000Z',
    ]);
    expect(nextSlots(ny('0 9 * * 1-5'), Date.parse('2026-03-06T12:00:00Z'), 2).map(iso)).toEqual(['2026-03-06T14:00:00.000Z', '2026-03-09T13:00:00.000Z']);
  });

  it('fall back: a daily 01:30 fires once on the repeated hour; an hourly one fires for both 01:00s', () => {
    expect(nextSlots(ny('30 1 * * *'), Date.parse('2026-10-30T12:00:00Z'), 3).map(iso)).toEqual([
      '2026-10-31T05:30:00.000Z',
      '2026-11-01T05:30:00.000Z',
      '2026-11-02T06:30:00.000Z',
    ]);
    expect(nextSlots(ny('0 * * * *'), Date.parse('2026-11-01T04:30:00Z'), 3).map(iso)).toEqual([
      '2026-11-01T05:00:00.000Z',
      '2026-11-01T06:00:00.000Z',
      '2026-11-01T07:00:00.000Z',
    ]);
  });

  it('caps the slots enumerated after a downtime', () => {
    const everyMinute = { cronExpression: '* * * * *', scheduledAt: null, timezone: 'UTC' };
    const { slots, more } = slotsThrough(everyMinute, t0, t0 + 2000 * minute, 1000);
    expect(slots).toHaveLength(1000);
    expect(more).toBe(true);
  });

  it('names the field of a bad cron expression or time zone', () => {
    expect(cronProblem('61 * * * *', 'UTC')).toBe("cronExpression '61 * * * *': Invalid value for minute: 61");
    expect(cronProblem('0 9 * * *', 'Mars/Olympus')).toContain("timezone 'Mars/Olympus'");
    expect(cronProblem('0 9 31 2 *', 'UTC')).toContain('never fires');
    expect(cronProblem('0 9 * * *', 'America/New_York')).toBeNull();
  });
});

describe('firing plan (missed-run policies)', () => {
  // Due slot t0+10m; the runner comes back at t0+62m: slots 10..60 are due, the newest 2 minutes late.
  const late = t0 + 62 * minute;
  const due = [10, 20, 30, 40, 50, 60].map((m) => t0 + m * minute);

  it('on time: the due slot runs one task', () => {
    const plan = planFiring(scheduleOf({ nextRunAt: t0 + 10 * minute }), t0 + 10 * minute + 5, false, newTask);
    expect(plan.event).toMatchObject({ type: 'FIRE', started: true, nextRunAt: t0 + 20 * minute });
    expect(plan.firing.runs).toEqual([{ scheduledFor: t0 + 10 * minute, outcome: 'started', detail: null, withTask: true }]);
    expect(plan.firing.task).not.toBeNull();
  });

  it('skip: missed slots run nothing and the schedule moves on to the next slot', () => {
    const plan = planFiring(scheduleOf({ nextRunAt: due[0]!, missedRunPolicy: 'skip' }), late, false, newTask);
    expect(plan.event).toMatchObject({ started: false, nextRunAt: t0 + 70 * minute });
    expect(plan.firing).toEqual({ runs: [], task: null });
    expect(plan.detail).toBe('6 missed slot(s) skipped');
  });

  it('catchup: one task for all missed slots, recorded on the newest', () => {
    const plan = planFiring(scheduleOf({ nextRunAt: due[0]!, missedRunPolicy: 'catchup' }), late, false, newTask);
    expect(plan.event).toMatchObject({ started: true, nextRunAt: t0 + 70 * minute });
    expect(plan.firing.runs).toEqual([{ scheduledFor: due[5], outcome: 'catchup', detail: `one catch-up run for 6 slot(s) from ${iso(due[0]!)}`, withTask: true }]);
  });

  it('fail: every missed slot is a failed run in the history, without a task', () => {
    const plan = planFiring(scheduleOf({ nextRunAt: due[0]!, missedRunPolicy: 'fail' }), late, false, newTask);
    expect(plan.event).toMatchObject({ started: false });
    expect(plan.firing.runs.map((run) => [run.scheduledFor, run.outcome, run.withTask])).toEqual(due.map((slot) => [slot, 'missed', false]));
    expect(plan.firing.task).toBeNull();
  });

  it('does not start a run while the previous one is unfinished, and says so in the history', () => {
    const plan = planFiring(scheduleOf({ nextRunAt: t0 + 10 * minute }), t0 + 10 * minute, true, newTask);
    expect(plan.event).toMatchObject({ started: false, nextRunAt: t0 + 20 * minute });
    expect(plan.firing.runs).toEqual([{ scheduledFor: t0 + 10 * minute, outcome: 'skipped_overlap', detail: 'the previous run was still unfinished', withTask: false }]);
  });

  it('ignores slots after expiresAt', () => {
    const plan = planFiring(scheduleOf({ nextRunAt: due[0]!, missedRunPolicy: 'fail' }, { expiresAt: t0 + 35 * minute }), late, false, newTask);
    expect(plan.firing.runs).toHaveLength(3);
  });
});
