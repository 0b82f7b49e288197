/**
 * Reading usage limits: every text form the claude CLI has printed, resolved against a pinned `now` and zone
 * (including zones with DST and a reset that has just passed), the structured rate_limit_event, and how the
 * stream-json parser prefers the structured signal over text. Pure: no processes, no clock.
 */
import { describe, expect, it } from 'vitest';
import { createStreamJsonParser } from '../adapters/agents/claude.js';
import { parseRateLimitEvent, parseUsageLimitText, usageLimitResetAt } from '../adapters/agents/usage-limit.js';
import { maxUsageLimitPauseMs, minUsageLimitPauseMs, outcomeEvent, unknownResetPauseMs, usageLimitMarginMs, usageLimitResumeAt } from '../engine/run-outcome.js';
import type { RunOutcome } from '../engine/pool/protocol.js';
import { dayBounds, resolveWallClock, startOfDay, startOfNextDay, zonedTimeToEpoch } from '../engine/wall-clock.js';

const at = (iso: string) => Date.parse(iso);
const isoOf = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('text forms of a usage limit', () => {
  // 2026-03-10 15:30 UTC: 16:30 in Berlin (CET), 08:30 in Los Angeles (PDT since March 8).
  const now = at('2026-03-10T15:30:00Z');

  it.each([
    ['Claude AI usage limit reached|1767225600', 'UTC', '2026-01-01T00:00:00.000Z'],
    ['5-hour limit reached ∙ resets 9pm', 'UTC', '2026-03-10T21:00:00.000Z'],
    ['5-hour limit reached ∙ resets 9pm', 'Asia/Tokyo', '2026-03-11T12:00:00.000Z'],
    ["You've hit your limit · resets 8pm (Europe/Berlin)", 'UTC', '2026-03-10T19:00:00.000Z'],
    ["You've hit your session limit · resets 12:50am (America/Los_Angeles)", 'UTC', '2026-03-11T07:50:00.000Z'],
    ["You've hit your weekly limit · resets Oct 12, 8am (Europe/Paris)", 'UTC', '2026-10-12T06:00:00.000Z'],
    ["You've hit your limit · resets Apr 23 at 4pm (Asia/Tokyo)", 'UTC', '2026-04-23T07:00:00.000Z'],
    ['You’ve hit your Opus limit · resets Mar 12, 9:15pm', 'America/New_York', '2026-03-13T01:15:00.000Z'],
    ['Weekly limit reached · resets 21:00 (UTC)', 'Europe/Berlin', '2026-03-10T21:00:00.000Z'],
  ])('%s (runner zone %s) resets at %s', (text, zone, expected) => {
    expect(isoOf(usageLimitResetAt(text, now, zone))).toBe(expected);
  });

  it('names the kind of limit when the text does', () => {
    expect(parseUsageLimitText('5-hour limit reached ∙ resets 9pm')?.limitType).toBe('five_hour');
    expect(parseUsageLimitText("You've hit your session limit · resets 12:50am (America/Los_Angeles)")?.limitType).toBe('five_hour');
    expect(parseUsageLimitText("You've hit your weekly limit · resets Oct 12, 8am (Europe/Paris)")?.limitType).toBe('seven_day');
    expect(parseUsageLimitText("You've hit your Opus limit · resets 8pm")?.limitType).toBe('seven_day_opus');
    expect(parseUsageLimitText("You've hit your limit · resets 8pm")?.limitType).toBeUndefined();
  });

  it('keeps a wall-clock reset for the engine to resolve, with its zone', () => {
    expect(parseUsageLimitText("You've hit your weekly limit · resets Oct 12, 8am (Europe/Paris)")).toEqual({
      source: 'text',
      limitType: 'seven_day',
      resetWallClock: { month: 10, day: 12, hour: 8, minute: 0, zone: 'Europe/Paris' },
    });
  });

  it('reads a clock time already past today as tomorrow, unless it passed only moments ago', () => {
    // 16:30 in Berlin: 8am Berlin was hours ago, so it is tomorrow's.
    expect(isoOf(usageLimitResetAt("You've hit your limit · resets 8am (Europe/Berlin)", now, 'UTC'))).toBe('2026-03-11T07:00:00.000Z');
    // 4pm Berlin passed 30 minutes ago: that reset, already past (the engine then pauses briefly).
    expect(isoOf(usageLimitResetAt("You've hit your limit · resets 4pm (Europe/Berlin)", now, 'UTC'))).toBe('2026-03-10T15:00:00.000Z');
    // A date without a year long past is next year's.
    expect(isoOf(usageLimitResetAt("You've hit your weekly limit · resets Jan 5, 8am (UTC)", now, 'UTC'))).toBe('2027-01-05T08:00:00.000Z');
  });

  it('follows DST: the same wall-clock time is a different UTC hour on either side of a change', () => {
    // Los Angeles moved to PDT on 2026-03-08; Berlin moves to CEST on 2026-03-29.
    const beforeLa = at('2026-03-07T12:00:00Z');
    expect(isoOf(usageLimitResetAt('limit reached · resets 9pm (America/Los_Angeles)', beforeLa, 'UTC'))).toBe('2026-03-08T05:00:00.000Z');
    expect(isoOf(usageLimitResetAt('limit reached · resets 9pm (America/Los_Angeles)', now, 'UTC'))).toBe('2026-03-11T04:00:00.000Z');
    const eve = at('2026-03-28T20:00:00Z');
    // 9pm on the 28th is still CET; 8am on the 29th is already CEST.
    expect(isoOf(usageLimitResetAt("You've hit your limit · resets 9pm (Europe/Berlin)", eve, 'UTC'))).toBe('2026-03-28T20:00:00.000Z');
    expect(isoOf(usageLimitResetAt("You've hit your limit · resets 8am (Europe/Berlin)", eve, 'UTC'))).toBe('2026-03-29T06:00:00.000Z');
    // 2:30am does not exist in Los Angeles on 2026-03-08: it lands after the jump.
    expect(isoOf(zonedTimeToEpoch(2026, 3, 8, 2, 30, 'America/Los_Angeles'))).toBe('2026-03-08T10:30:00.000Z');
    // 1:30am happens twice on 2026-11-01 there: the first one.
    expect(isoOf(zonedTimeToEpoch(2026, 11, 1, 1, 30, 'America/Los_Angeles'))).toBe('2026-11-01T08:30:00.000Z');
  });

  it('uses the runner zone for an unknown zone name', () => {
    expect(isoOf(usageLimitResetAt("You've hit your limit · resets 8pm (Mars/Olympus)", now, 'Europe/Berlin'))).toBe('2026-03-10T19:00:00.000Z');
  });

  it('finds no limit in ordinary text or in numbers that are not a time', () => {
    expect(parseUsageLimitText('All tests pass; rate limits are handled in limiter.ts.')).toBeUndefined();
    expect(parseUsageLimitText('limit reached · resets 9')).toBeUndefined();
    expect(parseUsageLimitText('limit reached · resets 13pm')).toBeUndefined();
    expect(parseUsageLimitText("You've hit your limit")).toBeUndefined();
  });
});

