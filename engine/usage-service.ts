/**
 * What the agents cost: the engine API behind `delegate usage` and the UsageSummary tool. It sums the cost,
 * turns and tokens of ended runs (every attempt of a task counts: an interrupted run was paid for too) since a
 * time, in total and per day, agent or schedule. Days are calendar days of one time zone, the runner's by
 * default, the same days a daily budget is counted in.
 */
import { z } from 'zod';
import type { TokenCounts } from './agent.js';
import type { Clock } from './clock.js';
import { UsageError } from './errors.js';
import { usageBucketMs, type RunUsageSum, type Store } from './store/store.js';
import { parseSince, shown, storableText } from './task-input.js';
import { localTimeZone } from './wall-clock.js';

/** How a summary can be broken down. */
export const usageGroupings = ['day', 'agent', 'schedule'] as const;
export type UsageGrouping = (typeof usageGroupings)[number];

/** What runs used, summed. */
export interface UsageTotals {
  /** US dollars the agents reported; runs that reported none count as 0. */
  costUsd: number;
  turns: number;
  tokens: TokenCounts;
  /** Runs that ended in the period, whether or not they reported usage. */
  runs: number;
}

/** The sums of one day, agent or schedule. */
export interface UsageGroup extends UsageTotals {
  /** The day (`YYYY-MM-DD` in `timeZone`), the agent's name, or the schedule id (null: tasks no schedule created). */
  key: string | null;
}

/**
 * A usage summary. Fields may be added (budgets: spent against a daily or per-schedule limit) but none removed,
 * so clients keep working.
 */
export interface UsageSummary {
  /** Only runs that ended at or after this time (ISO 8601 UTC); null: every run on record. */
  since: string | null;
  /** When the summary was made (ISO 8601 UTC). */
  until: string;
  by: UsageGrouping | null;
  /** The IANA zone days are counted in. */
  timeZone: string;
  total: UsageTotals;
  /** Days oldest first; agents and schedules costliest first. Empty without `by`. */
  groups: UsageGroup[];
}

const allowedGroupings = `${usageGroupings.slice(0, -1).join(', ')} or ${usageGroupings.at(-1)}`;
const sinceExpected = 'expected an ISO 8601 time (2026-11-30T09:00:00Z) or a duration ago like 90m, 12h or 7d';

/**
 * The query fields, as a zod shape the MCP tool publishes. `label` turns a field name into what the caller typed
 * (`--by` on the command line), so each front door's messages name its own field.
 */
export function usageQueryShape(label: (field: 'since' | 'by') => string = (field) => field) {
  return {
    since: z
      .string({ error: (issue) => `${label('since')} ${shown(issue.input)}: ${sinceExpected}` })
      .superRefine(storableText(label('since'), 'line'))
      .refine((value) => parseSince(value, 0) !== null, { error: (issue) => `${label('since')} ${shown(issue.input)}: ${sinceExpected}` })
      .optional()
      .describe('Only runs that ended since this time: ISO 8601 (2026-11-30T09:00:00Z) or a duration ago (90m, 12h, 7d). Default: every run on record.'),
    by: z
      .enum(usageGroupings, { error: (issue) => `${label('by')} ${shown(issue.input)}: expected ${allowedGroupings}` })
      .optional()
      .describe('Also break the sums down per day (in the runner’s time zone), agent or schedule.'),
  };
}

/** The query as the front doors pass it, unchecked. */
export interface UsageQuery {
  since?: unknown;
  by?: unknown;
}


/** The calendar day (`YYYY-MM-DD`) of `at` in `timeZone`. */
export function dayIn(timeZone: string, at: number): string {
  const parts = dayFormat(timeZone).formatToParts(at);
  const part = (type: Intl.DateTimeFormatPartTypes): string => parts.find((entry) => entry.type === type)?.value ?? '';
  return `${part('year')}-${part('month')}-${part('day')}`;
}

const dayFormats = new Map<string, Intl.DateTimeFormat>();
function dayFormat(timeZone: string): Intl.DateTimeFormat {
  let format = dayFormats.get(timeZone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
    dayFormats.set(timeZone, format);
  }
  return format;
}

const noTokens = (): TokenCounts => ({ input: 0, output: 0, cacheCreation: 0, cacheRead: 0 });
const emptyTotals = (): UsageTotals => ({ costUsd: 0, turns: 0, tokens: noTokens(), runs: 0 });

/** Dollars to a millionth: sums of floats would otherwise show as 0.024599999999999997. */
function roundUsd(usd: number): number {
  return Math.round(usd * 1e6) / 1e6;
}

/** Add one group's sums into `into`. */
function add(into: UsageTotals, sum: RunUsageSum): void {
  into.costUsd += sum.costUsd ?? 0;
  into.turns += sum.numTurns ?? 0;
  into.runs += sum.runs;
  if (sum.tokens) {
    into.tokens.input += sum.tokens.input;
    into.tokens.output += sum.tokens.output;
    into.tokens.cacheCreation += sum.tokens.cacheCreation;
    into.tokens.cacheRead += sum.tokens.cacheRead;
  }
}

/** The usage API over one store. */
export class UsageService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    /** The zone days are counted in; default this process's (the runner's, for a runner). */
    private readonly zone?: string | undefined,
  ) {}

  /** Asked when needed, not at construction: the first DateTimeFormat loads ICU's zone data (~30 ms of a front door's start). */
  private get timeZone(): string {
    return this.zone ?? localTimeZone();
  }

  /** Sum what ended runs used since `since`, broken down `by` day, agent or schedule; bad input is a one-line UsageError. */
  async summary(raw: UsageQuery = {}, label: (field: 'since' | 'by') => string = (field) => field): Promise<UsageSummary> {
    // Each message names its field as `label` spells it, so it is shown as it is (parseInput would prefix the key).
    const parsed = z.object(usageQueryShape(label)).safeParse({ since: raw.since, by: raw.by });
    if (!parsed.success) throw new UsageError('invalid_input', parsed.error.issues[0]?.message ?? 'invalid usage query');
    const input = parsed.data;
    const now = this.clock.now();
    const sinceAt = input.since === undefined ? undefined : parseSince(input.since, now);
    // The schema checked the form; this only narrows the type.
    if (sinceAt === null) throw new UsageError('invalid_input', `${label('since')} ${shown(input.since)}: ${sinceExpected}`);
    const by = input.by ?? null;
    const sums = await this.store.sumRunUsage({ sinceAt, group: by === null ? 'none' : by === 'day' ? 'bucket' : by });
    const total = emptyTotals();
    const groups = new Map<string | null, UsageGroup>();
    for (const sum of sums) {
      add(total, sum);
      if (by === null) continue;
      // Quarter-hour buckets fold into days of any zone, DST and half-hour offsets included.
      const key = by === 'day' ? dayIn(this.timeZone, Number(sum.key) * usageBucketMs) : sum.key === null ? null : String(sum.key);
      let group = groups.get(key);
      if (!group) groups.set(key, (group = { key, ...emptyTotals() }));
      add(group, sum);
    }
    const ordered = [...groups.values()].sort(
      by === 'day' ? (a, b) => String(a.key).localeCompare(String(b.key)) : (a, b) => b.costUsd - a.costUsd || String(a.key ?? '').localeCompare(String(b.key ?? '')),
    );
    for (const totals of [total, ...ordered]) totals.costUsd = roundUsd(totals.costUsd);
    return {
      since: sinceAt === undefined ? null : new Date(sinceAt).toISOString(),
      until: new Date(now).toISOString(),
      by,
      timeZone: this.timeZone,
      total,
      groups: ordered,
    };
  }
}
