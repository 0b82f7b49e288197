import { deferred } from './helpers.js';
import { describe, expect, test } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock, waitFor, type AnyEventObject } from 'xstate';
import {
  supervisorMachine,
  supervisorSummary,
  type ClaimedTask,
  type ClaimNextInput,
  type ResourceReading,
  type SampleResourcesInput,
  type SupervisorInput,
  type SupervisorSnapshot,
} from '../actors/supervisor.machine.js';
import {
  workerSlotMachine,
  type HandBackInput,
  type RunAgentInput,
  type SettleInput,
} from '../actors/worker-slot.machine.js';

interface FakeRun {
  input: RunAgentInput;
  send: (event: AnyEventObject) => void;
  cleanedUp: boolean;
}

/** A `sampleResources` actor the test steers: it records each invocation and lets the test send readings. */
interface FakeSampler {
  input: SampleResourcesInput;
  send: (event: AnyEventObject) => void;
  stopped: boolean;
}

const calm: ResourceReading = { cpuPercent: 10, availableBytes: 8 * 2 ** 30 };

/**
 * Fake readers of the machine. With `instant`, a settle sampler reports two equal readings as soon as it is
 * invoked, so a new slot settles at once (tests that are not about settling); otherwise the test sends them.
 */
function fakeSamplers(instant: boolean) {
  const samplers: FakeSampler[] = [];
  const actor = fromCallback<AnyEventObject, SampleResourcesInput>(({ input, sendBack }) => {
    const sampler: FakeSampler = { input, send: sendBack, stopped: false };
    samplers.push(sampler);
    if (instant && input.report === 'SETTLE_SAMPLE') {
      sendBack({ type: 'SETTLE_SAMPLE', reading: calm });
      sendBack({ type: 'SETTLE_SAMPLE', reading: calm });
    }
    return () => {
      sampler.stopped = true;
    };
  });
  return { samplers, actor, live: (report: SampleResourcesInput['report']) => samplers.filter((s) => !s.stopped && s.input.report === report) };
}


const task = (n: number): ClaimedTask => ({ taskId: `task-${n}`, attempt: 1, launch: { n } });

/** A supervisor over fake agents and an in-test queue of ready tasks, on a simulated clock. */
function makeNode(opts: { maxWorkers?: number; tickMs?: number; start?: boolean; instantSettle?: boolean; scaling?: SupervisorInput['scaling'] } = {}) {
  const tickMs = opts.tickMs ?? 1_000;
  const queue: ClaimedTask[] = [];
  const runs: FakeRun[] = [];
  const settled: SettleInput[] = [];
  const handedBack: HandBackInput[] = [];
  const claims: ClaimNextInput[] = [];
  const errors: unknown[] = [];
  // Replaced by a test that needs to hold a claim in flight.
  let claim: () => Promise<ClaimedTask | null> = async () => queue.shift() ?? null;
  const instant = opts.instantSettle !== false;
  const samplers = fakeSamplers(instant);

  const slot = workerSlotMachine.provide({
    actors: {
      runAgent: fromCallback<AnyEventObject, RunAgentInput>(({ input, sendBack, receive }) => {
        const run: FakeRun = { input, send: sendBack, cleanedUp: false };
        runs.push(run);
        if (instant) sendBack({ type: 'AGENT_STARTED', pid: 1000 + runs.length });
        // A cancelled agent's process group dies and the launcher reports its end.
        receive((event) => {
          if (event.type === 'CANCEL') queueMicrotask(() => sendBack({ type: 'AGENT_EXITED', outcome: { end: 'cancelled' } }));
        });
        return () => {
          run.cleanedUp = true;
        };
      }),
      settle: fromPromise<void, SettleInput>(async ({ input }) => {
        settled.push(input);
      }),
      handBack: fromPromise<void, HandBackInput>(async ({ input }) => {
        handedBack.push(input);
      }),
    },
  });
  const machine = supervisorMachine.provide({
    actors: {
      workerSlot: slot,
      claimNext: fromPromise<ClaimedTask | null, ClaimNextInput>(({ input }) => {
        claims.push(input);
        return claim();
      }),
      sampleResources: samplers.actor,
    },
    actions: {
      reportError: (_, params) => errors.push(params.error),
    },
  });
  const clock = new SimulatedClock();
  const actor = createActor(machine, {
    input: { nodeId: 'node-a', maxWorkers: opts.maxWorkers ?? 2, tickMs, ...(opts.scaling ? { scaling: opts.scaling } : {}) },
    clock,
  });
  if (opts.start !== false) actor.start();

  const settledIdle = (s: SupervisorSnapshot) => s.matches({ running: { claims: 'idle' } });
  return {
    actor,
    clock,
    queue,
    runs,
    settled,
    handedBack,
    claims,
    errors,
    samplers,
    setClaim: (fn: () => Promise<ClaimedTask | null>) => {
      claim = fn;
    },
    running: () => runs.filter((r) => !r.cleanedUp).map((r) => r.input.taskId),
    /** Wait until the supervisor rests in `running.claims.idle` and `pred` holds. */
    until: (pred: (s: SupervisorSnapshot) => boolean = () => true) =>
      waitFor(actor, (s) => settledIdle(s) && pred(s), { timeout: 2_000 }),
    /** Finish the agent run of `taskId` successfully. */
    finish: (taskId: string) => {
      const run = runs.find((r) => r.input.taskId === taskId && !r.cleanedUp);
      if (!run) throw new Error(`no live run of ${taskId}`);
      run.send({ type: 'AGENT_EXITED', outcome: { exitCode: 0 } });
    },
  };
}

