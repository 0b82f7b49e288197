/**
 * Reading a usage limit out of Claude Code's output. The CLI has changed how it says so several times, so the
 * structured signals come first — a stream-json `rate_limit_event` rejected with `resetsAt`, a result with
 * `api_error_status: 429` — and the text forms are a fallback:
 *
 *   Claude AI usage limit reached|1767225600
 *   5-hour limit reached ∙ resets 9pm
 *   You've hit your limit · resets 8pm (Europe/Berlin)
 *   You've hit your session limit · resets 12:50am (America/Los_Angeles)
 *   You've hit your weekly limit · resets Oct 12, 8am (Europe/Paris)
 *   You've hit your limit · resets Apr 23 at 4pm (Asia/Tokyo)
 *
 * Pure: a text form with a wall-clock time comes back as that time, and the engine resolves it against its own
 * clock and zone (engine/wall-clock.ts), so simulated time and the runner's zone apply.
 */
import type { UsageLimitNotice } from '../../engine/agent.js';
import { resolveWallClock, type WallClockTime } from '../../engine/wall-clock.js';

/** The `rateLimitType`s the CLI reports (others are kept as they come). */
export const rateLimitTypes = ['five_hour', 'seven_day', 'seven_day_opus', 'seven_day_sonnet', 'overage'] as const;

/** The oldest form: the reset as epoch seconds after a pipe. */
const EPOCH_FORM = /Claude AI usage limit reached\|(\d{9,})/;

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/**
 * The newer forms: "<what> limit reached" or "You've hit your [<what>] limit", a separator (∙, ·, •, - or |),
 * then "resets [<Mon> <day>[,]] [at] <time> [(<zone>)]". The time is `9pm`, `12:50am` or a 24-hour `21:00`.
 */
const CLOCK_FORM = new RegExp(
  [
    String.raw`(?:(?<what>[\w-]+(?: [\w-]+)?)? ?limit reached|hit your (?<your>(?:[\w-]+ ){0,2})limit)`,
    // \u escapes rather than the characters: the MCP bundle stays ASCII (scripts/bundle-mcp.js).
    String.raw`\s*[\u2219\u00b7\u2022|-]\s*resets\s+`,
    String.raw`(?:(?<month>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?\s+(?<day>\d{1,2})(?:st|nd|rd|th)?,?\s+)?`,
    String.raw`(?:at\s+)?(?<hour>\d{1,2})(?::(?<minute>\d{2}))?\s*(?<ampm>[ap]\.?m\.?)?`,
    String.raw`(?:\s*\((?<zone>[A-Za-z_]+(?:\/[A-Za-z0-9_+-]+)*)\))?`,
  ].join(''),
  'i',
);

/** What kind of limit a text form names, in the structured signal's words. */
function limitTypeOfText(what: string | undefined): string | undefined {
  const words = (what ?? '').toLowerCase();
  if (/5-hour|five|session/.test(words)) return 'five_hour';
  if (/opus/.test(words)) return 'seven_day_opus';
  if (/sonnet/.test(words)) return 'seven_day_sonnet';
  if (/weekly|week/.test(words)) return 'seven_day';
  return undefined;
}

/** The wall-clock time of a matched clock form, or undefined when its numbers are not a time. */
function wallClockOf(groups: Record<string, string | undefined>): WallClockTime | undefined {
  let hour = Number(groups.hour);
  const minute = groups.minute === undefined ? 0 : Number(groups.minute);
  const ampm = groups.ampm?.toLowerCase().replace(/\./g, '');
  if (ampm) {
    if (hour < 1 || hour > 12) return undefined;
    hour = (hour % 12) + (ampm === 'pm' ? 12 : 0);
  } else if (groups.minute === undefined || hour > 23) {
    // A bare number ("resets 9") is not a time we can trust.
    return undefined;
  }
  if (minute > 59) return undefined;
  const time: WallClockTime = { hour, minute };
  if (groups.month && groups.day) {
    const day = Number(groups.day);
    if (day < 1 || day > 31) return undefined;
    time.month = MONTHS.indexOf(groups.month.slice(0, 3).toLowerCase()) + 1;
    time.day = day;
  }
  if (groups.zone) time.zone = groups.zone;
  return time;
}

/** The longest text that can be a limit message itself rather than a report quoting one. */
const MESSAGE_MAX = 200;

/** The forms anchored at the start, optionally after "You've" and an "API Error:" prefix. */
const MESSAGE_START = new RegExp(String.raw`^\s*(?:API Error:\s*)?(?:Claude AI usage limit reached\||(?:You['\u2019]ve\s+)?(?:${CLOCK_FORM.source}))`, 'i');

/**
 * Whether `text` is itself a limit message (short, and starting with one), as opposed to a text that quotes one:
 * a run that ended successfully counts as limited only on such a message.
 */
export function isUsageLimitMessage(text: string): boolean {
  const trimmed = text.trim();
  return trimmed.length <= MESSAGE_MAX && MESSAGE_START.test(trimmed);
}

/** The usage limit a text announces, or undefined when it announces none. */
export function parseUsageLimitText(text: string): UsageLimitNotice | undefined {
  const epoch = EPOCH_FORM.exec(text);
  if (epoch?.[1]) return { source: 'text', resetAt: Number(epoch[1]) * 1000 };
  const clock = CLOCK_FORM.exec(text);
  if (!clock?.groups) return undefined;
  const resetWallClock = wallClockOf(clock.groups);
  if (!resetWallClock) return undefined;
  const limitType = limitTypeOfText(clock.groups.what ?? clock.groups.your);
  return { source: 'text', resetWallClock, ...(limitType ? { limitType } : {}) };
}

/**
 * The limit a stream-json `rate_limit_event` announces: only a `rejected` status is one (`allowed` and
 * `allowed_warning` are information). `resetsAt` is in epoch seconds.
 */
export function parseRateLimitEvent(event: Record<string, unknown>): UsageLimitNotice | undefined {
  const info = event.rate_limit_info;
  if (typeof info !== 'object' || info === null) return undefined;
  const { status, resetsAt, rateLimitType } = info as Record<string, unknown>;
  if (status !== 'rejected') return undefined;
  const notice: UsageLimitNotice = { source: 'rate_limit_event' };
  if (typeof resetsAt === 'number' && Number.isFinite(resetsAt) && resetsAt > 0) notice.resetAt = resetsAt * 1000;
  if (typeof rateLimitType === 'string' && rateLimitType !== '') notice.limitType = rateLimitType;
  return notice;
}

/**
 * The epoch ms at which the limit announced in `text` resets, seen at `now` with `timeZone` for times that
 * name no zone; undefined when the text announces no limit. A convenience of the parser and resolver together.
 */
export function usageLimitResetAt(text: string, now: number, timeZone: string): number | undefined {
  const notice = parseUsageLimitText(text);
  if (!notice) return undefined;
  if (notice.resetAt !== undefined) return notice.resetAt;
  return notice.resetWallClock ? resolveWallClock(notice.resetWallClock, now, timeZone) : undefined;
}
