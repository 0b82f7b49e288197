import { describe, expect, it } from 'vitest';
import os from 'node:os';
import { deriveMaxWorkers, ResourceMonitor } from '../engine/resource-monitor.js';

describe('resource monitor', () => {
  it('reads CPU between samples and applies the thresholds', async () => {
    const lenient = new ResourceMonitor({ cpuThreshold: 100, memoryReserve: 0 });
    const busyUntil = Date.now() + 200;
    while (Date.now() < busyUntil) Math.sqrt(Math.random());
    const sample = await lenient.sample();
    expect(sample.cpuPercent).toBeGreaterThan(0);
    expect(sample.cpuPercent).toBeLessThanOrEqual(100);
    expect(sample.availableBytes).toBeGreaterThan(0);
    expect(sample.admissible).toBe(true);
    // A reserve above the machine's memory is never met.
    expect((await new ResourceMonitor({ cpuThreshold: 100, memoryReserve: os.totalmem() * 2 }).sample()).admissible).toBe(false);
  });

  it('derives the worker count from memory and cores unless configured', () => {
    expect(deriveMaxWorkers({ maxWorkers: 7, memoryReserve: 0 })).toBe(7);
    expect(deriveMaxWorkers({ maxWorkers: undefined, memoryReserve: 0 })).toBe(Math.min(Math.floor(os.totalmem() / 2 ** 29), os.availableParallelism() * 2));
    expect(deriveMaxWorkers({ maxWorkers: undefined, memoryReserve: os.totalmem() * 2 })).toBe(1);
  });
});
