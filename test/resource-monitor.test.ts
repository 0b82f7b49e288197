import { describe, expect, it } from 'vitest';
import os from 'node:os';
import { agentsPerCore, deriveMaxWorkers, machineProbe, perAgentBytes } from '../engine/resource-monitor.js';

const GiB = 2 ** 30;
const defaults = { maxWorkers: undefined, memoryReserve: GiB };

describe('resource monitor', () => {
  it('reads CPU between readings and available memory', async () => {
    const probe = machineProbe();
    const busyUntil = Date.now() + 200;
    while (Date.now() < busyUntil) Math.sqrt(Math.random());
    const reading = await probe.read();
    expect(reading.cpuPercent).toBeGreaterThan(0);
    expect(reading.cpuPercent).toBeLessThanOrEqual(100);
    expect(reading.availableBytes).toBeGreaterThan(0);
    expect(reading.availableBytes).toBeLessThanOrEqual(os.totalmem());
  });

  it('derives the worker count from memory and cores unless DELEGATE_MAX_WORKERS is set', () => {
    expect(perAgentBytes).toBe(GiB);
    expect(agentsPerCore).toBe(2);
    expect(deriveMaxWorkers({ maxWorkers: 7, memoryReserve: 0 }, { cores: 2, totalBytes: 4 * GiB })).toBe(7);
    // 2 cores with room: the cores bound it.
    expect(deriveMaxWorkers(defaults, { cores: 2, totalBytes: 24 * GiB })).toBe(4);
    // 2 cores, 4 GiB: 3 GiB above the default 1 GiB reserve holds 3 agents.
    expect(deriveMaxWorkers(defaults, { cores: 2, totalBytes: 4 * GiB })).toBe(3);
    expect(deriveMaxWorkers(defaults, { cores: 64, totalBytes: 8 * GiB })).toBe(7);
    // Never fewer than one, however small the machine: work must start.
    expect(deriveMaxWorkers(defaults, { cores: 1, totalBytes: GiB })).toBe(1);
    expect(deriveMaxWorkers({ maxWorkers: undefined, memoryReserve: os.totalmem() * 2 })).toBe(1);
    // This machine, by default.
    expect(deriveMaxWorkers(defaults)).toBe(Math.max(1, Math.min(Math.floor((os.totalmem() - GiB) / GiB), os.availableParallelism() * 2)));
  });
});
