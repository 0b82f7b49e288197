/**
 * Wall-clock times in IANA time zones, without a date library: turning "8pm in Europe/Berlin" into an instant,
 * and the boundaries of a local day. Used where a person's time meets the engine's epoch milliseconds: the
 * reset time of a usage-limit message ("resets 8pm (Europe/Berlin)") and the day a daily budget counts.
 * Every function takes `now` and the zone as arguments, so tests pin both.
 */

/** A wall-clock time as a message states it; month and day only when it names a date. */
export interface WallClockTime {
  /** 1–12; with `day`, a date without a year (the next such date). */
  month?: number | undefined;
  day?: number | undefined;
  hour: number;
  minute: number;
  /** IANA zone the time is read in; absent: the runner's zone. */
  zone?: string | undefined;
}

let zoneOfTz: { tz: string | undefined; zone: string } | undefined;

/**
 * The zone of this process (TZ, else the system's). Remembered per value of TZ: building a DateTimeFormat to ask
 * took ~5 ms, on every claim and every run's end.
 */
export function localTimeZone(): string {
  const tz = process.env.TZ;
  const known = zoneOfTz;
  if (known && known.tz === tz) return known.zone;
  const zone = Intl.DateTimeFormat().resolvedOptions().timeZone || 'UTC';
  zoneOfTz = { tz, zone };
  return zone;
}

/** Whether `zone` is an IANA zone this runtime knows. */
export function isKnownZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterOf(zone: string): Intl.DateTimeFormat {
  let formatter = formatters.get(zone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formatters.set(zone, formatter);
  }
  return formatter;
}

/** The calendar fields of instant `at` in `zone`. */
export function zonedParts(at: number, zone: string): { year: number; month: number; day: number; hour: number; minute: number; second: number } {
  const parts: Record<string, number> = {};
  for (const part of formatterOf(zone).formatToParts(new Date(at))) {
    if (part.type !== 'literal') parts[part.type] = Number(part.value);
  }
  return { year: parts.year!, month: parts.month!, day: parts.day!, hour: parts.hour! % 24, minute: parts.minute!, second: parts.second! };
}

/** How far `zone` is ahead of UTC at instant `at`, in ms. */
function offsetAt(at: number, zone: string): number {
  const p = zonedParts(at, zone);
  const asUtc = Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second);
  return asUtc - Math.floor(at / 1000) * 1000;
}

/**
 * The instant at which `zone`'s clocks show this date and time. Month and day may overflow (day 32 is the 1st
 * of the next month), as with Date.UTC. A time skipped by a DST jump lands just after the jump; a time that
 * occurs twice is the earlier one.
 */
export function zonedTimeToEpoch(year: number, month: number, day: number, hour: number, minute: number, zone: string): number {
  const asUtc = Date.UTC(year, month - 1, day, hour, minute);
  // Two rounds settle the offset on either side of a DST change.
  const first = asUtc - offsetAt(asUtc, zone);
  const second = asUtc - offsetAt(first, zone);
  if (second === first) return first;
  const earlier = Math.min(first, second);
  const p = zonedParts(earlier, zone);
  return p.hour === hour && p.minute === minute ? earlier : Math.max(first, second);
}

/**
 * How far in the past a wall-clock time may be and still mean that (just passed) moment rather than its next
 * occurrence: a message about "resets 9pm" read at 9:20pm speaks of the reset that just happened, not of
 * tomorrow's. A reset already past then pauses briefly instead of for a day.
 */
export const justPassedMs = { clock: 3_600_000, date: 86_400_000 } as const;

/**
 * The instant a wall-clock time means, seen at `now`: a time without a date is its next occurrence in the zone
 * (today's, else tomorrow's), a date without a year the next such date — unless it passed only moments ago
 * ({@link justPassedMs}), when it is that past instant.
 */
export function resolveWallClock(time: WallClockTime, now: number, defaultZone: string): number {
  const zone = time.zone && isKnownZone(time.zone) ? time.zone : defaultZone;
  const today = zonedParts(now, zone);
  if (time.month !== undefined && time.day !== undefined) {
    const thisYear = zonedTimeToEpoch(today.year, time.month, time.day, time.hour, time.minute, zone);
    if (thisYear > now - justPassedMs.date) return thisYear;
    return zonedTimeToEpoch(today.year + 1, time.month, time.day, time.hour, time.minute, zone);
  }
  const todayAt = zonedTimeToEpoch(today.year, today.month, today.day, time.hour, time.minute, zone);
  if (todayAt > now - justPassedMs.clock) return todayAt;
  return zonedTimeToEpoch(today.year, today.month, today.day + 1, time.hour, time.minute, zone);
}

/** The first instant of the local day that contains `now` in `zone`. */
export function startOfDay(now: number, zone: string): number {
  const p = zonedParts(now, zone);
  return zonedTimeToEpoch(p.year, p.month, p.day, 0, 0, zone);
}

let lastDay: { zone: string | undefined; tz: string | undefined; start: number; end: number } | undefined;

/**
 * The local day that contains `now` in `zone` (this process's zone when none is given): its first instant and the
 * next day's. The last answer is kept, since every claim and every TaskStatus asks for today's, and working it
 * out costs ~0.1 ms of Intl formatting.
 *
 * This process's own zone is worked out with Date's local-time methods instead: the first Intl.DateTimeFormat of
 * a process maps ~5 MiB of ICU's locale data into memory, which a runner or an MCP server with no budget and no
 * schedule otherwise never needs. Both resolve a midnight skipped by a DST jump to just after it.
 */
export function dayBounds(now: number, zone?: string): { start: number; end: number } {
  const tz = process.env.TZ;
  const last = lastDay;
  if (last && last.zone === zone && last.tz === tz && last.start <= now && now < last.end) return last;
  const day = zone === undefined ? { zone, tz, ...localDayBounds(now) } : { zone, tz, start: startOfDay(now, zone), end: startOfNextDay(now, zone) };
  lastDay = day;
  return day;
}

/** {@link dayBounds} in this process's zone, by Date's local time. */
function localDayBounds(now: number): { start: number; end: number } {
  const start = new Date(now);
  start.setHours(0, 0, 0, 0);
  const end = new Date(now);
  // Hour 24 is the next midnight, or just after it where a DST jump skips it.
  end.setHours(24, 0, 0, 0);
  return { start: start.getTime(), end: end.getTime() };
}

/** The first instant of the local day after the one that contains `now` in `zone`. */
export function startOfNextDay(now: number, zone: string): number {
  const p = zonedParts(now, zone);
  return zonedTimeToEpoch(p.year, p.month, p.day + 1, 0, 0, zone);
}