describe('supervisor machine', () => {
  test('spawns no slot until there is work, then one per task up to maxWorkers', async () => {
    const node = makeNode({ maxWorkers: 3 });
    let snapshot = await node.until();
    expect(snapshot.context.slotIds).toEqual([]);
    expect(supervisorSummary(snapshot)).toEqual({ state: 'idle', slots: 0, idle: 0, busy: 0, settling: null });

    node.queue.push(task(1), task(2), task(3), task(4));
    node.actor.send({ type: 'WAKE' });
    snapshot = await node.until((s) => s.context.slotIds.length === 3 && s.context.settlingSlot === null);
    expect(Object.keys(snapshot.children).filter((id) => id.startsWith('slot-')).sort()).toEqual(['slot-0', 'slot-1', 'slot-2']);
    expect(node.running()).toEqual(['task-1', 'task-2', 'task-3']);
    expect(supervisorSummary(snapshot)).toEqual({ state: 'idle', slots: 3, idle: 0, busy: 3, settling: null });
  });

  test('a burst of 5 ready tasks fills exactly 2 slots; the rest are claimed in order as slots free up', async () => {
    const node = makeNode({ maxWorkers: 2, start: false });
    node.queue.push(task(1), task(2), task(3), task(4), task(5));
    node.actor.start();

    let snapshot = await node.until((s) => Object.keys(s.context.slotRuns).length === 2 && s.context.settlingSlot === null);
    expect(node.running()).toEqual(['task-1', 'task-2']);
    expect(node.claims).toEqual([{ nodeId: 'node-a' }, { nodeId: 'node-a' }]);
    expect(snapshot.context.slotRuns).toEqual({
      'slot-0': { taskId: 'task-1', attempt: 1 },
      'slot-1': { taskId: 'task-2', attempt: 1 },
    });
    expect(supervisorSummary(snapshot)).toMatchObject({ idle: 0, busy: 2 });
    expect(node.runs[0]?.input.launch).toEqual({ n: 1 });

    // WAKE with no idle slot does not claim.
    node.actor.send({ type: 'WAKE' });
    expect(node.actor.getSnapshot().matches({ running: { claims: 'idle' } })).toBe(true);

    node.finish('task-1');
    await node.until((s) => s.context.slotRuns['slot-0']?.taskId === 'task-3');
    expect(node.running()).toEqual(['task-2', 'task-3']);

    node.finish('task-2');
    await node.until((s) => s.context.slotRuns['slot-1']?.taskId === 'task-4');
    node.finish('task-3');
    await node.until((s) => s.context.slotRuns['slot-0']?.taskId === 'task-5');
    expect(node.running()).toEqual(['task-4', 'task-5']);

    node.finish('task-4');
    node.finish('task-5');
    snapshot = await node.until((s) => s.context.idleSlots.length === 2);
    expect(node.runs.map((r) => r.input.taskId)).toEqual(['task-1', 'task-2', 'task-3', 'task-4', 'task-5']);
    expect(node.settled.map((s) => s.taskId)).toEqual(['task-1', 'task-2', 'task-3', 'task-4', 'task-5']);
    expect(snapshot.context.slotRuns).toEqual({});
  });

  test('the tick raises WAKE when the simulated clock advances tickMs', async () => {
    const node = makeNode({ tickMs: 5_000 });
    await node.until();
    const claimsAtStart = node.claims.length;
    node.queue.push(task(1));

    node.clock.increment(4_999);
    expect(node.claims.length).toBe(claimsAtStart);

    node.clock.increment(1);
    await node.until(() => node.running().length === 1);
    expect(node.running()).toEqual(['task-1']);
    const claimsAfterFirstTick = node.claims.length;

    // And again, every tickMs.
    node.clock.increment(5_000);
    await node.until(() => node.claims.length > claimsAfterFirstTick);
    node.clock.increment(5_000);
    await node.until(() => node.claims.length > claimsAfterFirstTick + 1);
  });

  test('TASK_REVOKED aborts the slot running that task; its run is stopped and the slot reused', async () => {
    const node = makeNode({ start: false });
    node.queue.push(task(1), task(2), task(3));
    node.actor.start();
    await node.until((s) => Object.keys(s.context.slotRuns).length === 2);

    // A revocation for another attempt of the task is stale and ignored.
    node.actor.send({ type: 'TASK_REVOKED', taskId: 'task-2', attempt: 7 });
    expect(node.running()).toEqual(['task-1', 'task-2']);

    node.actor.send({ type: 'TASK_REVOKED', taskId: 'task-2', reason: 'cancelled' });
    await node.until((s) => s.context.slotRuns['slot-1']?.taskId === 'task-3');
    expect(node.runs[1]?.cleanedUp).toBe(true);
    expect(node.running()).toEqual(['task-1', 'task-3']);
    expect(node.settled).toEqual([]);
  });

  test('FENCE stops claiming until the node renews; unfencing wakes it', async () => {
    const node = makeNode();
    await node.until();
    node.actor.send({ type: 'FENCE', fenced: true });
    node.queue.push(task(1));
    node.actor.send({ type: 'WAKE' });
    node.clock.increment(1_000);
    await node.until();
    expect(node.running()).toEqual([]);
    node.actor.send({ type: 'FENCE', fenced: false });
    await node.until(() => node.running().length === 1);
    expect(node.running()).toEqual(['task-1']);
  });

  test('RESOURCES holds growth, never reuse; with nothing running one agent starts anyway; admissible again wakes', async () => {
    const node = makeNode({ scaling: { cpuThreshold: 80, memoryReserve: 2 ** 30 } });
    await node.until();
    node.actor.send({ type: 'RESOURCES', reading: { ...calm, cpuPercent: 95 } });
    expect(node.actor.getSnapshot().context.admissible).toBe(false);

    // Nothing runs here: the first agent starts although the machine is busy.
    node.queue.push(task(1));
    node.actor.send({ type: 'WAKE' });
    await node.until((s) => node.running().length === 1 && s.context.settlingSlot === null);

    // A second one would be growth: held while the verdict stands (here: memory at the reserve).
    node.actor.send({ type: 'RESOURCES', reading: { ...calm, availableBytes: 2 ** 30 } });
    node.queue.push(task(2));
    node.actor.send({ type: 'WAKE' });
    node.clock.increment(1_000);
    await node.until();
    expect(node.running()).toEqual(['task-1']);

    // A freed slot takes the next task whatever the verdict: it keeps the number of agents the same.
    node.finish('task-1');
    await node.until(() => node.running().includes('task-2'));
    expect(node.actor.getSnapshot().context.slotIds).toEqual(['slot-0']);

    node.queue.push(task(3));
    node.actor.send({ type: 'RESOURCES', reading: calm });
    await node.until(() => node.running().length === 2);
    expect(node.running()).toEqual(['task-2', 'task-3']);

    // Repeating the same verdict is not a wake-up.
    const claims = node.claims.length;
    node.actor.send({ type: 'RESOURCES', reading: calm });
    expect(node.claims.length).toBe(claims);
  });

  test('a new slot settles before the next is added: its agent starts, then two readings agree', async () => {
    const node = makeNode({ maxWorkers: 3, instantSettle: false, start: false, scaling: { settleBytes: 16 * 2 ** 20, settleCpuPercent: 15 } });
    node.queue.push(task(1), task(2), task(3));
    node.actor.start();
    let snapshot = await node.until((s) => s.context.slotIds.length === 1);
    expect(snapshot.matches({ running: { growth: { settling: 'launching' } } })).toBe(true);
    expect(snapshot.context.settlingSlot).toBe('slot-0');
    expect(node.claims).toHaveLength(1);
    // Readings start only once the agent exists.
    expect(node.samplers.live('SETTLE_SAMPLE')).toHaveLength(0);

    node.runs[0]?.send({ type: 'AGENT_STARTED', pid: 11 });
    snapshot = await node.until((s) => s.matches({ running: { growth: { settling: 'measuring' } } }));
    const [sampler] = node.samplers.live('SETTLE_SAMPLE');
    expect(sampler?.input.intervalMs).toBe(50);
    sampler?.send({ type: 'SETTLE_SAMPLE', reading: { cpuPercent: 60, availableBytes: 8 * 2 ** 30 } });
    // Memory still moving: 100 MiB between readings.
    sampler?.send({ type: 'SETTLE_SAMPLE', reading: { cpuPercent: 55, availableBytes: 8 * 2 ** 30 - 100 * 2 ** 20 } });
    // CPU still moving: 40 points.
    sampler?.send({ type: 'SETTLE_SAMPLE', reading: { cpuPercent: 15, availableBytes: 8 * 2 ** 30 - 100 * 2 ** 20 } });
    snapshot = await node.until();
    expect(snapshot.context.settlingSlot).toBe('slot-0');
    expect(node.claims).toHaveLength(1);

    sampler?.send({ type: 'SETTLE_SAMPLE', reading: { cpuPercent: 10, availableBytes: 8 * 2 ** 30 - 104 * 2 ** 20 } });
    snapshot = await node.until((s) => s.context.slotIds.length === 2);
    expect(sampler?.stopped).toBe(true);
    expect(snapshot.context.settlingSlot).toBe('slot-1');
    expect(node.running()).toEqual(['task-1', 'task-2']);
  });

  test('a settling window ends early when the new run ends, and at settleMaxMs at the latest', async () => {
    const node = makeNode({ maxWorkers: 3, instantSettle: false, start: false, scaling: { settleMaxMs: 2_000 } });
    node.queue.push(task(1), task(2), task(3));
    node.actor.start();
    await node.until((s) => s.context.settlingSlot === 'slot-0');

    // A tiny agent: it is gone before any reading, so there is nothing to wait for.
    node.finish('task-1');
    let snapshot = await node.until((s) => s.context.slotIds.length === 2);
    expect(snapshot.context.settlingSlot).toBe('slot-1');
    // slot-0 was free again and took task-2 at once; the growth went to task-3.
    expect(node.running()).toEqual(['task-2', 'task-3']);

    // An agent that never reports start: the cap ends its window.
    node.queue.push(task(4));
    node.clock.increment(1_999);
    snapshot = await node.until();
    expect(snapshot.context.settlingSlot).toBe('slot-1');
    node.clock.increment(1);
    snapshot = await node.until((s) => s.context.slotIds.length === 3);
    expect(node.running()).toEqual(['task-2', 'task-3', 'task-4']);
  });

  test('idle slots drain once no claim has found work for drainIdleMs, and grow again on new work', async () => {
    const node = makeNode({ maxWorkers: 2, scaling: { drainIdleMs: 5_000 } });
    node.queue.push(task(1), task(2));
    node.actor.send({ type: 'WAKE' });
    await node.until(() => node.running().length === 2);
    node.finish('task-1');
    node.finish('task-2');
    let snapshot = await node.until((s) => s.context.idleSlots.length === 2);
    expect(snapshot.context.drainArmed).toBe(true);

    // Empty ticks on the way do not push the drain back.
    node.clock.increment(4_999);
    snapshot = await node.until();
    expect(snapshot.context.slotIds).toEqual(['slot-0', 'slot-1']);
    node.clock.increment(1);
    snapshot = await node.until((s) => s.context.slotIds.length === 0);
    expect(snapshot.context.drainArmed).toBe(false);

    node.queue.push(task(3));
    node.actor.send({ type: 'WAKE' });
    snapshot = await node.until(() => node.running().includes('task-3'));
    expect(snapshot.context.slotIds).toEqual(['slot-0']);
  });

  test('a claim that finds work disarms the drain; a drain due during a claim is dropped', async () => {
    const node = makeNode({ maxWorkers: 1, scaling: { drainIdleMs: 5_000 } });
    node.queue.push(task(1));
    node.actor.send({ type: 'WAKE' });
    await node.until(() => node.running().length === 1);
    node.finish('task-1');
    await node.until((s) => s.context.drainArmed);

    // The drain falls due while a claim is in flight: the slot may be needed, so it stays.
    const gate = deferred<ClaimedTask | null>();
    node.setClaim(() => gate.promise);
    node.actor.send({ type: 'WAKE' });
    node.clock.increment(5_000);
    expect(node.actor.getSnapshot().context.slotIds).toEqual(['slot-0']);
    gate.resolve(task(2));
    let snapshot = await node.until(() => node.running().includes('task-2'));
    expect(snapshot.context.drainArmed).toBe(false);
    expect(snapshot.context.slotIds).toEqual(['slot-0']);

    node.setClaim(async () => node.queue.shift() ?? null);
    node.clock.increment(10_000);
    snapshot = await node.until();
    expect(snapshot.context.slotIds).toEqual(['slot-0']);
  });

  test('a WAKE during an empty claim claims once more', async () => {
    const node = makeNode();
    await node.until();
    const gate = deferred<ClaimedTask | null>();
    node.setClaim(() => gate.promise);
    node.actor.send({ type: 'WAKE' });
    expect(node.actor.getSnapshot().matches({ running: { claims: 'claiming' } })).toBe(true);

    node.actor.send({ type: 'WAKE' });
    expect(node.actor.getSnapshot().context.wakePending).toBe(true);
    node.setClaim(async () => node.queue.shift() ?? null);
    node.queue.push(task(1));
    const claimsBefore = node.claims.length;
    gate.resolve(null);
    await node.until(() => node.running().length === 1);
    // The retry claimed task-1, then the usual follow-up claim found nothing.
    expect(node.claims.length).toBe(claimsBefore + 2);
  });

  test('an empty claim without a pending WAKE does not claim again', async () => {
    const node = makeNode();
    await node.until();
    const before = node.claims.length;
    node.actor.send({ type: 'WAKE' });
    await node.until();
    expect(node.claims.length).toBe(before + 1);
  });

  test('a failing claim is reported and retried only on the next wake-up', async () => {
    const node = makeNode();
    await node.until();
    node.setClaim(async () => {
      throw new Error('database is locked');
    });
    const before = node.claims.length;
    node.actor.send({ type: 'WAKE' });
    await node.until();
    expect(node.errors).toEqual([new Error('database is locked')]);
    expect(node.claims.length).toBe(before + 1);
  });

  test('SHUTDOWN stops every slot, hands running tasks back, and ends stopped', async () => {
    const node = makeNode({ maxWorkers: 3, start: false });
    node.queue.push(task(1), task(2));
    node.actor.start();
    await node.until((s) => Object.keys(s.context.slotRuns).length === 2 && s.context.settlingSlot === null);
    node.runs[0]?.send({ type: 'AGENT_STARTED', pid: 100 });

    node.actor.send({ type: 'SHUTDOWN' });
    const snapshot = await waitFor(node.actor, (s) => s.status === 'done', { timeout: 2_000 });
    expect(snapshot.value).toBe('stopped');
    expect(snapshot.context.slotIds).toEqual([]);
    expect(node.handedBack).toEqual([
      { taskId: 'task-1', attempt: 1 },
      { taskId: 'task-2', attempt: 1 },
    ]);
    expect(node.runs.every((r) => r.cleanedUp)).toBe(true);
    expect(supervisorSummary(snapshot)).toEqual({ state: 'stopped', slots: 0, idle: 0, busy: 0, settling: null });

    // No more ticks once stopped.
    const claims = node.claims.length;
    node.clock.increment(10_000);
    expect(node.claims.length).toBe(claims);
  });

  test('SHUTDOWN during a claim lets the claimed task reach a slot, which hands it back', async () => {
    const node = makeNode();
    await node.until();
    const gate = deferred<ClaimedTask | null>();
    node.setClaim(() => gate.promise);
    node.actor.send({ type: 'WAKE' });
    node.actor.send({ type: 'SHUTDOWN' });
    expect(node.actor.getSnapshot().matches({ running: { claims: 'claiming' } })).toBe(true);

    gate.resolve(task(9));
    const snapshot = await waitFor(node.actor, (s) => s.status === 'done', { timeout: 2_000 });
    expect(snapshot.value).toBe('stopped');
    expect(node.handedBack).toEqual([{ taskId: 'task-9', attempt: 1 }]);
    expect(node.claims.length).toBe(2);
  });

  test('SHUTDOWN while a slot settles waits for the commit', async () => {
    const node = makeNode({ maxWorkers: 1, start: false });
    const commit = deferred<void>();
    node.queue.push(task(1));
    const slowSettle = workerSlotMachine.provide({
      actors: {
        runAgent: fromCallback<AnyEventObject, RunAgentInput>(({ sendBack }) => {
          sendBack({ type: 'AGENT_EXITED', outcome: 'quick' });
        }),
        settle: fromPromise<void, SettleInput>(() => commit.promise),
        handBack: fromPromise<void, HandBackInput>(async () => {
          throw new Error('must not hand back a settled run');
        }),
      },
    });
    const actor = createActor(
      supervisorMachine.provide({
        actors: {
          workerSlot: slowSettle,
          claimNext: fromPromise<ClaimedTask | null, ClaimNextInput>(async () => node.queue.shift() ?? null),
          sampleResources: fakeSamplers(true).actor,
        },
      }),
      { input: { nodeId: 'n', maxWorkers: 1, tickMs: 1_000 }, clock: new SimulatedClock() },
    ).start();
    await waitFor(actor, (s) => s.context.slotIds.length === 1 && s.matches({ running: { claims: 'idle' } }));
    actor.send({ type: 'SHUTDOWN' });
    expect(actor.getSnapshot().value).toBe('stopping');
    commit.resolve();
    const snapshot = await waitFor(actor, (s) => s.status === 'done', { timeout: 2_000 });
    expect(snapshot.context.slotIds).toEqual([]);
  });

  test('the default claimNext fails loudly and is reported', async () => {
    const errors: unknown[] = [];
    const actor = createActor(
      supervisorMachine.provide({ actors: { sampleResources: fakeSamplers(true).actor }, actions: { reportError: (_, params) => errors.push(params.error) } }),
      { input: { nodeId: 'n', maxWorkers: 1, tickMs: 1_000 }, clock: new SimulatedClock() },
    ).start();
    await waitFor(actor, (s) => s.matches({ running: { claims: 'idle' } }) && errors.length > 0);
    expect(String((errors[0] as Error).message)).toContain('claimNext not provided');
  });
});
