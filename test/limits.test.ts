/**
 * Usage limits and budgets end to end: real database files, real agent processes (the fake claude, the demo
 * agent) and the runner's injected clock set to XState's SimulatedClock, so hours of waiting for a reset or the
 * next day pass in a moment. A usage limit pauses the task and resumes the same agent session after the reset,
 * holds back the other tasks of the agent and account (not other agents'), and survives a kill -9 of the runner;
 * a spent daily budget stops new starts until the next local day; a run over its maxBudgetUsd fails as
 * budget_exceeded.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { parseRateLimitEvent, parseUsageLimitText } from '../adapters/agents/usage-limit.js';
import type { UsageLimitNotice } from '../engine/agent.js';
import { loadConfig } from '../engine/config.js';
import { usageLimitResumeAt } from '../engine/run-outcome.js';
import { openStore } from '../engine/store/store.js';
import { localTimeZone, startOfNextDay } from '../engine/wall-clock.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { cli, eventually, fakeClaudeEvents, removeDir, serve, stopRunners, tempDir, testEnv } from './helpers.js';

let dataDir: string;
const children: ChildProcess[] = [];

beforeEach(() => {
  dataDir = tempDir('delegate-limits-');
});

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await stopRunners(testEnv(dataDir));
  removeDir(dataDir);
});

/** Leases of 10 minutes of the runner's clock, so renewals keep up while simulated time jumps. */
const longLease = { DELEGATE_LEASE_MS: '600000' };

/** A simulated clock set to `at` (default now), so epoch times from agents mean what they say. */
function simulatedAt(at = Date.now()): SimulatedClock {
  const clock = new SimulatedClock();
  clock.set(at);
  return clock;
}

/**
 * Move simulated time forward by `ms` in about `steps` steps, letting the runner's I/O run between them as
 * real time would (each periodic job and timer runs at most once per step). A step stays well inside the
 * lease, so the runner's renewals (every third of it) keep up and it never fences itself.
 */
async function advance(clock: SimulatedClock, ms: number, steps = 200): Promise<void> {
  const stepMs = Math.min(100_000, Math.max(250, Math.ceil(ms / steps)));
  for (let done = 0; done < ms; done += stepMs) {
    clock.increment(Math.min(stepMs, ms - done));
    await new Promise((resolve) => setTimeout(resolve, 3));
  }
}

async function statusOf(engine: EngineHarness, taskId: string, status: string) {
  return eventually(async () => {
    const view = await engine.tasks.get(taskId);
    return view.status === status ? view : null;
  });
}

/** When the USAGE_LIMIT step of a task was committed (the runner's clock). */
async function pausedAt(engine: EngineHarness, taskId: string): Promise<number> {
  const event = (await engine.store.taskEvents(taskId)).find((entry) => entry.event === 'USAGE_LIMIT');
  return event!.at;
}

/** The two runs of a task paused once: the second resumed the first one's session (same id, its history). */
function expectResumedSession(taskPrompt: string): void {
  const starts = fakeClaudeEvents(dataDir).filter((event) => event.event === 'start' && event.prompt.includes(taskPrompt));
  expect(starts).toHaveLength(2);
  const [first, second] = starts as [(typeof starts)[0], (typeof starts)[0]];
  expect(first.resumedFrom).toBeNull();
  expect(second.resumedFrom).toBe(first.sessionId);
  expect(second.argv).toContain('--resume');
  expect(second.argv).not.toContain('--session-id');
  expect(second.history).toEqual([first.prompt]);
  expect(second.prompt).toContain('stopped at a usage limit');
}

