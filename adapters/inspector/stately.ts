/**
 * `delegate inspect --stately`: also send every event to Stately's inspector (@statelyai/inspect). The package
 * is not a dependency of delegate (it pulls in a WebSocket client and talks to stately.ai), so it is loaded only
 * when asked for, and its absence is a usage error that says how to add it.
 *
 * The engine's durable actors are never live XState actors (DESIGN §1), so there is no actor ref to inspect:
 * each event is forwarded as Stately's manual inspection calls — the actor once with its machine definition,
 * then a snapshot per transition, caused by the event that made it.
 */
import { UsageError } from '../../engine/errors.js';
import type { EngineEvent } from '../../engine/events.js';
import { machinesByKind } from './statechart.js';

/** The part of @statelyai/inspect's Inspector this bridge calls (the positional API of its current releases). */
interface StatelyInspector {
  actor(actor: string, snapshot?: { status: 'active' | 'done'; value: unknown }, info?: { definition?: string }): void;
  snapshot(actor: string, snapshot: { status: 'active' | 'done'; value: unknown }, info?: { event?: { type: string } }): void;
  stop?(): void;
}

interface StatelyModule {
  createSkyInspector?: (options?: Record<string, unknown>) => StatelyInspector;
}

/** Forwards events to Stately until stopped. */
export interface StatelyBridge {
  onEvents(events: readonly EngineEvent[]): void;
  stop(): void;
}

/** Load @statelyai/inspect and start a Stately Sky inspector; a UsageError when the package is not installed. */
export async function startStatelyBridge(): Promise<StatelyBridge> {
  let loaded: StatelyModule;
  try {
    // A variable specifier: the compiler must not require the optional package's types.
    const name = '@statelyai/inspect';
    loaded = (await import(name)) as StatelyModule;
  } catch {
    throw new UsageError('invalid_input', '--stately: the @statelyai/inspect package is not installed; run `npm install @statelyai/inspect` next to delegate, or leave --stately out');
  }
  if (typeof loaded.createSkyInspector !== 'function') {
    throw new UsageError('invalid_input', '--stately: this version of @statelyai/inspect has no createSkyInspector; expected a release from 0.2.3 on');
  }
  const inspector = loaded.createSkyInspector();
  const known = new Set<string>();
  return {
    onEvents(events) {
      for (const event of events) {
        const machine = machinesByKind[event.kind];
        const status = ['completed', 'failed', 'cancelled', 'expired', 'stopped'].includes(event.to) ? 'done' : 'active';
        if (!known.has(event.actorId)) {
          known.add(event.actorId);
          inspector.actor(event.actorId, { status: 'active', value: event.from ?? event.to }, machine ? { definition: JSON.stringify(machine.definition) } : {});
        }
        inspector.snapshot(event.actorId, { status, value: event.to }, { event: { type: event.cause } });
      }
    },
    stop: () => inspector.stop?.(),
  };
}
