/**
 * A burst against a real runner with real (fake claude) agents: tasks queued before the runner starts all
 * complete, never more than DELEGATE_MAX_WORKERS at once, and the pool grows in steps — each new slot only
 * after the previous new slot's agent had started (so its readings could settle) — not all at once.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { EngineEvent } from '../engine/events.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { removeDir, tempDir } from './helpers.js';

let dataDir: string;
let engine: EngineHarness;

beforeEach(async () => {
  dataDir = tempDir();
  // The settling cap far away: every step here is ended by readings or by a run's end, never by time.
  engine = await openEngine(dataDir, { env: { DELEGATE_MAX_WORKERS: '4' }, timing: { settleMaxMs: 60_000 }, startRunner: false });
});

afterEach(async () => {
  await engine.close();
  removeDir(dataDir);
});

/** The slot part of a slot event's actor id (`node-…/slot-2` → `slot-2`). */
const slotOf = (event: EngineEvent) => event.actorId.slice(event.actorId.lastIndexOf('/') + 1);

describe('pool growth with real agents', () => {
  it('starts a burst of queued tasks in steps and completes them all', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 24; i++) ids.push((await engine.tasks.delegate({ prompt: `task ${i} [sleep 150]` })).taskId);
    await engine.startRunner();
    const views = await engine.settled(ids, 60_000);
    expect(views.map((view) => view.status)).toEqual(ids.map(() => 'completed'));

    const slotEvents = engine.events.filter((event) => event.kind === 'slot');
    // The order slots joined the pool in, and where in the event stream each joined and first ran an agent.
    const joined: string[] = [];
    for (const event of slotEvents) if (!joined.includes(slotOf(event))) joined.push(slotOf(event));
    expect(joined.sort()).toEqual(['slot-0', 'slot-1', 'slot-2', 'slot-3']);
    const firstIndex = (slot: string, type?: string) => slotEvents.findIndex((event) => slotOf(event) === slot && (type === undefined || event.type === type));
    const order = [...joined].sort((a, b) => firstIndex(a) - firstIndex(b));
    for (let k = 1; k < order.length; k++) {
      const previous = order[k - 1] as string;
      const current = order[k] as string;
      // Growth waits for the previous new agent to exist (then for readings, or its end) before adding a slot.
      expect(firstIndex(previous, 'slot:busy')).toBeGreaterThanOrEqual(0);
      expect(firstIndex(previous, 'slot:busy')).toBeLessThan(firstIndex(current));
    }

    // Never more than 4 agents at once: replay the slots' states.
    const state = new Map<string, string>();
    let peak = 0;
    for (const event of slotEvents) {
      state.set(slotOf(event), event.to ?? '');
      peak = Math.max(peak, [...state.values()].filter((to) => to === 'starting' || to === 'busy').length);
    }
    expect(peak).toBeLessThanOrEqual(4);
  });
});
