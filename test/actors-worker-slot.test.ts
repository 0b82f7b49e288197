import { deferred } from './helpers.js';
import { describe, expect, test } from 'vitest';
import { createActor, fromCallback, fromPromise, SimulatedClock, waitFor, type AnyEventObject } from 'xstate';
import {
  workerSlotMachine,
  type HandBackInput,
  type RunAgentInput,
  type SettleInput,
} from '../actors/worker-slot.machine.js';

/** A fake agent launcher the test steers: it records runs and lets the test send their events. */
function fakeAgents() {
  const runs: Array<{ input: RunAgentInput; send: (event: AnyEventObject) => void; cleanedUp: boolean; cancels: string[] }> = [];
  const runAgent = fromCallback<AnyEventObject, RunAgentInput>(({ input, sendBack, receive }) => {
    const run = { input, send: sendBack, cleanedUp: false, cancels: [] as string[] };
    runs.push(run);
    receive((event) => {
      if (event.type === 'CANCEL') run.cancels.push(String(event.reason));
    });
    return () => {
      run.cleanedUp = true;
    };
  });
  return { runs, runAgent };
}


function makeSlot() {
  const agents = fakeAgents();
  const settled: SettleInput[] = [];
  const handedBack: HandBackInput[] = [];
  const freed: string[] = [];
  const started: Array<{ slotId: string; pid: number }> = [];
  const stopped: string[] = [];
  let settleGate = deferred();
  const machine = workerSlotMachine.provide({
    actors: {
      runAgent: agents.runAgent,
      settle: fromPromise<void, SettleInput>(async ({ input }) => {
        settled.push(input);
        await settleGate.promise;
      }),
      handBack: fromPromise<void, HandBackInput>(async ({ input }) => {
        handedBack.push(input);
      }),
    },
    actions: {
      slotFreed: (_, params) => freed.push(params.slotId),
      slotStarted: (_, params) => started.push(params),
      slotStopped: (_, params) => stopped.push(params.slotId),
    },
  });
  const actor = createActor(machine, { input: { slotId: 'slot-7' }, clock: new SimulatedClock() });
  actor.start();
  return {
    actor,
    agents,
    settled,
    handedBack,
    freed,
    started,
    stopped,
    releaseSettle: () => settleGate.resolve(),
    failSettle: (error: unknown) => settleGate.reject(error),
    resetSettle: () => {
      settleGate = deferred();
    },
  };
}

const assign = { type: 'ASSIGN', taskId: 'task-1', attempt: 3, launch: { prompt: 'hi' } } as const;

