/**
 * Admission control: may this node start another agent now? CPU load comes from systeminformation on an
 * interval (its first call takes a 0.5 s baseline sample, later calls diff since the last one, so it is never
 * called per decision); free memory comes from the OS, which is as cheap as a function call (stack.md §7).
 */
import os from 'node:os';
import si from 'systeminformation';
import type { DelegateConfig } from './config.js';

/** One reading of the machine. */
export interface ResourceSample {
  cpuPercent: number;
  availableBytes: number;
  /** Below the CPU threshold and above the memory reserve. */
  admissible: boolean;
}

/** Memory a Claude Code process and its tools typically need; bounds the derived worker count. */
const perAgentBytes = 512 * 1024 * 1024;

/** DELEGATE_MAX_WORKERS, or as many agents as memory above the reserve holds, at most two per core. */
export function deriveMaxWorkers(config: Pick<DelegateConfig, 'maxWorkers' | 'memoryReserve'>): number {
  if (config.maxWorkers !== undefined) return config.maxWorkers;
  const byMemory = Math.floor((os.totalmem() - config.memoryReserve) / perAgentBytes);
  const byCpu = os.availableParallelism() * 2;
  return Math.max(1, Math.min(byMemory, byCpu));
}

/** Samples CPU and memory against the configured thresholds. */
export class ResourceMonitor {
  constructor(private readonly config: Pick<DelegateConfig, 'cpuThreshold' | 'memoryReserve'>) {}

  async sample(): Promise<ResourceSample> {
    const [load, mem] = await Promise.all([si.currentLoad(), si.mem()]);
    const cpuPercent = Number.isFinite(load.currentLoad) ? load.currentLoad : 0;
    const availableBytes = mem.available || os.freemem();
    return {
      cpuPercent,
      availableBytes,
      admissible: cpuPercent < this.config.cpuThreshold && availableBytes > this.config.memoryReserve,
    };
  }
}
