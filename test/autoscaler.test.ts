/**
 * The pool that fits the machine: the supervisor statechart with the engine's own resource sampler
 * (engine/resource-monitor.ts) reading a fake probe on a simulated clock, and fake agents. Admission
 * (CPU_THRESHOLD, MEMORY_RESERVE), settling, the DELEGATE_MAX_WORKERS cap, draining, and the 2-core default.
 */
import { describe, expect, test } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock, waitFor, type AnyEventObject } from 'xstate';
import {
  supervisorMachine,
  type ClaimedTask,
  type ClaimNextInput,
  type GrowthSettledNotice,
  type ResourceReading,
  type ScalingPolicy,
  type SlotAddedNotice,
  type SupervisorSnapshot,
} from '../actors/supervisor.machine.js';
import { workerSlotMachine, type HandBackInput, type RunAgentInput, type SettleInput } from '../actors/worker-slot.machine.js';
import { loadConfig } from '../engine/config.js';
import { deriveMaxWorkers, resourceSampler, type ResourceProbe } from '../engine/resource-monitor.js';

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const calm: ResourceReading = { cpuPercent: 5, availableBytes: 16 * GiB };

/** A probe whose readings the test sets; every probe the sampler makes reads the same machine. */
function fakeMachine(initial: ResourceReading = calm) {
  let reading = initial;
  let reads = 0;
  const probe: ResourceProbe = {
    read: () => {
      reads += 1;
      return reading;
    },
  };
  return {
    makeProbe: () => probe,
    set: (next: Partial<ResourceReading>) => {
      reading = { ...reading, ...next };
    },
    reads: () => reads,
  };
}

/** A node: the supervisor over fake agents that report their start at once and end when the test says. */
function makeNode(opts: { maxWorkers: number; scaling?: Partial<ScalingPolicy>; machine?: ReturnType<typeof fakeMachine>; startAgents?: boolean }) {
  const clock = new SimulatedClock();
  const machine = opts.machine ?? fakeMachine();
  const queue: ClaimedTask[] = [];
  const runs: Array<{ taskId: string; send: (event: AnyEventObject) => void; ended: boolean }> = [];
  const added: Array<SlotAddedNotice & { at: number }> = [];
  const settled: Array<GrowthSettledNotice & { at: number }> = [];
  const drained: string[][] = [];
  const slot = workerSlotMachine.provide({
    actors: {
      runAgent: fromCallback<AnyEventObject, RunAgentInput>(({ input, sendBack }) => {
        runs.push({ taskId: input.taskId, send: sendBack, ended: false });
        if (opts.startAgents !== false) sendBack({ type: 'AGENT_STARTED', pid: 100 + runs.length });
        return () => undefined;
      }),
      settle: fromPromise<void, SettleInput>(async () => undefined),
      handBack: fromPromise<void, HandBackInput>(async () => undefined),
    },
  });
  const actor = createActor(
    supervisorMachine.provide({
      actors: {
        workerSlot: slot,
        claimNext: fromPromise<ClaimedTask | null, ClaimNextInput>(async () => queue.shift() ?? null),
        sampleResources: resourceSampler(machine.makeProbe, clock),
      },
      actions: {
        slotAdded: (_, params) => added.push({ ...params, at: clock.now() }),
        growthSettled: (_, params) => settled.push({ ...params, at: clock.now() }),
        slotsDrained: (_, params) => drained.push(params.slotIds),
      },
    }),
    { input: { nodeId: 'node-a', maxWorkers: opts.maxWorkers, tickMs: 10_000, scaling: { ...opts.scaling } }, clock },
  ).start();
  const resting = (s: SupervisorSnapshot) => s.matches({ running: { claims: 'idle' } });
  const node = {
    actor,
    clock,
    machine,
    queue,
    added,
    settled,
    drained,
    busy: () => runs.filter((run) => !run.ended).map((run) => run.taskId),
    until: (pred: (s: SupervisorSnapshot) => boolean = () => true) => waitFor(actor, (s) => resting(s) && pred(s), { timeout: 2_000 }),
    /** Queue `n` tasks and wake the supervisor, as a burst submitted at once. */
    submit(n: number) {
      const first = queue.length + runs.length + 1;
      for (let i = 0; i < n; i++) queue.push({ taskId: `task-${first + i}`, attempt: 1, launch: null });
      actor.send({ type: 'WAKE' });
    },
    finish(taskId: string) {
      const run = runs.find((r) => r.taskId === taskId && !r.ended);
      if (!run) throw new Error(`no live run of ${taskId}`);
      run.ended = true;
      run.send({ type: 'AGENT_EXITED', outcome: { exitCode: 0 } });
    },
    /** Move the simulated clock in steps of `stepMs`, letting the sampler's async rounds re-arm between steps. */
    async advance(totalMs: number, stepMs: number) {
      for (let t = 0; t < totalMs; t += stepMs) {
        clock.increment(stepMs);
        await node.until();
      }
    },
  };
  return node;
}

