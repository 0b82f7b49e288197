/**
 * When a schedule's slots fall: the one place croner is called (research/stack.md §6). Cron patterns are read
 * in the schedule's IANA time zone, so a daily 2am in America/New_York stays 2am across DST: on spring-forward
 * day a slot in the skipped hour fires at 03:00, and on fall-back day a daily slot fires once. Pure functions of
 * their arguments: the statechart gets their results in its events.
 */
import { Cron } from 'croner';

/** What decides a schedule's slots. */
export interface SlotRule {
  cronExpression: string | null;
  /** A one-time schedule's only slot (epoch ms). */
  scheduledAt: number | null;
  timezone: string;
}

/** At most this many missed slots are enumerated after a downtime (a per-second schedule down for a day has 86 400). */
export const maxMissedSlots = 1000;

/** Parsed rules by time zone and pattern: a burst of firings of one pattern parses it once, not three times each. */
const parsedRules = new Map<string, Cron>();
const maxParsedRules = 1000;

/** A croner job that never runs itself; it only answers `nextRun`, a function of its argument alone. */
function cronOf(rule: SlotRule): Cron {
  const key = `${rule.timezone} ${rule.cronExpression ?? ''}`;
  let job = parsedRules.get(key);
  if (!job) {
    if (parsedRules.size >= maxParsedRules) parsedRules.clear();
    job = new Cron(rule.cronExpression ?? '', { timezone: rule.timezone, paused: true });
    parsedRules.set(key, job);
  }
  return job;
}

/**
 * Why a cron expression or time zone is unusable, in one line; null when fine. Croner's own message names the
 * field (`Invalid value for minute: 61`); an unknown time zone is only noticed by `nextRun()`, so it is called.
 */
export function cronProblem(expression: string, timezone: string): string | null {
  let job: Cron;
  try {
    job = new Cron(expression, { timezone: 'UTC', paused: true });
  } catch (error) {
    return `cronExpression '${expression}': ${String((error as Error).message).replace(/^CronPattern: /, '')}`;
  }
  try {
    new Cron(expression, { timezone, paused: true }).nextRun();
  } catch {
    return `timezone '${timezone}': expected an IANA time zone such as UTC or America/New_York`;
  }
  if (job.nextRun() === null) return `cronExpression '${expression}': it never fires (no date matches it)`;
  return null;
}

/** Whether `timezone` is a time zone this runtime knows. */
export function timezoneKnown(timezone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return true;
  } catch {
    return false;
  }
}

/** The first slot strictly after `after` (epoch ms), or null when there is none. */
export function nextSlot(rule: SlotRule, after: number): number | null {
  if (rule.cronExpression === null) return rule.scheduledAt !== null && rule.scheduledAt > after ? rule.scheduledAt : null;
  return cronOf(rule).nextRun(new Date(after))?.getTime() ?? null;
}

/** The next `count` slots after `after`. */
export function nextSlots(rule: SlotRule, after: number, count: number): number[] {
  const slots: number[] = [];
  let from = after;
  while (slots.length < count) {
    const slot = nextSlot(rule, from);
    if (slot === null) break;
    slots.push(slot);
    from = slot;
  }
  return slots;
}

/**
 * The slots from `first` (itself a slot) up to and including `until`, at most `cap` of them, oldest first;
 * `more` says the cap cut the list short. `after` is the first slot past `until` (null when there is none),
 * found on the way; undefined when the cap cut the walk short.
 */
export function slotsThrough(rule: SlotRule, first: number, until: number, cap = maxMissedSlots): { slots: number[]; more: boolean; after?: number | null } {
  const slots: number[] = [];
  let slot: number | null = first;
  while (slot !== null && slot <= until) {
    if (slots.length === cap) return { slots, more: true };
    slots.push(slot);
    slot = nextSlot(rule, slot);
  }
  return { slots, more: false, after: slot };
}
