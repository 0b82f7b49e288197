/**
 * What the machine can hold: the default number of worker slots, and readings of CPU and memory that the
 * supervisor's admission rules (actors/supervisor.machine.ts) turn into "may another agent start now".
 *
 * Readings never start a process. CPU is the busy share of the cores' tick counters between two readings, from
 * `os.cpus()`: systeminformation's `currentLoad()` reads the same counters by starting
 * `sh -c "cat /proc/stat | grep cpu"`, three processes a call, most of an idle runner's CPU on 2 cores. Available
 * memory is systeminformation's `mem().available` on Linux, which reads /proc/meminfo (`MemAvailable`: what the
 * kernel could hand out without swapping, unlike free memory) without a process; elsewhere its `mem()` runs
 * `vm_stat` and `sysctl`, so there it is `os.freemem()`.
 */
import os from 'node:os';
import si from 'systeminformation';
import { fromCallback, type AnyEventObject } from 'xstate';
import type { ResourceReading, SampleResourcesInput } from '../actors/supervisor.machine.js';
import { every, type Clock } from './clock.js';
import type { DelegateConfig } from './config.js';

export type { ResourceReading };

/** Reads the machine. Each probe keeps its own previous CPU counters, so two probes do not disturb each other. */
export interface ResourceProbe {
  read(): ResourceReading | Promise<ResourceReading>;
}

/** Makes a fresh probe; its first reading covers the time since it was made. Injected so tests can use a fake. */
export type ResourceProbeFactory = () => ResourceProbe;

/**
 * Memory budgeted per agent when deriving the default worker count: 1 GiB, Anthropic's recommendation per Agent
 * SDK instance (which runs this same claude CLI): "1GiB RAM, 5GiB of disk, and 1 CPU"
 * (https://docs.claude.com/en/api/agent-sdk/hosting). The claude process alone was reported at 363–487 MiB RSS
 * for fresh sessions on Linux (anthropics/claude-code#61425, v2.1.148, `ps` output) and ~500 MiB at start
 * (#46931, #25855); the rest is headroom for the tools an agent runs (shells, git, test runners, builds).
 */
export const perAgentBytes = 1024 * 1024 * 1024;

/**
 * Agents per core. A claude agent mostly waits on the API, so two per core keep the cores busy; tools that do
 * burn CPU are held back at run time by CPU_THRESHOLD (the supervisor does not grow while the machine is busy).
 */
export const agentsPerCore = 2;

/** What the default worker count is derived from; the machine's by default, a test's otherwise. */
export interface MachineSize {
  cores: number;
  totalBytes: number;
}

/** This machine's size. */
export function machineSize(): MachineSize {
  return { cores: os.availableParallelism(), totalBytes: os.totalmem() };
}

/**
 * DELEGATE_MAX_WORKERS when set; otherwise as many agents as memory above MEMORY_RESERVE holds at
 * `perAgentBytes` each, at most `agentsPerCore` per core, and never fewer than one, so a small machine still
 * runs work (on 2 cores and ≥ 5 GiB: 4 slots).
 */
export function deriveMaxWorkers(config: Pick<DelegateConfig, 'maxWorkers' | 'memoryReserve'>, machine: MachineSize = machineSize()): number {
  if (config.maxWorkers !== undefined) return config.maxWorkers;
  const byMemory = Math.floor((machine.totalBytes - config.memoryReserve) / perAgentBytes);
  const byCpu = machine.cores * agentsPerCore;
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

/** Available memory in bytes, without starting a process (see the header). */
async function availableMemory(): Promise<number> {
  if (process.platform !== 'linux') return os.freemem();
  try {
    return (await si.mem()).available || os.freemem();
  } catch {
    return os.freemem();
  }
}

/** A probe of this machine: one /proc/meminfo read and one `os.cpus()` per reading (tens of µs, no process). */
export function machineProbe(): ResourceProbe {
  let last = cpuTicks();
  return {
    async read() {
      const now = cpuTicks();
      const total = now.total - last.total;
      const cpuPercent = total > 0 ? Math.min(100, Math.max(0, (100 * (now.busy - last.busy)) / total)) : 0;
      last = now;
      return { cpuPercent, availableBytes: await availableMemory() };
    },
  };
}

/**
 * The supervisor's `sampleResources` actor: a fresh probe read every `intervalMs` on `clock`, each reading sent
 * to the supervisor as `report` (RESOURCES for the standing watch, SETTLE_SAMPLE while a new agent settles).
 * Readings are taken on a timer of their own, never on the claim path; stopping the actor stops the timer.
 */
export function resourceSampler(makeProbe: ResourceProbeFactory, clock: Clock) {
  return fromCallback<AnyEventObject, SampleResourcesInput>(({ input, sendBack }) => {
    const probe = makeProbe();
    const stop = every(clock, input.intervalMs, async () => {
      const reading = probe.read();
      // A synchronous probe (a test's) reports within the tick, so a simulated clock sees it at once.
      sendBack({ type: input.report, reading: reading instanceof Promise ? await reading : reading });
    });
    return () => void stop();
  });
}
