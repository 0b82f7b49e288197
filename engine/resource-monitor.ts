/**
 * Admission control: may this node start another agent now? Available memory comes from systeminformation
 * (`mem().available`, from /proc/meminfo: what the kernel could hand out, unlike free memory). CPU load is the
 * busy share of the cores' tick counters between two samples, from `os.cpus()`: systeminformation's
 * `currentLoad()` reads the same counters by starting `sh -c "cat /proc/stat | grep cpu"`, three processes
 * a call, which was most of an idle runner's CPU on 2 cores.
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

/** Busy and total CPU ticks over all cores. */
function cpuTicks(): { busy: number; total: number } {
  let busy = 0;
  let total = 0;
  for (const cpu of os.cpus()) {
    const { user, nice, sys, idle, irq } = cpu.times;
    busy += user + nice + sys + irq;
    total += user + nice + sys + idle + irq;
  }
  return { busy, total };
}

/** Samples CPU and memory against the configured thresholds. */
export class ResourceMonitor {
  private last = cpuTicks();

  constructor(private readonly config: Pick<DelegateConfig, 'cpuThreshold' | 'memoryReserve'>) {}

  async sample(): Promise<ResourceSample> {
    const now = cpuTicks();
    const total = now.total - this.last.total;
    const cpuPercent = total > 0 ? (100 * (now.busy - this.last.busy)) / total : 0;
    this.last = now;
    const mem = await si.mem();
    const availableBytes = mem.available || os.freemem();
    return {
      cpuPercent,
      availableBytes,
      // At most the threshold: CPU_THRESHOLD=100 means never hold back for CPU.
      admissible: cpuPercent <= this.config.cpuThreshold && availableBytes > this.config.memoryReserve,
    };
  }
}
