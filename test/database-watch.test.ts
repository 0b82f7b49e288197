/**
 * When a runner looks for other processes' commits (engine/database-watch.ts): at once after a write to the
 * database's log, often while writes go on, seldom when there are none, and always often where the directory
 * cannot be watched.
 */
import { appendFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { systemClock } from '../engine/clock.js';
import { watchForCommits } from '../engine/database-watch.js';
import { removeDir, tempDir } from './helpers.js';

const stops: Array<() => Promise<void>> = [];
const dirs: string[] = [];

afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
  for (const dir of dirs.splice(0)) removeDir(dir);
});

function databaseFile(): string {
  const dir = tempDir('delegate-watch-');
  dirs.push(dir);
  return path.join(dir, 'delegate.db');
}

/** Lets a look's promise settle and the next one be scheduled. */
const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('watching a database file for commits', () => {
  it('looks soon after a write to the log, though the polls are a minute apart', async () => {
    const file = databaseFile();
    let looks = 0;
    let looked!: () => void;
    const lookedOnce = new Promise<void>((resolve) => (looked = resolve));
    stops.push(
      watchForCommits(systemClock, file, { fastMs: 60_000, slowMs: 60_000, activeMs: 500 }, async () => {
        looks++;
        looked();
      }),
    );
    appendFileSync(`${file}-wal`, 'a commit');
    await lookedOnce;
    expect(looks).toBe(1);
  });

  it('looks every fastMs while there were writes within activeMs, then every slowMs', async () => {
    const file = databaseFile();
    const clock = new SimulatedClock();
    const lookedAt: number[] = [];
    stops.push(watchForCommits(clock, file, { fastMs: 50, slowMs: 1000, activeMs: 500 }, async () => void lookedAt.push(clock.now())));
    for (let t = 0; t < 3000; t += 50) {
      clock.increment(50);
      await settle();
    }
    // Start counts as a write: fast looks for its first 500 ms, then one a second.
    expect(lookedAt).toEqual([50, 100, 150, 200, 250, 300, 350, 400, 450, 500, 1500, 2500]);
  });

  it('looks every fastMs where the directory cannot be watched', async () => {
    const clock = new SimulatedClock();
    const missing = path.join(databaseFile(), 'no', 'such', 'dir', 'delegate.db');
    let looks = 0;
    stops.push(watchForCommits(clock, missing, { fastMs: 50, slowMs: 1000, activeMs: 500 }, async () => void looks++));
    for (let t = 0; t < 2000; t += 50) {
      clock.increment(50);
      await settle();
    }
    expect(looks).toBe(40);
  });

  it('looks every fastMs for a database that is no local file', async () => {
    const clock = new SimulatedClock();
    let looks = 0;
    stops.push(watchForCommits(clock, null, { fastMs: 50, slowMs: 1000, activeMs: 500 }, async () => void looks++));
    for (let t = 0; t < 2000; t += 50) {
      clock.increment(50);
      await settle();
    }
    expect(looks).toBe(40);
  });
});
