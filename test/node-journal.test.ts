/**
 * The journal of a node's live actors (engine/node-journal.ts) writes what changed: a supervisor that takes the
 * same snapshot again at every resource reading writes nothing more, so an idle runner does not commit; and a
 * batch whose commit went unanswered is read back and written again only if it was not saved.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { InspectionEvent } from 'xstate';
import { systemClock } from '../engine/clock.js';
import { StoreError } from '../engine/errors.js';
import { EventBus } from '../engine/events.js';
import { createLogger } from '../engine/logger.js';
import { NodeJournal } from '../engine/node-journal.js';
import { openStore, type ActorSnapshotRow, type NewEngineEvent, type Store } from '../engine/store/store.js';
import { removeDir, tempDir } from './helpers.js';

function recordingStore(): { store: Store; writes: Array<{ events: readonly NewEngineEvent[]; snapshots: readonly ActorSnapshotRow[] }> } {
  const writes: Array<{ events: readonly NewEngineEvent[]; snapshots: readonly ActorSnapshotRow[] }> = [];
  // Only what the journal calls.
  const store = { recordNodeActors: async (events: readonly NewEngineEvent[], snapshots: readonly ActorSnapshotRow[]) => void writes.push({ events, snapshots }) } as unknown as Store;
  return { store, writes };
}

function snapshotOf(id: string, value: unknown, context: Record<string, unknown>, event = 'RESOURCES'): InspectionEvent {
  return { type: '@xstate.snapshot', actorRef: { id }, snapshot: { value, context }, event: { type: event } } as unknown as InspectionEvent;
}

describe('the node journal', () => {
  it('writes a snapshot once, and again only when it changed', async () => {
    const { store, writes } = recordingStore();
    const journal = new NodeJournal(store, systemClock, new EventBus(), 'node-1', createLogger('test', 'error'));
    journal.inspect(snapshotOf('supervisor', 'running', { admissible: true, slots: 1 }));
    await journal.flush();
    // The same again, as a new object (XState assigns a new context at every reading).
    journal.inspect(snapshotOf('supervisor', 'running', { admissible: true, slots: 1 }));
    await journal.flush();
    journal.inspect(snapshotOf('supervisor', 'running', { admissible: false, slots: 1 }));
    await journal.flush();
    await journal.close();

    expect(writes.map((write) => write.snapshots.map((row) => JSON.parse(row.snapshot).context.admissible))).toEqual([[true], [false]]);
    expect(writes.every((write) => write.snapshots.every((row) => row.actorId === 'node-1/supervisor'))).toBe(true);
  });

  it('writes a slot transition as an event even when the slot is back in a state it was written in', async () => {
    const { store, writes } = recordingStore();
    const journal = new NodeJournal(store, systemClock, new EventBus(), 'node-1', createLogger('test', 'error'));
    journal.inspect(snapshotOf('slot-1', 'idle', { taskId: null, attempt: null }, 'xstate.init'));
    await journal.flush();
    journal.inspect(snapshotOf('slot-1', { active: 'busy' }, { taskId: 'task-1', attempt: 1 }, 'START'));
    journal.inspect(snapshotOf('slot-1', 'idle', { taskId: null, attempt: null }, 'DONE'));
    await journal.flush();
    await journal.close();

    expect(writes.map((write) => write.events.map((event) => event.type))).toEqual([['slot:idle'], ['slot:busy', 'slot:idle']]);
    // The second batch's snapshot is the one written first: its events are all that is new.
    expect(writes[1]!.snapshots).toEqual([]);
  });

  // A server that stopped as the batch's COMMIT was on its way: it may or may not have been applied.
  for (const applied of [true, false]) {
    it(`writes a batch whose answer was lost once: read back, and written again only if it was not saved (${applied ? 'applied' : 'not applied'})`, async () => {
      const dir = tempDir();
      const real = await openStore(`file:${path.join(dir, 'delegate.db')}`);
      try {
        let lose = 1;
        const store: Store = Object.create(real, {
          recordNodeActors: {
            value: async (events: readonly NewEngineEvent[], snapshots: readonly ActorSnapshotRow[]) => {
              if (lose === 0) return real.recordNodeActors(events, snapshots);
              lose--;
              if (applied) await real.recordNodeActors(events, snapshots);
              throw new StoreError('commit_unknown', 'lost the connection to the database server while committing');
            },
          },
        });
        const journal = new NodeJournal(store, systemClock, new EventBus(), 'node-1', createLogger('test', 'error'));
        journal.inspect(snapshotOf('slot-1', 'idle', { taskId: null, attempt: null }, 'xstate.init'));
        journal.inspect(snapshotOf('slot-1', { active: 'busy' }, { taskId: 'task-1', attempt: 1 }, 'START'));
        await journal.flush();
        journal.inspect(snapshotOf('slot-1', 'idle', { taskId: null, attempt: null }, 'DONE'));
        await journal.close();
        expect(lose).toBe(0);
        const events = await real.eventsAfter(0, { actorId: 'node-1/slot-1' }, 100);
        expect(events.map((event) => event.type)).toEqual(['slot:idle', 'slot:busy', 'slot:idle']);
      } finally {
        await real.close();
        removeDir(dir);
      }
    });
  }
});
