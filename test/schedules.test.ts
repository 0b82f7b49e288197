/**
 * Schedules end to end in one process: the real store file, a real runner with fake-claude agents, and XState's
 * SimulatedClock as the runner's clock, so slots, downtimes and pauses of hours take milliseconds.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { planFiring, decideScheduleEvent } from '../engine/schedule-steps.js';
import { scheduledTask } from '../engine/schedule-input.js';
import { ScheduleActors, scheduleEffects } from '../engine/schedule-actors.js';
import { createLogger } from '../engine/logger.js';
import type { Store } from '../engine/store/store.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { eventually, removeDir, tempDir } from './helpers.js';

let dataDir: string;
let engine: EngineHarness | undefined;

beforeEach(() => {
  dataDir = tempDir('delegate-schedules-');
});

afterEach(async () => {
  await engine?.close();
  engine = undefined;
  removeDir(dataDir);
});

const minute = 60_000;

/** Move simulated time forward in steps, letting the runner's I/O run between them. */
async function advance(clock: SimulatedClock, ms: number, stepMs = 1000): Promise<void> {
  for (let done = 0; done < ms; done += stepMs) {
    clock.increment(Math.min(stepMs, ms - done));
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

/** Jump the clock (no runner is watching, or nothing is due in between). */
function jumpTo(clock: SimulatedClock, at: number): void {
  clock.increment(at - clock.now());
}

function simulatedNow(): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(Date.now());
  return clock;
}

// Long leases on the runner's clock, and long task timeouts, so jumps of simulated hours expire neither.
const env = { DELEGATE_LEASE_MS: '600000', TASK_TIMEOUT: '86400000' };

async function start(clock: SimulatedClock, runner = true): Promise<EngineHarness> {
  engine = await openEngine(dataDir, { clock, env, startRunner: runner });
  return engine;
}

describe('schedules on a simulated clock', () => {
  it('fires a one-time schedule once, at its time, and completes', async () => {
    const clock = simulatedNow();
    const e = await start(clock);
    const at = new Date(clock.now() + 10 * minute).toISOString();
    const created = await e.schedules.create({ prompt: 'deploy', scheduleType: 'one_time', scheduledAt: at });
    expect(created).toMatchObject({ status: 'active', scheduleType: 'one_time', nextRunAt: at, runCount: 0 });
    await advance(clock, 9 * minute, 30_000);
    expect((await e.schedules.get(created.scheduleId)).history).toEqual([]);
    await advance(clock, 2 * minute, 30_000);
    const done = await eventually(async () => {
      const detail = await e.schedules.get(created.scheduleId);
      return detail.status === 'completed' && detail.history[0]?.taskStatus === 'completed' ? detail : null;
    });
    expect(done).toMatchObject({ runCount: 1, nextRunAt: null, nextRuns: [] });
    expect(done.history).toEqual([expect.objectContaining({ scheduledFor: at, outcome: 'started', taskStatus: 'completed' })]);
    const task = await e.tasks.get(done.history[0]!.taskId!);
    expect(task).toMatchObject({ prompt: 'deploy', priority: 'P2', status: 'completed' });
    expect(await e.store.nextTimerDueAt()).toBeNull();
  });

  it('fires a cron schedule every slot until maxRuns, then completes', async () => {
    const clock = simulatedNow();
    const e = await start(clock);
    const { scheduleId, nextRunAt } = await e.schedules.create({ prompt: 'tick', cronExpression: '*/5 * * * *', maxRuns: 2, priority: 'P1' });
    const detail = await e.schedules.get(scheduleId);
    expect(detail.nextRuns).toHaveLength(5);
    expect(detail.nextRuns[0]).toBe(nextRunAt);
    expect(Date.parse(detail.nextRuns[1]!) - Date.parse(detail.nextRuns[0]!)).toBe(5 * minute);
    jumpTo(clock, Date.parse(nextRunAt!) - 1000);
    for (let round = 0; round < 2; round++) {
      await advance(clock, 5 * minute, 20_000);
      await eventually(async () => (await e.schedules.get(scheduleId)).history.every((run) => run.taskStatus === 'completed') || null);
    }
    const after = await eventually(async () => {
      const now = await e.schedules.get(scheduleId);
      return now.status === 'completed' ? now : null;
    });
    expect(after.runCount).toBe(2);
    expect(after.history.map((run) => run.outcome)).toEqual(['started', 'started']);
    expect(Date.parse(after.history[0]!.scheduledFor) - Date.parse(after.history[1]!.scheduledFor)).toBe(5 * minute);
    await advance(clock, 15 * minute, 60_000);
    expect((await e.schedules.get(scheduleId)).history).toHaveLength(2);
  });

  it('expires at expiresAt, between slots', async () => {
    const clock = simulatedNow();
    const e = await start(clock);
    const expiresAt = new Date(clock.now() + 90 * minute).toISOString();
    const { scheduleId } = await e.schedules.create({ prompt: 'hourly', cronExpression: '0 * * * *', expiresAt });
    await advance(clock, 95 * minute, 60_000);
    const detail = await eventually(async () => {
      const now = await e.schedules.get(scheduleId);
      return now.status === 'expired' ? now : null;
    });
    // The full hours before the expiry fired (one or two, depending on the minute the test started; a second one
    // may have found the first run still going in real time and been skipped).
    expect(detail.history.length).toBeGreaterThanOrEqual(1);
    expect(detail.history.length).toBeLessThanOrEqual(2);
    expect(detail.history.every((run) => Date.parse(run.scheduledFor) <= Date.parse(expiresAt))).toBe(true);
    await e.settled(detail.history.flatMap((run) => (run.taskId ? [run.taskId] : [])));
    expect(await e.store.nextTimerDueAt()).toBeNull();
  });

  for (const policy of ['skip', 'catchup', 'fail'] as const) {
    it(`applies missedRunPolicy ${policy} to slots missed while no runner was up`, async () => {
      const clock = simulatedNow();
      const e = await start(clock, false);
      const { scheduleId, nextRunAt } = await e.schedules.create({ prompt: `nightly ${policy}`, cronExpression: '*/10 * * * *', missedRunPolicy: policy });
      const first = Date.parse(nextRunAt!);
      // Down for six slots; back two minutes after the last of them.
      jumpTo(clock, first + 52 * minute);
      await e.startRunner();
      const detail = await eventually(async () => {
        const now = await e.schedules.get(scheduleId);
        return now.nextRunAt === new Date(first + 60 * minute).toISOString() ? now : null;
      });
      expect(detail.status).toBe('active');
      if (policy === 'skip') {
        expect(detail.history).toEqual([]);
        expect(detail.runCount).toBe(0);
      } else if (policy === 'catchup') {
        expect(detail.runCount).toBe(1);
        expect(detail.history).toEqual([expect.objectContaining({ scheduledFor: new Date(first + 50 * minute).toISOString(), outcome: 'catchup', detail: expect.stringContaining('6 slot(s)') })]);
      } else {
        expect(detail.runCount).toBe(0);
        expect(detail.history).toHaveLength(6);
        expect(detail.history.every((run) => run.outcome === 'missed' && run.taskId === null)).toBe(true);
      }
      expect((await e.store.listTasks()).length).toBe(policy === 'catchup' ? 1 : 0);
    });
  }

  it('pauses (nothing fires) and resumes (the missed slots go through the policy once)', async () => {
    const clock = simulatedNow();
    const e = await start(clock);
    const { scheduleId, nextRunAt } = await e.schedules.create({ prompt: 'paused work', cronExpression: '*/10 * * * *', missedRunPolicy: 'catchup' });
    jumpTo(clock, Date.parse(nextRunAt!) - 1000);
    expect(await e.schedules.pause(scheduleId)).toMatchObject({ status: 'paused' });
    await expect(e.schedules.pause(scheduleId)).rejects.toThrow(`schedule ${scheduleId} is paused; only an active schedule can be paused`);
    await advance(clock, 35 * minute, 60_000);
    expect((await e.schedules.get(scheduleId)).history).toEqual([]);
    expect(await e.store.listTasks()).toEqual([]);
    expect(await e.schedules.resume(scheduleId)).toMatchObject({ status: 'active' });
    const detail = await eventually(async () => {
      const now = await e.schedules.get(scheduleId);
      return now.history.length === 1 && Date.parse(now.nextRunAt!) > clock.now() ? now : null;
    });
    expect(detail.history[0]).toMatchObject({ outcome: 'catchup' });
    expect(Date.parse(detail.history[0]!.scheduledFor)).toBe(Date.parse(nextRunAt!) + 30 * minute);
    await expect(e.schedules.resume(scheduleId)).rejects.toThrow('only a paused schedule can be resumed');
  });

  it('does not start a run while the previous one is unfinished; cancel with cancelTasks stops it', async () => {
    const clock = simulatedNow();
    const e = await start(clock);
    const { scheduleId, nextRunAt } = await e.schedules.create({ prompt: 'long [sleep 60000]', cronExpression: '* * * * *' });
    jumpTo(clock, Date.parse(nextRunAt!) - 500);
    await advance(clock, 1000, 500);
    const first = await eventually(async () => {
      const [run] = (await e.schedules.get(scheduleId)).history;
      return run?.taskStatus === 'running' ? run : null;
    });
    await advance(clock, minute, 5000);
    const detail = await eventually(async () => {
      const now = await e.schedules.get(scheduleId);
      return now.history.length === 2 ? now : null;
    });
    expect(detail.history[0]).toMatchObject({ outcome: 'skipped_overlap', taskId: null });
    expect(detail.runCount).toBe(1);
    const cancelled = await e.schedules.cancel(scheduleId, 'enough', true);
    expect(cancelled).toMatchObject({ status: 'cancelled', cancelReason: 'enough', nextRunAt: null });
    expect((await e.tasks.get(first.taskId!)).status).toBe('cancelled');
    expect(await e.store.nextTimerDueAt()).toBeNull();
    await expect(e.schedules.cancel(scheduleId)).rejects.toThrow('only an active or paused schedule can be cancelled');
  });

  it('chains: a schedule after another fires with its next run, its task waits for that run, and so on down the chain', async () => {
    const clock = simulatedNow();
    const e = await start(clock);
    const upstream = await e.schedules.create({ prompt: 'build', cronExpression: '*/5 * * * *' });
    const report = await e.schedules.create({ prompt: 'report [sleep 1]', afterScheduleId: upstream.scheduleId, priority: 'P0' });
    expect(report).toMatchObject({ status: 'active', scheduleType: 'one_time', afterScheduleId: upstream.scheduleId, nextRunAt: null, scheduledAt: null });
    expect((await e.schedules.get(report.scheduleId)).nextRuns).toEqual([]);
    const notify = await e.schedules.create({ prompt: 'notify', afterScheduleId: report.scheduleId });
    // Paused: it misses its upstream's run, and is cancelled when that upstream ends.
    const paused = await e.schedules.create({ prompt: 'paused follower', afterScheduleId: report.scheduleId });
    await e.schedules.pause(paused.scheduleId);
    jumpTo(clock, Date.parse(upstream.nextRunAt!) - 1000);
    await advance(clock, 2000, 500);
    const done = await eventually(async () => {
      const detail = await e.schedules.get(notify.scheduleId);
      return detail.status === 'completed' && detail.history[0]?.taskStatus === 'completed' ? detail : null;
    });
    const [upstreamRun] = (await e.schedules.get(upstream.scheduleId)).history;
    const [reportRun] = (await e.schedules.get(report.scheduleId)).history;
    expect(reportRun).toMatchObject({ scheduledFor: upstream.nextRunAt, outcome: 'started', taskStatus: 'completed' });
    expect(done.history[0]).toMatchObject({ scheduledFor: upstream.nextRunAt, outcome: 'started' });
    const reportTask = await e.tasks.get(reportRun!.taskId!);
    expect(reportTask).toMatchObject({ prompt: 'report [sleep 1]', priority: 'P0', dependsOn: [upstreamRun!.taskId] });
    expect((await e.tasks.get(done.history[0]!.taskId!)).dependsOn).toEqual([reportTask.taskId]);
    expect(Date.parse(reportTask.startedAt!)).toBeGreaterThanOrEqual(Date.parse((await e.tasks.get(upstreamRun!.taskId!)).completedAt!));
    expect((await e.schedules.get(report.scheduleId)).status).toBe('completed');
    const cancelled = await eventually(async () => {
      const view = await e.schedules.get(paused.scheduleId);
      return view.status === 'cancelled' ? view : null;
    });
    expect(cancelled.cancelReason).toBe(`the schedule it follows, ${report.scheduleId}, completed; it will not run again`);
    expect(cancelled.history).toEqual([]);
    // The upstream's next run has no one left to chain.
    await advance(clock, 5 * minute, 30_000);
    await eventually(async () => ((await e.schedules.get(upstream.scheduleId)).history.length === 2 ? true : null));
    expect(await e.store.listTasks()).toHaveLength(4);
  });

  it('chains: a failed upstream run fails the follower with dependency_failed; an upstream that ends cancels its followers', async () => {
    const clock = simulatedNow();
    const e = await start(clock);
    const at = new Date(clock.now() + 10 * minute).toISOString();
    const failing = await e.schedules.create({ prompt: 'migrate [exit 1]', scheduledAt: at });
    const after = await e.schedules.create({ prompt: 'deploy', afterScheduleId: failing.scheduleId });
    await advance(clock, 11 * minute, 30_000);
    const fired = await eventually(async () => {
      const detail = await e.schedules.get(after.scheduleId);
      return detail.history[0]?.taskStatus === 'failed' ? detail : null;
    });
    expect(fired.status).toBe('completed');
    expect(await e.tasks.get(fired.history[0]!.taskId!)).toMatchObject({ status: 'failed', failReason: 'dependency_failed' });

    const cron = await e.schedules.create({ prompt: 'nightly', cronExpression: '0 2 * * *' });
    const follower = await e.schedules.create({ prompt: 'after nightly', afterScheduleId: cron.scheduleId });
    await e.schedules.cancel(cron.scheduleId, 'retired');
    const gone = await eventually(async () => {
      const view = await e.schedules.get(follower.scheduleId);
      return view.status === 'cancelled' ? view : null;
    });
    expect(gone.cancelReason).toBe(`the schedule it follows, ${cron.scheduleId}, was cancelled; it will not run again`);
    await expect(e.schedules.create({ prompt: 'too late', afterScheduleId: cron.scheduleId })).rejects.toThrow(
      `afterScheduleId '${cron.scheduleId}': that schedule is cancelled; follow an active or paused schedule`,
    );
    expect(await e.store.nextTimerDueAt()).toBeNull();
  });

  it('refuses bad input in one line naming the field, and writes nothing', async () => {
    const clock = simulatedNow();
    const e = await start(clock, false);
    const past = new Date(clock.now() - minute).toISOString();
    const cases: Array<[Record<string, unknown>, string]> = [
      [{ prompt: 'x', cronExpression: '61 * * * *' }, "cronExpression '61 * * * *': Invalid value for minute: 61"],
      [{ prompt: 'x', cronExpression: 'nonsense' }, "cronExpression 'nonsense': expected 5 fields"],
      [{ prompt: 'x', cronExpression: '*/10 * * * * *' }, 'expected 5 fields (minute hour day-of-month month day-of-week), got 6'],
      [{ prompt: 'x', cronExpression: '0 2 * * *', timezone: 'Mars/Olympus' }, "timezone 'Mars/Olympus': expected an IANA time zone"],
      [{ prompt: 'x', scheduledAt: past }, `scheduledAt '${past}': expected a time in the future`],
      [{ prompt: 'x', scheduledAt: 'tomorrow' }, "scheduledAt 'tomorrow': expected an ISO 8601 time with a zone"],
      [{ prompt: 'x', scheduledAt: '2099-01-01T08:00:00' }, 'expected an ISO 8601 time with a zone'],
      [{ prompt: 'x' }, 'cronExpression / scheduledAt: expected exactly one of them'],
      [{ prompt: 'x', cronExpression: '0 2 * * *', scheduledAt: '2099-01-01T08:00:00Z' }, 'expected exactly one of them'],
      [{ prompt: 'x', cronExpression: '0 2 * * *', missedRunPolicy: 'later' }, "missedRunPolicy 'later': expected skip, catchup or fail"],
      [{ prompt: 'x', cronExpression: '0 2 * * *', maxRuns: 0 }, 'maxRuns 0: expected a whole number of runs from 1 to 1000000'],
      [{ prompt: 'x', cronExpression: '0 2 * * *', scheduleType: 'one_time' }, "scheduleType 'one_time': one_time needs scheduledAt"],
      [{ prompt: 'x', cronExpression: '0 2 * * *', expiresAt: past }, `expiresAt '${past}': expected a time in the future`],
      [{ prompt: '', cronExpression: '0 2 * * *' }, 'prompt: expected a non-empty string'],
      [{ prompt: 'x', afterScheduleId: 'sched-000000000000' }, "afterScheduleId 'sched-000000000000': no such schedule"],
      [{ prompt: 'x', afterScheduleId: 'task-1' }, "afterScheduleId 'task-1': expected a schedule id like sched-1a2b3c4d5e6f"],
      [{ prompt: 'x', afterScheduleId: 'sched-000000000000', cronExpression: '0 2 * * *' }, 'afterScheduleId: a chained schedule is one_time'],
      [{ prompt: 'x', afterScheduleId: 'sched-000000000000', scheduledAt: '2099-01-01T08:00:00Z' }, 'scheduledAt: leave it out with afterScheduleId'],
    ];
    for (const [input, message] of cases) await expect(e.schedules.create(input), JSON.stringify(input)).rejects.toThrow(message);
    expect(await e.store.listSchedules()).toEqual([]);
    expect(await e.store.nextTimerDueAt()).toBeNull();
    await expect(e.schedules.get('sched-nope')).rejects.toThrow("scheduleId 'sched-nope': no such schedule");
    await expect(e.schedules.list({ status: 'sleeping' })).rejects.toThrow("status 'sleeping': expected one of active, paused, completed, cancelled, expired");
  });

  it('keeps a runner with an active schedule from idling out', async () => {
    const clock = simulatedNow();
    engine = await openEngine(dataDir, { clock, env: { ...env, DELEGATE_IDLE_EXIT: '1000' }, timing: { sampleMs: 100 }, startRunner: false });
    await engine.schedules.create({ prompt: 'daily', cronExpression: '0 2 * * *' });
    const runner = await engine.startRunner();
    await advance(clock, 5000, 200);
    expect(await engine.store.listNodes()).toHaveLength(1);
    let stopped = false;
    void runner.stopped.then(() => (stopped = true));
    expect(stopped).toBe(false);
  });

  it('fires schedules due together in one commit; one that moved on after its timer was claimed fires alone, not at all', async () => {
    const clock = simulatedNow();
    const e = await start(clock, false);
    const created = [];
    for (let i = 0; i < 6; i++) created.push(await e.schedules.create({ prompt: `burst ${i}`, cronExpression: '*/10 * * * *' }));
    const slot = Date.parse(created[0]!.nextRunAt!);
    let commits = 0;
    let beforeCommit: (() => Promise<unknown>) | null = null;
    // Counts the transactions that write schedule steps, and lets another writer in before one; everything else
    // goes straight to the store.
    const store = new Proxy(e.store, {
      get: (target, key: keyof Store) => {
        if (key !== 'commitScheduleSteps') return (target[key] as unknown as Function).bind(target);
        return async (...args: Parameters<Store['commitScheduleSteps']>) => {
          commits++;
          const other = beforeCommit;
          beforeCommit = null;
          await other?.();
          return target.commitScheduleSteps(...args);
        };
      },
    });
    const wakes: number[] = [];
    const actors = new ScheduleActors(store, clock, 'node-test', scheduleEffects({ wake: () => wakes.push(1), cancelTask: async () => undefined, unfinishedTasks: async () => [] }), e.bus, createLogger('test', 'error'), {
      newTask: (schedule) => scheduledTask(schedule, e.config),
    });
    const fire = async () => {
      const due = await e.store.claimDueTimers('node-test', clock.now(), 60_000, 100);
      return actors.fireDue(due.map((timer) => ({ scheduleId: timer.actorId, timerId: timer.id })));
    };

    jumpTo(clock, slot);
    const [, second, ...rest] = created;
    // The first half fires in one transaction.
    await e.schedules.pause(second!.scheduleId);
    await e.schedules.pause(rest[0]!.scheduleId);
    await e.schedules.pause(rest[1]!.scheduleId);
    expect(await fire()).toBe(3);
    expect(commits).toBe(1);
    expect(wakes).toHaveLength(3);
    // The rest resume. One of them is cancelled after the batch read it and before it commits (another process's
    // front door), so the batch is refused whole and each schedule takes its own step: the other two fire, the
    // cancelled one drops its timer.
    for (const id of [second!.scheduleId, rest[0]!.scheduleId, rest[1]!.scheduleId]) await e.schedules.resume(id);
    commits = 0;
    beforeCommit = () => e.schedules.cancel(rest[1]!.scheduleId);
    expect(await fire()).toBe(2);
    expect(commits).toBe(3); // the refused batch, then one each for the two that fire
    for (const view of created.filter((view) => view !== rest[1])) {
      expect((await e.store.scheduleRuns(view.scheduleId, 5)).map((run) => [run.scheduledFor, run.outcome]), view.scheduleId).toEqual([[slot, 'started']]);
    }
    expect(await e.store.scheduleRuns(rest[1]!.scheduleId, 5)).toEqual([]);
    expect(await e.store.listTasks()).toHaveLength(5);
    expect(await e.store.nextTimerDueAt()).toBe(slot + 10 * minute);
  });

  it('writes nothing for a second firing of a recorded slot (UNIQUE schedule_id, scheduled_for)', async () => {
    const clock = simulatedNow();
    const e = await start(clock, false);
    const { scheduleId, nextRunAt } = await e.schedules.create({ prompt: 'once per slot', cronExpression: '*/10 * * * *' });
    const slot = Date.parse(nextRunAt!);
    const fire = async () => {
      const row = (await e.store.getSchedule(scheduleId))!;
      // Both decisions are made for the same slot, as two nodes would that both read the row before either wrote.
      const plan = planFiring({ ...row, nextRunAt: slot }, slot, false, () => scheduledTask(row, e.config));
      const decided = decideScheduleEvent(row, plan.event, slot)!;
      return e.store.commitScheduleSteps([{ id: scheduleId, fence: { state: row.state, runs: row.runs }, step: decided.step, now: slot, firing: plan.firing }]);
    };
    expect(await fire()).not.toBeNull();
    expect(await fire()).toBeNull();
    expect((await e.store.scheduleRuns(scheduleId, 10)).map((run) => run.scheduledFor)).toEqual([slot]);
    expect(await e.store.listTasks()).toHaveLength(1);
    expect((await e.store.getSchedule(scheduleId))!.runs).toBe(1);
  });
});