describe('local days', () => {
  it('start at local midnight, also on the day DST starts', () => {
    expect(isoOf(startOfDay(at('2026-03-29T12:00:00Z'), 'Europe/Berlin'))).toBe('2026-03-28T23:00:00.000Z');
    // That day has 23 hours.
    expect(isoOf(startOfNextDay(at('2026-03-29T12:00:00Z'), 'Europe/Berlin'))).toBe('2026-03-29T22:00:00.000Z');
    expect(isoOf(startOfNextDay(at('2026-12-31T23:30:00Z'), 'UTC'))).toBe('2027-01-01T00:00:00.000Z');
    expect(resolveWallClock({ hour: 0, minute: 0 }, at('2026-06-01T10:00:00Z'), 'UTC')).toBe(at('2026-06-02T00:00:00Z'));
  });

  // Without a zone, dayBounds reads this process's zone through Date rather than Intl; both must give the same day.
  it.each([
    // A 23-hour and a 25-hour day.
    ['Europe/Berlin', ['2026-03-29T12:00:00Z', '2026-10-25T12:00:00Z', '2026-10-24T22:30:00Z']],
    // DST starts at midnight there: 2026-09-06 begins at 01:00 local; and ends at midnight: 2026-04-05 has two.
    ['America/Santiago', ['2026-09-06T12:00:00Z', '2026-09-05T12:00:00Z', '2026-04-05T12:00:00Z', '2026-04-04T12:00:00Z']],
    ['America/New_York', ['2026-03-08T12:00:00Z', '2026-11-01T04:30:00Z']],
    ['Asia/Kolkata', ['2026-06-01T18:29:59Z', '2026-06-01T18:30:00Z']],
    ['Australia/Lord_Howe', ['2026-04-05T12:00:00Z', '2026-10-04T12:00:00Z']],
    ['UTC', ['2026-12-31T23:30:00Z']],
  ])('in this process\'s zone (TZ=%s) are the same as in that zone named', (zone, instants) => {
    const before = process.env.TZ;
    process.env.TZ = zone;
    try {
      for (const instant of instants) {
        const local = dayBounds(at(instant));
        expect({ instant, start: isoOf(local.start), end: isoOf(local.end) }).toEqual({ instant, start: isoOf(startOfDay(at(instant), zone)), end: isoOf(startOfNextDay(at(instant), zone)) });
      }
    } finally {
      if (before === undefined) delete process.env.TZ;
      else process.env.TZ = before;
    }
  });
});