describe('a usage limit pauses the task and resumes its session after the reset', () => {
  const inAnHour = () => Math.floor((Date.now() + 3_600_000) / 1000);
  const forms: Array<[string, (epoch: number) => string, (epoch: number) => UsageLimitNotice]> = [
    ['a rejected rate_limit_event', (epoch) => `[rate_limit ${epoch} five_hour]`, (epoch) => parseRateLimitEvent({ rate_limit_info: { status: 'rejected', resetsAt: epoch } })!],
    ['a 429 after a rejected rate_limit_event', (epoch) => `[rate_limit ${epoch} seven_day] [api_429]`, (epoch) => ({ source: 'api_error', resetAt: epoch * 1000 })],
    ['a 429 that says nothing of the reset', () => '[api_429]', () => ({ source: 'api_error' })],
    ['Claude AI usage limit reached|<epoch>', (epoch) => `[usage_limit ${epoch}]`, (epoch) => ({ source: 'text', resetAt: epoch * 1000 })],
    ['5-hour limit reached ∙ resets 9pm', () => '[limit_text "5-hour limit reached ∙ resets 9pm"]', () => parseUsageLimitText('5-hour limit reached ∙ resets 9pm')!],
    ["You've hit your limit · resets 8pm (Europe/Berlin)", () => `[limit_text "You've hit your limit · resets 8pm (Europe/Berlin)"]`, () => parseUsageLimitText("You've hit your limit · resets 8pm (Europe/Berlin)")!],
    [
      "You've hit your session limit · resets 12:50am (America/Los_Angeles)",
      () => `[limit_text "You've hit your session limit · resets 12:50am (America/Los_Angeles)"]`,
      () => parseUsageLimitText("You've hit your session limit · resets 12:50am (America/Los_Angeles)")!,
    ],
    [
      "You've hit your weekly limit · resets <date>, 8am (Europe/Paris)",
      () => `[limit_text "You've hit your weekly limit · resets ${dateInDays(1)}, 8am (Europe/Paris)"]`,
      () => parseUsageLimitText(`You've hit your weekly limit · resets ${dateInDays(1)}, 8am (Europe/Paris)`)!,
    ],
    [
      "You've hit your limit · resets <date> at 4pm (Asia/Tokyo)",
      () => `[limit_text "You've hit your limit · resets ${dateInDays(1, ' ')} at 4pm (Asia/Tokyo)"]`,
      () => parseUsageLimitText(`You've hit your limit · resets ${dateInDays(1, ' ')} at 4pm (Asia/Tokyo)`)!,
    ],
  ];

  it.each(forms)('%s', async (_name, directive, notice) => {
    const clock = simulatedAt();
    const engine = await openEngine(dataDir, { clock, env: longLease });
    try {
      const epoch = inAnHour();
      const prompt = `limited work ${directive(epoch)} [limit_once]`;
      const { taskId } = await engine.tasks.delegate({ prompt });
      const paused = await statusOf(engine, taskId, 'paused');
      const resumeAt = usageLimitResumeAt(notice(epoch), await pausedAt(engine, taskId), localTimeZone());
      expect(paused.resumeAt).toBe(new Date(resumeAt).toISOString());
      expect(paused).toMatchObject({ failReason: null, error: null, attempt: 1 });
      expect(paused.waitingFor).toContain('usage limit of claude');
      // Nothing happens until the reset; then the same task runs again, in the same session.
      await advance(clock, resumeAt - clock.now() - 2000);
      expect((await engine.tasks.get(taskId)).status).toBe('paused');
      await advance(clock, 4000, 8);
      const [done] = await engine.settled([taskId]);
      expect(done).toMatchObject({ status: 'completed', attempt: 2, failReason: null });
      expect((await engine.store.taskEvents(taskId)).map((event) => event.event)).toEqual(['SUBMIT', 'CLAIM', 'USAGE_LIMIT', 'RESUME_DUE', 'CLAIM', 'AGENT_EXITED']);
      expectResumedSession('limited work');
      expect(done!.sessionId).toBe(fakeClaudeEvents(dataDir).find((event) => event.event === 'start')!.sessionId);
      expect(await engine.store.nextTimerDueAt()).toBeNull();
    } finally {
      await engine.close();
    }
  }, 60_000);

  it('pauses briefly, never forever, on a reset already past', async () => {
    const clock = simulatedAt();
    const engine = await openEngine(dataDir, { clock, env: longLease });
    try {
      const past = Math.floor(Date.now() / 1000) - 600;
      const { taskId } = await engine.tasks.delegate({ prompt: `stale [rate_limit ${past}] [limit_once]` });
      const paused = await statusOf(engine, taskId, 'paused');
      const at = await pausedAt(engine, taskId);
      expect(Date.parse(paused.resumeAt!) - at).toBe(60_000);
      await advance(clock, 62_000, 62);
      expect((await engine.settled([taskId]))[0]).toMatchObject({ status: 'completed', attempt: 2 });
    } finally {
      await engine.close();
    }
  }, 60_000);
});

