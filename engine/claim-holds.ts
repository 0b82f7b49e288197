/**
 * The claim gate: what may not start now, and why. Usage limits and budgets both feed it, and the claim query
 * takes its verdict (a `ClaimHold`) in one place:
 * - a usage-limit hold on an agent and account (written with the USAGE_LIMIT step) holds back that agent's
 *   tasks on this runner's account until the reset; other agents' tasks run on;
 * - DELEGATE_DAILY_BUDGET_USD: once the runs that ended today (the runner's local day) cost that much, no task
 *   starts until the next day; a schedule's `dailyBudgetUsd` does the same for that schedule's tasks.
 * Nothing is dropped: held tasks stay `ready` and show why they wait. Times come from the injected clock, like
 * timers and run ends, so the spend of "today" and the end of a hold agree with simulated time in tests.
 */
import type { Clock } from './clock.js';
import type { DelegateConfig } from './config.js';
import type { Logger } from './logger.js';
import type { ClaimHold, Store, UsageHold } from './store/store.js';
import { dayBounds } from './wall-clock.js';

/** Share of a budget at which a warning is logged and shown. */
export const budgetWarningShare = 0.8;

/** How long a computed gate is trusted on the claim path before it is read again (ms of the injected clock). */
export const claimGateTtlMs = 1000;

/** Where a budget stands today. */
export type BudgetLevel = 'ok' | 'warning' | 'exhausted';

/** One budget on one day: the whole data dir's (`daily`) or one schedule's. */
export interface BudgetStatus {
  scope: 'daily' | 'schedule';
  /** The schedule, for a schedule's budget. */
  scheduleId: string | null;
  spentUsd: number;
  budgetUsd: number;
  level: BudgetLevel;
}

/** Everything that holds back claims right now, as the gate and the status views see it. */
export interface ClaimLimits {
  /** When it was computed (injected clock). */
  at: number;
  /** The local day budgets count: its first instant and the next day's (epoch ms). */
  dayStart: number;
  nextDayStart: number;
  /** Usage-limit holds in force, every account's. */
  holds: UsageHold[];
  /** Budgets that are set; a schedule's only when it has one. */
  budgets: BudgetStatus[];
}

/** What limits are measured with. */
export interface LimitsOptions {
  /** The account of this process (its holds are the ones that gate its claims). */
  account: string;
  dailyBudgetUsd: number | undefined;
  /** The zone whose days budgets count; default this process's. */
  zone?: string;
}

function levelOf(spentUsd: number, budgetUsd: number): BudgetLevel {
  if (spentUsd >= budgetUsd) return 'exhausted';
  return spentUsd >= budgetUsd * budgetWarningShare ? 'warning' : 'ok';
}

/** Read the limits in force at `now`: holds, and each budget against the spend of the local day. */
export async function readLimits(store: Store, now: number, options: LimitsOptions): Promise<ClaimLimits> {
  const { start: dayStart, end: nextDayStart } = dayBounds(now, options.zone);
  const [holds, scheduleBudgets] = await Promise.all([store.usageHolds(now), store.scheduleBudgets()]);
  const budgets: BudgetStatus[] = [];
  const scheduleIds = Object.keys(scheduleBudgets);
  // The spend query is the costly part: skip it when no budget is set.
  if (options.dailyBudgetUsd !== undefined || scheduleIds.length > 0) {
    const spend = await store.spendSince(dayStart);
    if (options.dailyBudgetUsd !== undefined) {
      budgets.push({ scope: 'daily', scheduleId: null, spentUsd: spend.totalUsd, budgetUsd: options.dailyBudgetUsd, level: levelOf(spend.totalUsd, options.dailyBudgetUsd) });
    }
    for (const scheduleId of scheduleIds) {
      const spentUsd = spend.bySchedule[scheduleId] ?? 0;
      const budgetUsd = scheduleBudgets[scheduleId]!;
      budgets.push({ scope: 'schedule', scheduleId, spentUsd, budgetUsd, level: levelOf(spentUsd, budgetUsd) });
    }
  }
  return { at: now, dayStart, nextDayStart, holds, budgets };
}