describe('autoscaler', () => {
  test('100 tasks submitted at once start in steps: one new slot per settled reading pair, up to the cap', async () => {
    const node = makeNode({ maxWorkers: 4, scaling: { settleSampleMs: 50, settleMaxMs: 2_000 } });
    node.submit(100);
    await node.until((s) => s.context.slotIds.length === 1);
    // Only the first agent starts at once.
    expect(node.busy()).toEqual(['task-1']);

    // Readings every 50 ms agree at once here (a calm fake machine): each step takes two readings, 100 ms.
    await node.advance(400, 50);
    const snapshot = await node.until((s) => s.context.slotIds.length === 4 && s.context.settlingSlot === null);
    expect(node.added.map((a) => [a.slotId, a.at])).toEqual([
      ['slot-0', 0],
      ['slot-1', 100],
      ['slot-2', 200],
      ['slot-3', 300],
    ]);
    expect(node.settled.map((s) => s.end)).toEqual(['measured', 'measured', 'measured', 'measured']);
    expect(node.busy()).toEqual(['task-1', 'task-2', 'task-3', 'task-4']);
    // The cap (DELEGATE_MAX_WORKERS): no fifth slot however long the queue.
    await node.advance(1_000, 50);
    expect(snapshot.context.slotIds).toHaveLength(4);
    expect(node.busy()).toHaveLength(4);

    // Steady state: a finished run's slot takes the next task at once, with no settling window.
    node.finish('task-2');
    const reused = await node.until(() => node.busy().includes('task-5'));
    expect(reused.context.settlingSlot).toBeNull();
    expect(node.added).toHaveLength(4);
  });

  test('the settling window waits while the new agent is still moving, and ends at settleMaxMs at the latest', async () => {
    const node = makeNode({ maxWorkers: 3, scaling: { settleSampleMs: 50, settleMaxMs: 2_000, settleBytes: 16 * MiB, settleCpuPercent: 15 } });
    node.submit(3);
    await node.until((s) => s.context.settlingSlot === 'slot-0');
    // The new agent loads: memory falls by 40 MiB per reading, one core busy.
    let available = 16 * GiB;
    for (let i = 0; i < 6; i++) {
      available -= 40 * MiB;
      node.machine.set({ availableBytes: available, cpuPercent: 50 });
      await node.advance(50, 50);
    }
    expect(node.added).toHaveLength(1);
    // Loaded: memory still, CPU back down. Two readings later the window ends.
    node.machine.set({ cpuPercent: 6 });
    await node.advance(100, 50);
    await node.until((s) => s.context.slotIds.length === 2);
    expect(node.settled[0]).toMatchObject({ slotId: 'slot-0', end: 'measured', at: 400 });

    // A machine that never looks settled: the cap ends the window.
    for (let t = 0; t < 2_000; t += 50) {
      // Jumping by 50 points, though under CPU_THRESHOLD (which would hold growth on its own).
      node.machine.set({ cpuPercent: t % 100 === 0 ? 60 : 10 });
      await node.advance(50, 50);
    }
    await node.until((s) => s.context.slotIds.length === 3);
    expect(node.settled[1]).toMatchObject({ slotId: 'slot-1', end: 'capped', at: 400 + 2_000 });
  });

  test('a tiny agent ends its window as soon as its run ends', async () => {
    const node = makeNode({ maxWorkers: 2, startAgents: false });
    node.submit(3);
    await node.until((s) => s.context.settlingSlot === 'slot-0');
    node.finish('task-1');
    await node.until((s) => s.context.slotIds.length === 2);
    expect(node.settled[0]).toMatchObject({ slotId: 'slot-0', end: 'ended', at: 0 });
    expect(node.busy()).toEqual(['task-2', 'task-3']);
  });

  test('CPU_THRESHOLD holds growth, and the pool grows again once CPU is back under it', async () => {
    const machine = fakeMachine({ cpuPercent: 95, availableBytes: 16 * GiB });
    const node = makeNode({ maxWorkers: 4, machine, scaling: { cpuThreshold: 80, watchMs: 1_000 } });
    node.submit(10);
    // Nothing ran here: one agent starts although the machine is busy.
    await node.until((s) => s.context.slotIds.length === 1);
    await node.advance(3_000, 50);
    expect(node.busy()).toEqual(['task-1']);
    expect(node.actor.getSnapshot().context.admissible).toBe(false);
    // Running work is never held back: the agent finishes and its slot takes the next task.
    node.finish('task-1');
    await node.until(() => node.busy().includes('task-2'));

    machine.set({ cpuPercent: 30 });
    await node.advance(1_000, 50);
    await node.until((s) => s.context.slotIds.length === 2);
    expect(node.busy()).toEqual(['task-2', 'task-3']);
  });

  test('MEMORY_RESERVE holds growth while available memory is at or below it', async () => {
    const machine = fakeMachine({ cpuPercent: 5, availableBytes: GiB });
    const node = makeNode({ maxWorkers: 4, machine, scaling: { memoryReserve: GiB, watchMs: 1_000 } });
    node.submit(10);
    await node.until((s) => s.context.slotIds.length === 1);
    await node.advance(3_000, 50);
    expect(node.busy()).toEqual(['task-1']);

    machine.set({ availableBytes: 3 * GiB });
    await node.advance(1_500, 50);
    await node.until((s) => s.context.slotIds.length >= 2);
    expect(node.busy().slice(0, 2)).toEqual(['task-1', 'task-2']);
  });

  test('slots drain when the queue is idle, and the pool grows from zero on new work', async () => {
    const node = makeNode({ maxWorkers: 2, scaling: { drainIdleMs: 5_000 } });
    node.submit(2);
    await node.advance(200, 50);
    await node.until((s) => s.context.slotIds.length === 2);
    node.finish('task-1');
    node.finish('task-2');
    await node.until((s) => s.context.idleSlots.length === 2);
    await node.advance(5_000, 250);
    const drained = await node.until((s) => s.context.slotIds.length === 0);
    expect(node.drained).toEqual([['slot-0', 'slot-1']]);
    expect(Object.keys(drained.children).filter((id) => id.startsWith('slot-'))).toEqual([]);

    node.submit(1);
    await node.until(() => node.busy().includes('task-3'));
    expect(node.actor.getSnapshot().context.slotIds).toEqual(['slot-0']);
  });

  test('on 2 cores with the default configuration, work starts at once even with the CPU pegged', async () => {
    const config = loadConfig({ HOME: '/tmp', DELEGATE_DATA_DIR: '/tmp/delegate-autoscaler-test' });
    expect(config).toMatchObject({ cpuThreshold: 80, memoryReserve: GiB, maxWorkers: undefined });
    const maxWorkers = deriveMaxWorkers(config, { cores: 2, totalBytes: 4 * GiB });
    expect(maxWorkers).toBe(3);
    const machine = fakeMachine({ cpuPercent: 100, availableBytes: 512 * MiB });
    const node = makeNode({ maxWorkers, machine, scaling: { cpuThreshold: config.cpuThreshold, memoryReserve: config.memoryReserve } });
    // A first reading already says "busy" before the work arrives.
    await node.advance(1_000, 50);
    expect(node.actor.getSnapshot().context.admissible).toBe(false);
    node.submit(5);
    await node.until(() => node.busy().length === 1);
    expect(node.busy()).toEqual(['task-1']);
    expect(node.added[0]).toMatchObject({ slotId: 'slot-0', at: 1_000 });
  });
});