/** A date `days` from now as the CLI prints it: `Oct 12` (with `separator` between month and day). */
function dateInDays(days: number, separator = ' '): string {
  const date = new Date(Date.now() + days * 86_400_000);
  return `${date.toLocaleString('en-US', { month: 'short', timeZone: 'UTC' })}${separator}${date.getUTCDate()}`;
}

describe('while a limit is in force', () => {
  it("holds back the agent's other tasks on the account, visibly, while another agent's task runs", async () => {
    const clock = simulatedAt();
    const engine = await openEngine(dataDir, { clock, env: longLease });
    try {
      const epoch = Math.floor((Date.now() + 2 * 3_600_000) / 1000);
      const limited = await engine.tasks.delegate({ prompt: `first [rate_limit ${epoch} five_hour] [limit_once]` });
      await statusOf(engine, limited.taskId, 'paused');
      const held = await engine.tasks.delegate({ prompt: 'second claude task', priority: 'P0' });
      const demo = await engine.tasks.delegate({ prompt: 'a demo task', agent: 'demo' });
      // The other agent's task runs while the claude one waits, even with a lower priority.
      expect((await engine.settled([demo.taskId]))[0]).toMatchObject({ status: 'completed' });
      const waiting = await engine.tasks.get(held.taskId);
      const paused = await engine.tasks.get(limited.taskId);
      expect(waiting).toMatchObject({ status: 'ready', attempt: 0, heldUntil: paused.resumeAt });
      expect(waiting.waitingFor).toMatch(/^usage limit of claude \(five_hour\) on account /);
      expect(fakeClaudeEvents(dataDir).filter((event) => event.event === 'start')).toHaveLength(1);
      const limits = await engine.tasks.limits();
      expect(limits.holds).toEqual([{ agent: 'claude', account: engine.config.account, until: paused.resumeAt, limitType: 'five_hour', taskId: limited.taskId }]);
      // Visible to a person at the terminal too.
      const status = await cli(['status'], engine.env);
      expect(status.stdout).toContain(`usage limit: claude (five_hour) on account ${engine.config.account} held until ${paused.resumeAt}`);
      expect(status.stdout).toMatch(new RegExp(`${held.taskId}\\s+ready \\(held\\)`));
      const detail = await cli(['status', held.taskId], engine.env);
      expect(detail.stdout).toContain(`held until:  ${paused.resumeAt}`);
      // At the reset both claude tasks run: the paused one resumes its session, the held one starts.
      await advance(clock, Date.parse(paused.resumeAt!) - clock.now() + 1000);
      const done = await engine.settled([limited.taskId, held.taskId]);
      expect(done.map((view) => [view.status, view.attempt])).toEqual([
        ['completed', 2],
        ['completed', 1],
      ]);
      expectResumedSession('first');
      expect((await engine.tasks.limits()).holds).toEqual([]);
    } finally {
      await engine.close();
    }
  }, 60_000);

  it('holds across a kill -9 of the runner during the pause, and the next runner resumes the same session', async () => {
    const env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0' });
    const epoch = Math.floor((Date.now() + 3_600_000) / 1000);
    const queued = await cli(['delegate', `survivor [rate_limit ${epoch} seven_day] [limit_once]`, '--json'], env);
    expect(queued.code, queued.stderr).toBe(0);
    const { taskId } = JSON.parse(queued.stdout) as { taskId: string };
    const store = await openStore(loadConfig(env).databaseUrl);
    try {
      const runner = serve(env);
      children.push(runner);
      await eventually(async () => (await store.getTask(taskId))?.state === 'paused');
      runner.kill('SIGKILL');
      await eventually(() => runner.exitCode !== null || runner.signalCode !== null);
    } finally {
      await store.close();
    }
    // A new runner on a simulated clock starting now: the pause and the hold are in the database.
    const clock = simulatedAt();
    const engine = await openEngine(dataDir, { clock, env: longLease });
    try {
      const paused = await engine.tasks.get(taskId);
      expect(paused.status).toBe('paused');
      const other = await engine.tasks.delegate({ prompt: 'queued behind the limit' });
      const demo = await engine.tasks.delegate({ prompt: 'demo meanwhile', agent: 'demo' });
      expect((await engine.settled([demo.taskId]))[0]!.status).toBe('completed');
      expect(await engine.tasks.get(other.taskId)).toMatchObject({ status: 'ready', heldUntil: paused.resumeAt });
      await advance(clock, Date.parse(paused.resumeAt!) - clock.now() + 1000);
      const done = await engine.settled([taskId, other.taskId]);
      expect(done.map((view) => view.status)).toEqual(['completed', 'completed']);
      expect(done[0]).toMatchObject({ attempt: 2, failReason: null });
      expectResumedSession('survivor');
    } finally {
      await engine.close();
    }
  }, 60_000);
});