describe('worker slot machine', () => {
  test('idle → starting → busy → settling → idle, with one agent run across starting and busy', async () => {
    const slot = makeSlot();
    expect(slot.actor.getSnapshot().value).toBe('idle');

    slot.actor.send(assign);
    expect(slot.actor.getSnapshot().value).toEqual({ active: 'starting' });
    expect(slot.agents.runs).toHaveLength(1);
    expect(slot.agents.runs[0]?.input).toEqual({ taskId: 'task-1', attempt: 3, launch: { prompt: 'hi' } });

    slot.agents.runs[0]?.send({ type: 'AGENT_STARTED', pid: 4242 });
    expect(slot.actor.getSnapshot().value).toEqual({ active: 'busy' });
    expect(slot.actor.getSnapshot().context.pid).toBe(4242);
    // The supervisor measures a new slot's agent from here.
    expect(slot.started).toEqual([{ slotId: 'slot-7', pid: 4242 }]);
    expect(slot.agents.runs).toHaveLength(1);
    expect(slot.agents.runs[0]?.cleanedUp).toBe(false);

    slot.agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: { exitCode: 0 } });
    expect(slot.actor.getSnapshot().value).toBe('settling');
    expect(slot.agents.runs[0]?.cleanedUp).toBe(true);
    expect(slot.settled).toEqual([
      { taskId: 'task-1', attempt: 3, outcome: { kind: 'exited', detail: { exitCode: 0 } } },
    ]);
    expect(slot.freed).toEqual([]);

    slot.releaseSettle();
    const idle = await waitFor(slot.actor, (s) => s.matches('idle'));
    expect(idle.context).toMatchObject({ taskId: null, attempt: null, pid: null, outcome: null, launch: null });
    expect(slot.freed).toEqual(['slot-7']);

    // Ready for the next run.
    slot.actor.send({ ...assign, taskId: 'task-2', attempt: 1 });
    expect(slot.agents.runs).toHaveLength(2);
  });

  test('ABORT kills the run and frees the slot only once the agent is gone, without settling', () => {
    const slot = makeSlot();
    slot.actor.send(assign);
    slot.agents.runs[0]?.send({ type: 'AGENT_STARTED', pid: 1 });
    slot.actor.send({ type: 'ABORT', reason: 'cancelled elsewhere' });
    // Still holding the slot during the kill grace: a new agent here would exceed maxWorkers.
    expect(slot.actor.getSnapshot().value).toEqual({ active: 'aborting' });
    expect(slot.agents.runs[0]?.cancels).toEqual(['cancelled elsewhere']);
    expect(slot.freed).toEqual([]);
    expect(slot.actor.getSnapshot().can(assign)).toBe(false);
    slot.agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: { end: 'cancelled' } });
    expect(slot.actor.getSnapshot().value).toBe('idle');
    expect(slot.agents.runs[0]?.cleanedUp).toBe(true);
    expect(slot.settled).toEqual([]);
    expect(slot.freed).toEqual(['slot-7']);
    expect(slot.actor.getSnapshot().context.taskId).toBeNull();
  });

  test('ABORT while starting also kills the run', () => {
    const slot = makeSlot();
    slot.actor.send(assign);
    slot.actor.send({ type: 'ABORT', reason: 'lease lost' });
    expect(slot.agents.runs[0]?.cancels).toEqual(['lease lost']);
    slot.agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: { end: 'cancelled' } });
    expect(slot.actor.getSnapshot().value).toBe('idle');
    expect(slot.agents.runs[0]?.cleanedUp).toBe(true);
  });

  test('STOP while aborting stops the slot once the agent is gone', () => {
    const slot = makeSlot();
    slot.actor.send(assign);
    slot.actor.send({ type: 'ABORT', reason: 'lease lost' });
    slot.actor.send({ type: 'STOP' });
    expect(slot.actor.getSnapshot().value).toEqual({ active: 'aborting' });
    slot.agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: { end: 'cancelled' } });
    expect(slot.actor.getSnapshot().value).toBe('stopped');
    expect(slot.handedBack).toEqual([]);
    expect(slot.stopped).toEqual(['slot-7']);
  });

  test('STOP while busy kills the run, hands the task back and stops', async () => {
    const slot = makeSlot();
    slot.actor.send(assign);
    slot.agents.runs[0]?.send({ type: 'AGENT_STARTED', pid: 1 });
    slot.actor.send({ type: 'STOP' });
    expect(slot.agents.runs[0]?.cleanedUp).toBe(true);
    const stopped = await waitFor(slot.actor, (s) => s.status === 'done');
    expect(stopped.value).toBe('stopped');
    expect(slot.handedBack).toEqual([{ taskId: 'task-1', attempt: 3 }]);
    expect(slot.settled).toEqual([]);
    expect(slot.stopped).toEqual(['slot-7']);
    expect(slot.freed).toEqual([]);
  });

  test('a failing hand-back still stops the slot', async () => {
    const errors: unknown[] = [];
    const machine = workerSlotMachine.provide({
      actors: {
        runAgent: fakeAgents().runAgent,
        handBack: fromPromise<void, HandBackInput>(async () => {
          throw new Error('database is locked');
        }),
      },
      actions: { reportError: (_, params) => errors.push(params.error) },
    });
    const actor = createActor(machine, { input: { slotId: 's' } }).start();
    actor.send(assign);
    actor.send({ type: 'STOP' });
    await waitFor(actor, (s) => s.status === 'done');
    expect(errors).toHaveLength(1);
  });

  test('STOP and DRAIN in idle stop at once', () => {
    for (const type of ['STOP', 'DRAIN'] as const) {
      const slot = makeSlot();
      slot.actor.send({ type });
      expect(slot.actor.getSnapshot().status).toBe('done');
      expect(slot.stopped).toEqual(['slot-7']);
    }
  });

  test('DRAIN while busy lets the run finish and settle, then stops', async () => {
    const slot = makeSlot();
    slot.actor.send(assign);
    slot.actor.send({ type: 'DRAIN' });
    expect(slot.actor.getSnapshot().value).toEqual({ active: 'starting' });
    expect(slot.agents.runs[0]?.cleanedUp).toBe(false);
    expect(slot.actor.getSnapshot().context.stopRequested).toBe(true);

    slot.agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: 'done' });
    slot.releaseSettle();
    await waitFor(slot.actor, (s) => s.status === 'done');
    expect(slot.settled).toHaveLength(1);
    expect(slot.freed).toEqual([]);
    expect(slot.stopped).toEqual(['slot-7']);
  });

  test('STOP while settling waits for the outcome to be committed, then stops', async () => {
    const slot = makeSlot();
    slot.actor.send(assign);
    slot.agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: 'done' });
    slot.actor.send({ type: 'STOP' });
    expect(slot.actor.getSnapshot().value).toBe('settling');
    slot.releaseSettle();
    await waitFor(slot.actor, (s) => s.status === 'done');
    expect(slot.handedBack).toEqual([]);
    expect(slot.stopped).toEqual(['slot-7']);
  });

  test('a failing settle reports the error and frees the slot', async () => {
    const errors: unknown[] = [];
    const agents = fakeAgents();
    const freed: string[] = [];
    const machine = workerSlotMachine.provide({
      actors: {
        runAgent: agents.runAgent,
        settle: fromPromise<void, SettleInput>(async () => {
          throw new Error('write rejected');
        }),
      },
      actions: {
        reportError: (_, params) => errors.push(params.error),
        slotFreed: (_, params) => freed.push(params.slotId),
      },
    });
    const actor = createActor(machine, { input: { slotId: 's' } }).start();
    actor.send(assign);
    agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: null });
    await waitFor(actor, (s) => s.matches('idle'));
    expect(errors).toEqual([new Error('write rejected')]);
    expect(freed).toEqual(['s']);
  });

  test('a runAgent that throws settles an error outcome', async () => {
    const settled: SettleInput[] = [];
    const machine = workerSlotMachine.provide({
      actors: {
        runAgent: fromCallback<AnyEventObject, RunAgentInput>(() => {
          throw new Error('no pool worker');
        }),
        settle: fromPromise<void, SettleInput>(async ({ input }) => {
          settled.push(input);
        }),
      },
    });
    const actor = createActor(machine, { input: { slotId: 's' } }).start();
    actor.send(assign);
    await waitFor(actor, (s) => s.matches('idle'));
    expect(settled).toEqual([{ taskId: 'task-1', attempt: 3, outcome: { kind: 'error', detail: new Error('no pool worker') } }]);
  });

  test('the default slotFreed/slotStopped work without a parent', async () => {
    const agents = fakeAgents();
    const machine = workerSlotMachine.provide({
      actors: {
        runAgent: agents.runAgent,
        settle: fromPromise<void, SettleInput>(async () => {}),
      },
    });
    const actor = createActor(machine, { input: { slotId: 's' } }).start();
    actor.send(assign);
    actor.send({ type: 'ABORT', reason: 'lease lost' });
    agents.runs[0]?.send({ type: 'AGENT_EXITED', outcome: null });
    actor.send(assign);
    agents.runs[1]?.send({ type: 'AGENT_EXITED', outcome: null });
    await waitFor(actor, (s) => s.matches('idle'));
    actor.send({ type: 'STOP' });
    expect(actor.getSnapshot().status).toBe('done');
  });

  test('ASSIGN is ignored while a run is in flight', () => {
    const slot = makeSlot();
    slot.actor.send(assign);
    expect(slot.actor.getSnapshot().can({ ...assign, taskId: 'task-9' })).toBe(false);
  });

  test('the default runAgent fails loudly when the engine forgot to provide it', async () => {
    const settled: SettleInput[] = [];
    const machine = workerSlotMachine.provide({
      actors: {
        settle: fromPromise<void, SettleInput>(async ({ input }) => {
          settled.push(input);
        }),
      },
    });
    const actor = createActor(machine, { input: { slotId: 's' } }).start();
    actor.send(assign);
    await waitFor(actor, (s) => s.matches('idle'));
    expect(String((settled[0]?.outcome.detail as Error).message)).toContain('runAgent not provided');
  });
});
