/** The one source of time. Timestamps written to the database come from here, so tests can fake time. */
export interface Clock {
  now(): number;
}

/** Wall-clock time. */
export const systemClock: Clock = { now: () => Date.now() };