describe('budgets', () => {
  it('stops new starts once the daily budget is spent, shows why, and starts them again the next day', async () => {
    const zone = localTimeZone();
    const midnight = startOfNextDay(Date.now(), zone);
    const clock = simulatedAt(midnight - 10 * 60_000);
    const engine = await openEngine(dataDir, { clock, env: { ...longLease, DELEGATE_DAILY_BUDGET_USD: '0.1', DELEGATE_MAX_WORKERS: '1' } });
    try {
      const first = await engine.tasks.delegate({ prompt: 'first [cost 0.085]' });
      await engine.settled([first.taskId]);
      const warned = await engine.tasks.limits();
      expect(warned.budgets).toEqual([{ scope: 'daily', scheduleId: null, spentUsd: 0.085, budgetUsd: 0.1, level: 'warning' }]);
      expect(warned.lines).toEqual(['daily budget: $0.09 of $0.10 (85 %) spent today; warning at 80 %']);
      const second = await engine.tasks.delegate({ prompt: 'second [cost 0.02]' });
      await engine.settled([second.taskId]);
      const spent = await engine.tasks.limits();
      expect(spent.budgets[0]).toMatchObject({ level: 'exhausted' });
      expect(spent.dayEndsAt).toBe(new Date(midnight).toISOString());
      // Nothing starts now, of any agent; nothing is dropped either.
      const third = await engine.tasks.delegate({ prompt: 'third' });
      const demo = await engine.tasks.delegate({ prompt: 'demo', agent: 'demo' });
      const status = await cli(['status'], engine.env);
      expect(status.stdout).toContain(`daily budget: $0.11 of $0.10 (105 %) spent today; no new task starts before ${new Date(midnight).toISOString()}`);
      await advance(clock, 5 * 60_000, 30);
      for (const id of [third.taskId, demo.taskId]) {
        const view = await engine.tasks.get(id);
        expect(view).toMatchObject({ status: 'ready', heldUntil: new Date(midnight).toISOString() });
        expect(view.waitingFor).toBe('daily budget spent: $0.11 of $0.10 today (DELEGATE_DAILY_BUDGET_USD)');
      }
      // The next local day: the day's spend starts from zero and the queue moves.
      await advance(clock, midnight - clock.now() + 1000, 30);
      const done = await engine.settled([third.taskId, demo.taskId]);
      expect(done.map((view) => view.status)).toEqual(['completed', 'completed']);
      expect((await engine.tasks.limits()).budgets[0]).toMatchObject({ level: 'ok' });
    } finally {
      await engine.close();
    }
  }, 60_000);

  it("holds a schedule's tasks once its daily budget is spent while other tasks run", async () => {
    const clock = simulatedAt();
    const engine = await openEngine(dataDir, { clock, env: { ...longLease, DELEGATE_MAX_WORKERS: '1' } });
    try {
      const schedule = await engine.schedules.create({ prompt: 'nightly [cost 0.03]', cronExpression: '* * * * *', dailyBudgetUsd: 0.05 });
      expect(schedule.dailyBudgetUsd).toBe(0.05);
      const fired = async (count: number) =>
        eventually(async () => {
          const runs = await engine.store.scheduleRuns(schedule.scheduleId, 10);
          return runs.filter((run) => run.taskId !== null).length >= count ? runs : null;
        });
      const settledRuns = async (count: number) => {
        const runs = await fired(count);
        await engine.settled(runs.flatMap((run) => (run.taskId ? [run.taskId] : [])));
      };
      await advance(clock, 60_000, 30);
      await settledRuns(1);
      await advance(clock, 60_000, 30);
      await settledRuns(2);
      // $0.06 of $0.05: the next slot's task waits; a task of no schedule still runs.
      const limits = await engine.tasks.limits();
      expect(limits.budgets).toEqual([{ scope: 'schedule', scheduleId: schedule.scheduleId, spentUsd: 0.06, budgetUsd: 0.05, level: 'exhausted' }]);
      await advance(clock, 60_000, 30);
      const runs = await fired(3);
      const heldId = runs.find((run) => run.taskId && run.taskState === 'ready')!.taskId!;
      const plain = await engine.tasks.delegate({ prompt: 'unscheduled' });
      expect((await engine.settled([plain.taskId]))[0]!.status).toBe('completed');
      const held = await engine.tasks.get(heldId);
      expect(held).toMatchObject({ status: 'ready', attempt: 0 });
      expect(held.waitingFor).toBe(`schedule ${schedule.scheduleId} daily budget spent: $0.06 of $0.05 today`);
      await engine.schedules.cancel(schedule.scheduleId);
    } finally {
      await engine.close();
    }
  }, 60_000);

  it('fails a run stopped by its maxBudgetUsd as budget_exceeded', async () => {
    const engine = await openEngine(dataDir);
    try {
      const { taskId } = await engine.tasks.delegate({ prompt: 'expensive [max_budget] [cost 0.02]', maxBudgetUsd: 0.01 });
      const [done] = await engine.settled([taskId]);
      expect(done).toMatchObject({ status: 'failed', failReason: 'budget_exceeded', error: 'the run reached its maxBudgetUsd ($0.0200 spent)', costUsd: 0.02 });
      const start = fakeClaudeEvents(dataDir).find((event) => event.event === 'start')!;
      expect(start.argv.join(' ')).toContain('--max-budget-usd 0.01');
    } finally {
      await engine.close();
    }
  });

  it('refuses a bad schedule budget with one line naming the field', async () => {
    const engine = await openEngine(dataDir, { startRunner: false });
    try {
      for (const value of [-1, 0, 'ten', 2e6]) {
        await expect(engine.schedules.create({ prompt: 'p', cronExpression: '0 2 * * *', dailyBudgetUsd: value })).rejects.toThrow(
          /^dailyBudgetUsd .*: expected a positive number of US dollars, up to 1000000$/,
        );
      }
      expect(await engine.schedules.list()).toEqual([]);
      const env = { ...engine.env, DELEGATE_AUTOSTART: '0' };
      const bad = await cli(['schedule', 'create', 'p', '--cron', '0 2 * * *', '--daily-budget-usd', 'ten'], env);
      expect(bad.code).toBe(2);
      expect(bad.stderr.trim()).toBe("delegate: dailyBudgetUsd 'ten': expected a positive number of US dollars, up to 1000000");
      const good = await cli(['schedule', 'create', 'p', '--cron', '0 2 * * *', '--daily-budget-usd', '2.5', '--json'], env);
      expect(good.code, good.stderr).toBe(0);
      expect(JSON.parse(good.stdout)).toMatchObject({ dailyBudgetUsd: 2.5 });
    } finally {
      await engine.close();
    }
  });
});