describe('the structured signal', () => {
  it('reads a rejected rate_limit_event and ignores allowed ones', () => {
    const event = (status: string) => ({ type: 'rate_limit_event', rate_limit_info: { status, resetsAt: 1_767_225_600, rateLimitType: 'seven_day_opus' } });
    expect(parseRateLimitEvent(event('rejected'))).toEqual({ source: 'rate_limit_event', resetAt: 1_767_225_600_000, limitType: 'seven_day_opus' });
    expect(parseRateLimitEvent(event('allowed'))).toBeUndefined();
    expect(parseRateLimitEvent(event('allowed_warning'))).toBeUndefined();
    expect(parseRateLimitEvent({ type: 'rate_limit_event' })).toBeUndefined();
  });

  const feed = (lines: object[]) => {
    const parser = createStreamJsonParser();
    for (const line of lines) parser.pushLine(JSON.stringify(line));
    return parser.result();
  };
  const rejected = { type: 'rate_limit_event', rate_limit_info: { status: 'rejected', resetsAt: 1_767_225_600, rateLimitType: 'five_hour' } };
  const result = (fields: object) => ({ type: 'result', subtype: 'success', is_error: true, session_id: 's', ...fields });

  it('prefers the event over the text of the result', () => {
    expect(feed([rejected, result({ result: 'Claude AI usage limit reached|1700000000' })]).usageLimit).toMatchObject({ source: 'rate_limit_event', resetAt: 1_767_225_600_000, limitType: 'five_hour' });
  });

  it('reads a 429 result, with the reset of the rejected event before it', () => {
    expect(feed([rejected, result({ api_error_status: 429, result: 'API Error: 429' })]).usageLimit).toMatchObject({ resetAt: 1_767_225_600_000, limitType: 'five_hour' });
    // Alone, a 429 says nothing of when: the engine pauses briefly.
    expect(feed([result({ api_error_status: 429, result: 'API Error: 429' })]).usageLimit).toEqual({ source: 'api_error' });
  });

  it('ignores a rejection the run got past, and allowed warnings', () => {
    expect(feed([rejected, result({ is_error: false, result: 'done' })]).usageLimit).toBeUndefined();
    const warning = { type: 'rate_limit_event', rate_limit_info: { status: 'allowed_warning', resetsAt: 1_767_225_600 } };
    expect(feed([warning, result({ is_error: true, result: 'boom' })]).usageLimit).toBeUndefined();
  });

  it('reads a text form from the result, and from assistant text only when the run then fails', () => {
    expect(feed([result({ result: "You've hit your limit · resets 8pm (Europe/Berlin)" })]).usageLimit).toMatchObject({ source: 'text', resetWallClock: { hour: 20, zone: 'Europe/Berlin' } });
    const said = { type: 'assistant', message: { content: [{ type: 'text', text: '5-hour limit reached ∙ resets 9pm' }] } };
    expect(feed([said, result({ result: undefined })]).usageLimit).toMatchObject({ resetWallClock: { hour: 21 } });
    expect(feed([said, result({ is_error: false, result: 'I explained the message "5-hour limit reached ∙ resets 9pm" in the docs, as asked.' })]).usageLimit).toBeUndefined();
    // Text that only quotes a limit message (an agent working on such code) is no limit, even if the run fails.
    const quoting = { type: 'assistant', message: { content: [{ type: 'text', text: 'The banner reads "5-hour limit reached ∙ resets 9pm" in src/banner.ts; fixing the test now.' }] } };
    expect(feed([quoting, result({ result: undefined })]).usageLimit).toBeUndefined();
  });

  it('marks a run stopped by --max-budget-usd', () => {
    const out = feed([result({ subtype: 'error_max_budget_usd', total_cost_usd: 0.51 })]);
    expect(out).toMatchObject({ budgetExceeded: true, isError: true, costUsd: 0.51 });
    expect(out.usageLimit).toBeUndefined();
  });
});