/** The claim verdict of `limits` for a runner of `account`. */
export function claimHoldOf(limits: ClaimLimits, account: string): ClaimHold {
  const exhausted = limits.budgets.filter((budget) => budget.level === 'exhausted');
  return {
    all: exhausted.some((budget) => budget.scope === 'daily'),
    agents: [...new Set(limits.holds.filter((hold) => hold.account === account).map((hold) => hold.agent))],
    schedules: exhausted.flatMap((budget) => (budget.scheduleId ? [budget.scheduleId] : [])),
  };
}

/** When the verdict of `limits` for `account` can next loosen by time alone: a hold ends or a new day starts. */
export function nextLoosening(limits: ClaimLimits, account: string): number | null {
  const times = limits.holds.filter((hold) => hold.account === account).map((hold) => hold.until);
  if (limits.budgets.some((budget) => budget.level === 'exhausted')) times.push(limits.nextDayStart);
  return times.length > 0 ? Math.min(...times) : null;
}

/** Why a ready task of `agent` (of schedule `scheduleId`, if any) may not start now, and until when; null when it may. */
export function holdOnTask(limits: ClaimLimits, account: string, task: { agent: string; scheduleId: string | null }): { until: number; reason: string } | null {
  const daily = limits.budgets.find((budget) => budget.scope === 'daily' && budget.level === 'exhausted');
  if (daily) return { until: limits.nextDayStart, reason: `daily budget spent: ${usd(daily.spentUsd)} of ${usd(daily.budgetUsd)} today (DELEGATE_DAILY_BUDGET_USD)` };
  const schedule = task.scheduleId ? limits.budgets.find((budget) => budget.scheduleId === task.scheduleId && budget.level === 'exhausted') : undefined;
  if (schedule) return { until: limits.nextDayStart, reason: `schedule ${schedule.scheduleId} daily budget spent: ${usd(schedule.spentUsd)} of ${usd(schedule.budgetUsd)} today` };
  // This account's hold gates this process's claims; another account's is shown when it is the only one.
  const holds = limits.holds.filter((hold) => hold.agent === task.agent);
  const hold = holds.find((candidate) => candidate.account === account) ?? holds[0];
  if (hold) return { until: hold.until, reason: `usage limit of ${hold.agent}${hold.limitType ? ` (${hold.limitType})` : ''} on account ${hold.account}` };
  return null;
}

/** One line per limit in force and per budget at or past its warning share, for status and the log. */
export function limitLines(limits: ClaimLimits): string[] {
  const lines = limits.holds.map(
    (hold) => `usage limit: ${hold.agent}${hold.limitType ? ` (${hold.limitType})` : ''} on account ${hold.account} held until ${new Date(hold.until).toISOString()}`,
  );
  for (const budget of limits.budgets) {
    const what = budget.scope === 'daily' ? 'daily budget' : `schedule ${budget.scheduleId} daily budget`;
    const share = `${usd(budget.spentUsd)} of ${usd(budget.budgetUsd)} (${Math.floor((budget.spentUsd / budget.budgetUsd) * 100)} %) spent today`;
    if (budget.level === 'exhausted') lines.push(`${what}: ${share}; no new ${budget.scope === 'daily' ? '' : 'scheduled '}task starts before ${new Date(limits.nextDayStart).toISOString()}`);
    else if (budget.level === 'warning') lines.push(`${what}: ${share}; warning at ${budgetWarningShare * 100} %`);
    else lines.push(`${what}: ${share}`);
  }
  return lines;
}

function usd(value: number): string {
  return `$${value.toFixed(2)}`;
}

/**
 * A runner's claim gate: the limits read at most once per {@link claimGateTtlMs} on the claim path, read again
 * at once after a change (`invalidate`: a run ended, another process committed), and a wake-up when a hold
 * ends or a new day starts, so held tasks start without waiting for anything else to happen.
 */
