/**
 * When a runner looks for other processes' commits (engine/database-watch.ts): at once after a write to the
 * database's log, often while writes go on, seldom when there are none, and always often where the directory
 * cannot be watched.
 */
import { appendFileSync, watch } from 'node:fs';
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
  it('brings the next look forward when the log is written while the watch is idle, and not for other files', async () => {
    const file = databaseFile();
    const clock = new SimulatedClock();
    const lookedAt: number[] = [];
    stops.push(watchForCommits(clock, file, { fastMs: 50, slowMs: 1000, activeMs: 500 }, async () => void lookedAt.push(clock.now())));
    const advanceTo = async (end: number, stepMs = 50): Promise<void> => {
      while (clock.now() < end) {
        clock.increment(stepMs);
        await settle();
      }
    };
    await advanceTo(2000);
    expect(lookedAt.at(-1)).toBe(1500);
    // Another file of the directory (the runner's log lives there): once the kernel's notice of it is delivered
    // (a second watch of the directory sees it), 100 ms more bring no look.
    const seen = new Promise<void>((resolve) => {
      const second = watch(path.dirname(file), (_kind, name) => {
        if (name !== 'runner.log') return;
        second.close();
        resolve();
      });
    });
    appendFileSync(path.join(path.dirname(file), 'runner.log'), 'a log line');
    await seen;
    await advanceTo(2100, 2);
    expect(lookedAt.at(-1)).toBe(1500);
    // Then the log: the kernel's notice comes in real time, so simulated time moves in 2 ms steps until a look,
    // which without the notice would come at 2500.
    appendFileSync(`${file}-wal`, 'a commit');
    const deadline = Date.now() + 10_000;
    while (lookedAt.at(-1) === 1500 && Date.now() < deadline) {
      clock.increment(2);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
    expect(lookedAt.at(-1)).toBeGreaterThan(2100);
    expect(lookedAt.at(-1)).toBeLessThan(2500);
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

  it.each([
    ['whose directory cannot be watched', () => path.join(databaseFile(), 'no', 'such', 'dir', 'delegate.db')],
    ['that is no local file (memory, a server)', () => null],
  ])('looks every fastMs for a database %s', async (_what, fileOf) => {
    const clock = new SimulatedClock();
    let looks = 0;
    stops.push(watchForCommits(clock, fileOf(), { fastMs: 50, slowMs: 1000, activeMs: 500 }, async () => void looks++));
    for (let t = 0; t < 2000; t += 50) {
      clock.increment(50);
      await settle();
    }
    expect(looks).toBe(40);
  });
});
