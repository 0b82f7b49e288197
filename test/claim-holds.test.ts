/**
 * The claim gate on its own: which tasks a runner of one account may not claim, how budgets reach their
 * levels, and that the gate reads the database at most once per second on the claim path, again after a
 * change, and wakes the claimer when a hold ends or the day turns (simulated clock, a counting fake store).
 */
import { describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { ClaimGate, claimHoldOf, holdOnTask, limitLines, readLimits, type ClaimLimits } from '../engine/claim-holds.js';
import { createLogger } from '../engine/logger.js';
import type { DaySpend, Store, UsageHold } from '../engine/store/store.js';

const t0 = Date.parse('2026-06-01T12:00:00Z');

function fakeStore(state: { holds: UsageHold[]; spend: DaySpend; budgets: Record<string, number> }) {
  const reads = { holds: 0, spend: 0 };
  const store = {
    usageHolds: async (now: number) => {
      reads.holds++;
      return state.holds.filter((hold) => hold.until > now);
    },
    spendSince: async () => {
      reads.spend++;
      return state.spend;
    },
    scheduleBudgets: async () => state.budgets,
  } as unknown as Store;
  return { store, reads };
}

const hold = (overrides: Partial<UsageHold> = {}): UsageHold => ({ agent: 'claude', account: 'me', until: t0 + 3_600_000, limitType: 'five_hour', taskId: 'task-a', ...overrides });

describe('the claim verdict', () => {
  it("holds back this account's limited agents, a spent schedule's tasks, or everything", async () => {
    const { store } = fakeStore({
      holds: [hold(), hold({ agent: 'codex', account: 'someone-else' })],
      spend: { totalUsd: 4, bySchedule: { 'sched-a': 2, 'sched-b': 0.5 } },
      budgets: { 'sched-a': 2, 'sched-b': 1 },
    });
    const limits = await readLimits(store, t0, { account: 'me', dailyBudgetUsd: 5, zone: 'UTC' });
    expect(claimHoldOf(limits, 'me')).toEqual({ all: false, agents: ['claude'], schedules: ['sched-a'] });
    expect(limits.budgets.map((budget) => [budget.scheduleId, budget.level])).toEqual([
      [null, 'warning'],
      ['sched-a', 'exhausted'],
      ['sched-b', 'ok'],
    ]);
    expect(limitLines(limits)).toEqual([
      'usage limit: claude (five_hour) on account me held until 2026-06-01T13:00:00.000Z',
      'usage limit: codex (five_hour) on account someone-else held until 2026-06-01T13:00:00.000Z',
      'daily budget: $4.00 of $5.00 (80 %) spent today; warning at 80 %',
      'schedule sched-a daily budget: $2.00 of $2.00 (100 %) spent today; no new scheduled task starts before 2026-06-02T00:00:00.000Z',
      'schedule sched-b daily budget: $0.50 of $1.00 (50 %) spent today',
    ]);
    expect(holdOnTask(limits, 'me', { agent: 'demo', scheduleId: 'sched-a' })?.reason).toBe('schedule sched-a daily budget spent: $2.00 of $2.00 today');
    expect(holdOnTask(limits, 'me', { agent: 'demo', scheduleId: null })).toBeNull();
    const spent: ClaimLimits = { ...limits, budgets: [{ scope: 'daily', scheduleId: null, spentUsd: 5, budgetUsd: 5, level: 'exhausted' }] };
    expect(claimHoldOf(spent, 'me').all).toBe(true);
  });

  it('reads no spend when no budget is set', async () => {
    const { store, reads } = fakeStore({ holds: [], spend: { totalUsd: 0, bySchedule: {} }, budgets: {} });
    expect((await readLimits(store, t0, { account: 'me', dailyBudgetUsd: undefined, zone: 'UTC' })).budgets).toEqual([]);
    expect(reads.spend).toBe(0);
  });
});

describe('ClaimGate', () => {
  it('reads at most once a second, again after a change, and wakes the claimer when a hold ends', async () => {
    const clock = new SimulatedClock();
    clock.set(t0);
    const state = { holds: [hold({ until: t0 + 5000 })], spend: { totalUsd: 0, bySchedule: {} }, budgets: {} };
    const { store, reads } = fakeStore(state);
    let wakes = 0;
    const gate = new ClaimGate(store, clock, { account: 'me', dailyBudgetUsd: undefined, zone: 'UTC' }, createLogger('test', 'error'), () => wakes++);
    try {
      expect((await gate.hold()).agents).toEqual(['claude']);
      await gate.hold();
      expect(reads.holds).toBe(1);
      gate.invalidate();
      await gate.hold();
      expect(reads.holds).toBe(2);
      clock.increment(1000);
      await gate.hold();
      expect(reads.holds).toBe(3);
      clock.increment(3999);
      expect(wakes).toBe(0);
      clock.increment(1);
      expect(wakes).toBe(1);
      expect((await gate.hold()).agents).toEqual([]);
    } finally {
      gate.stop();
    }
  });

  it('reads again after a run ends only where that can change the verdict: a budget is set, or the run paused at a limit', async () => {
    const clock = new SimulatedClock();
    clock.set(t0);
    const state: { holds: UsageHold[]; spend: DaySpend; budgets: Record<string, number> } = { holds: [], spend: { totalUsd: 0, bySchedule: {} }, budgets: {} };
    const { store, reads } = fakeStore(state);
    const gate = new ClaimGate(store, clock, { account: 'me', dailyBudgetUsd: undefined, zone: 'UTC' }, createLogger('test', 'error'), () => undefined);
    try {
      await gate.hold();
      gate.runEnded('completed');
      gate.runEnded('failed');
      await gate.hold();
      expect(reads.holds).toBe(1);
      // The USAGE_LIMIT step wrote a hold with the pause.
      state.holds = [hold({ until: t0 + 60_000 })];
      gate.runEnded('paused');
      expect((await gate.hold()).agents).toEqual(['claude']);
      expect(reads.holds).toBe(2);
      // A schedule got a budget (another process: seen within the TTL); from then on every run's end counts.
      state.budgets = { 'sched-1': 5 };
      clock.increment(1000);
      await gate.hold();
      expect(reads.holds).toBe(3);
      gate.runEnded('completed');
      await gate.hold();
      expect(reads.holds).toBe(4);
    } finally {
      gate.stop();
    }
  });

  it('logs a budget once when it reaches 80 % and once when it is spent, and wakes at the next day', async () => {
    const clock = new SimulatedClock();
    clock.set(Date.parse('2026-06-01T23:59:00Z'));
    const state = { holds: [], spend: { totalUsd: 8, bySchedule: {} }, budgets: {} };
    const { store } = fakeStore(state);
    const warnings: string[] = [];
    const log = { ...createLogger('test', 'error'), warn: (message: string) => void warnings.push(message) };
    let wakes = 0;
    const gate = new ClaimGate(store, clock, { account: 'me', dailyBudgetUsd: 10, zone: 'UTC' }, log, () => wakes++);
    try {
      await gate.hold();
      gate.invalidate();
      await gate.hold();
      state.spend = { totalUsd: 10, bySchedule: {} };
      gate.invalidate();
      expect((await gate.hold()).all).toBe(true);
      expect(warnings).toEqual(['budget at 80 %', 'budget spent; no new tasks start until the next day']);
      clock.increment(60_000);
      expect(wakes).toBe(1);
    } finally {
      gate.stop();
    }
  });
});