export class ClaimGate {
  #limits: ClaimLimits | null = null;
  #reading: { generation: number; promise: Promise<ClaimLimits> } | null = null;
  /** Bumped by every invalidation, so a read begun before it is not cached. */
  #generation = 0;
  /** Whether the last read found a budget, whose spend a run's end moves (unknown before the first read). */
  #budgeted = true;
  #timer: unknown = null;
  #timerAt: number | null = null;
  /** Budget levels already logged, per day and budget, so each crossing is logged once. */
  readonly #logged = new Map<string, BudgetLevel>();
  #stopped = false;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly options: LimitsOptions,
    private readonly log: Logger,
    /** Called when the gate may have loosened (a hold ended, a new day). */
    private readonly onLoosened: () => void,
  ) {}

  /** From a config: the account and daily budget of this process. */
  static options(config: Pick<DelegateConfig, 'account' | 'dailyBudgetUsd'>, zone?: string): LimitsOptions {
    return { account: config.account, dailyBudgetUsd: config.dailyBudgetUsd, ...(zone ? { zone } : {}) };
  }

  /** What may not be claimed now. */
  async hold(): Promise<ClaimHold> {
    return claimHoldOf(await this.limits(), this.options.account);
  }

  /** The limits, read again when older than the TTL or invalidated. */
  async limits(): Promise<ClaimLimits> {
    const now = this.clock.now();
    const cached = this.#limits;
    if (cached && now >= cached.at && now - cached.at < claimGateTtlMs) return cached;
    // A read that began before an invalidation may miss the change (a hold just committed): read again.
    if (!this.#reading || this.#reading.generation !== this.#generation) {
      const generation = this.#generation;
      const promise = readLimits(this.store, now, this.options).then((limits) => {
        if (generation === this.#generation) this.#limits = limits;
        this.#budgeted = limits.budgets.length > 0;
        this.#report(limits);
        this.#armWake(limits);
        return limits;
      });
      this.#reading = { generation, promise };
      const forget = () => {
        if (this.#reading?.promise === promise) this.#reading = null;
      };
      // The caller sees a failed read; this chain only tidies up.
      promise.then(forget, forget);
    }
    return this.#reading.promise;
  }

  /**
   * A run of this runner ended in state `to`. Its cost moved the day's spend, which matters where a budget is
   * set; a usage limit (`paused`) put a hold on its agent. Otherwise the verdict stands: with short tasks and no
   * budget, reading it again after every run was two queries per task.
   */
  runEnded(to: string): void {
    if (to === 'paused' || this.#budgeted) this.invalidate();
  }

  /** Something that changes the limits happened (a run ended, a task paused, another process committed). */
  invalidate(): void {
    this.#limits = null;
    this.#generation++;
  }

  stop(): void {
    this.#stopped = true;
    if (this.#timer !== null) this.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  /** Log a budget the first time it reaches its warning share or is spent, each day. */
  #report(limits: ClaimLimits): void {
    for (const budget of limits.budgets) {
      const key = `${limits.dayStart}:${budget.scheduleId ?? 'daily'}`;
      const before = this.#logged.get(key) ?? 'ok';
      if (budget.level === before || budget.level === 'ok') continue;
      if (before === 'exhausted') continue;
      this.#logged.set(key, budget.level);
      const fields = { scope: budget.scope, schedule: budget.scheduleId ?? undefined, spentUsd: Number(budget.spentUsd.toFixed(4)), budgetUsd: budget.budgetUsd };
      if (budget.level === 'warning') this.log.warn(`budget at ${budgetWarningShare * 100} %`, fields);
      else this.log.warn('budget spent; no new tasks start until the next day', { ...fields, until: new Date(limits.nextDayStart).toISOString() });
    }
    // Days past are forgotten.
    for (const key of this.#logged.keys()) if (!key.startsWith(`${limits.dayStart}:`)) this.#logged.delete(key);
  }

  /** Wake the claimer when the verdict can next loosen by time alone. */
  #armWake(limits: ClaimLimits): void {
    if (this.#stopped) return;
    const at = nextLoosening(limits, this.options.account);
    if (at === null || at === this.#timerAt) return;
    if (this.#timer !== null) this.clock.clearTimeout(this.#timer);
    this.#timerAt = at;
    this.#timer = this.clock.setTimeout(() => {
      this.#timer = null;
      this.#timerAt = null;
      this.invalidate();
      if (!this.#stopped) this.onLoosened();
    }, Math.max(0, at - this.clock.now()));
  }
}
