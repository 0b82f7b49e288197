/**
 * What `transition()` returned, as the engine commits and acts on it (DESIGN §1, §2): a statechart's delayed
 * `raise`s and `cancel`s become durable timer changes written with the step; its named actions are the effects
 * to run after the commit. Shared by every durable actor (tasks, schedules).
 */
import type { TimerChange, TimerEvent } from './store/records.js';

/** An action as `transition()` returns it. */
export interface RawAction {
  type: string;
  params?: unknown;
}

/** Split a step's actions into timer changes and effects; `machine` names the statechart in internal errors. */
export function splitActions<Effect>(machine: string, actions: readonly RawAction[], now: number): { timers: TimerChange[]; effects: Effect[] } {
  const timers: TimerChange[] = [];
  const effects: Effect[] = [];
  for (const action of actions) {
    if (action.type === 'xstate.raise') {
      // Only delayed raises come back from transition(); immediate ones were taken inside it.
      const params = action.params as { event: TimerEvent; id?: string; delay?: number };
      if (params.delay === undefined || params.id === undefined) throw new Error(`internal: ${machine} machine raised ${params.event.type} without a delay and an id`);
      timers.push({ kind: 'arm', key: params.id, event: params.event, dueAt: now + params.delay });
    } else if (action.type === 'xstate.cancel') {
      timers.push({ kind: 'disarm', key: (action.params as { sendId: string }).sendId });
    } else if (!action.type.startsWith('xstate.')) {
      effects.push({ type: action.type, params: action.params } as Effect);
    }
  }
  return { timers, effects };
}
