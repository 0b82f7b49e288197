/**
 * The one source of time and of timers. Timestamps written to the database and every timer of the engine (the
 * durable-timer loop, lease renewal, the recovery sweep, idle exit) go through a Clock, so a test drives all of
 * them by moving one simulated clock. The shape is XState's `Clock` plus `now()`, so XState's own
 * `SimulatedClock` is a Clock and the same clock runs the supervisor's delayed events.
 */

/** Time and timers. `setTimeout` returns a handle for `clearTimeout`. */
export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Wall-clock time and Node's timers. */
export const systemClock: Clock = {
  now: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
};

/**
 * Run `work` every `ms` on `clock`, never two at once (a slow round delays the next instead of overlapping it).
 * `work` handles its own errors. Returns a stop function, which resolves once a round in flight has finished.
 */
export function every(clock: Clock, ms: number, work: () => Promise<void>): () => Promise<void> {
  let stopped = false;
  let handle: unknown;
  let current: Promise<void> = Promise.resolve();
  const round = (): void => {
    if (stopped) return;
    current = work().finally(() => {
      if (!stopped) handle = clock.setTimeout(round, ms);
    });
  };
  handle = clock.setTimeout(round, ms);
  return () => {
    stopped = true;
    clock.clearTimeout(handle);
    return current.catch(() => undefined);
  };
}