describe('when a paused task resumes', () => {
  const now = at('2026-03-10T15:30:00Z');

  it('is the reset plus a margin, resolved in the runner zone', () => {
    expect(usageLimitResumeAt({ source: 'rate_limit_event', resetAt: now + 3_600_000 }, now, 'UTC')).toBe(now + 3_600_000 + usageLimitMarginMs);
    expect(usageLimitResumeAt({ source: 'text', resetWallClock: { hour: 21, minute: 0 } }, now, 'Europe/Berlin')).toBe(at('2026-03-10T20:00:00Z') + usageLimitMarginMs);
  });

  it('is soon, never never, for a reset already past, an unknown one, or one absurdly far', () => {
    expect(usageLimitResumeAt({ source: 'text', resetAt: now - 5000 }, now, 'UTC')).toBe(now + minUsageLimitPauseMs);
    expect(usageLimitResumeAt({ source: 'api_error' }, now, 'UTC')).toBe(now + unknownResetPauseMs);
    expect(usageLimitResumeAt({ source: 'text', resetAt: now + 365 * 86_400_000 }, now, 'UTC')).toBe(now + maxUsageLimitPauseMs);
  });

  it('turns outcomes into USAGE_LIMIT (with the kind of limit) and budget_exceeded', () => {
    const exited = (result: RunOutcome['result']): RunOutcome => ({ end: 'exited', exitCode: 0, signal: null, result, outputBytes: 0, lastLines: [] });
    expect(outcomeEvent(exited({ sawResult: true, isError: true, usageLimit: { source: 'rate_limit_event', resetAt: now + 1000, limitType: 'seven_day' } }), now, 'UTC')).toEqual({
      type: 'USAGE_LIMIT',
      resetAt: now + 1000 + usageLimitMarginMs,
      at: now,
      limitType: 'seven_day',
    });
    expect(outcomeEvent(exited({ sawResult: true, isError: true, budgetExceeded: true, costUsd: 0.5 }), now, 'UTC')).toMatchObject({
      type: 'AGENT_FAILED',
      reason: 'budget_exceeded',
      error: 'the run reached its maxBudgetUsd ($0.5000 spent)',
    });
  });
});
