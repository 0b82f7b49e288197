/**
 * The statecharts the inspector draws, read from the machines' own definitions (`machine.root`), so the
 * picture cannot drift from the code: states as a tree, transitions as edges between state ids. Guarded
 * variants of one event between the same two states are one edge; transitions without a target (they run
 * actions and stay) are left out, since they never move the highlighted state.
 */
import type { AnyStateMachine } from 'xstate';
import { scheduleMachine } from '../../actors/schedule.machine.js';
import { supervisorMachine } from '../../actors/supervisor.machine.js';
import { taskMachine } from '../../actors/task.machine.js';
import { workerSlotMachine } from '../../actors/worker-slot.machine.js';
import type { ActorKind } from '../../engine/store/store.js';

/** One state: its id (`task.running`), its own key, its kind and its children. */
export interface StatechartState {
  id: string;
  key: string;
  type: 'atomic' | 'compound' | 'parallel' | 'final' | 'history';
  /** The id of the child a compound state starts in. */
  initial: string | null;
  children: StatechartState[];
}

/** One transition: from a state to another on an event (`after 5000ms` / `always` for eventless ones). */
export interface StatechartEdge {
  source: string;
  target: string;
  event: string;
}

/** A machine as the page draws it. */
export interface Statechart {
  machine: string;
  root: StatechartState;
  edges: StatechartEdge[];
}

/** The parts of XState's StateNode this module reads (its own type is wider than the page needs). */
interface DefinitionNode {
  id: string;
  key: string;
  type: StatechartState['type'];
  initial?: { target?: ReadonlyArray<{ id: string }> } | undefined;
  states: Record<string, DefinitionNode>;
  transitions: Map<string, ReadonlyArray<{ target?: ReadonlyArray<{ id: string }> | undefined }>>;
  always?: ReadonlyArray<{ target?: ReadonlyArray<{ id: string }> | undefined }> | undefined;
}

/**
 * XState's internal event names, shortened for a label: `xstate.after.<delay>.<state id>` is `after <delay>ms`,
 * `xstate.done.actor.<id>` is `done: <id>` and `xstate.error.actor.<id>` is `error: <id>`.
 */
function eventLabel(event: string): string {
  const delayed = /^xstate\.after\.([^.]+)\./.exec(event);
  if (delayed) return /^\d+$/.test(delayed[1]!) ? `after ${delayed[1]}ms` : `after ${delayed[1]}`;
  const actor = /^xstate\.(done|error)\.actor\.(.+)$/.exec(event);
  if (actor) return `${actor[1]}: ${actor[2]}`;
  return event;
}

/** Serialise a machine's definition into states and deduplicated edges. */
export function statechartOf(machine: AnyStateMachine): Statechart {
  const edges = new Map<string, StatechartEdge>();
  const visit = (node: DefinitionNode): StatechartState => {
    const add = (event: string, targets: ReadonlyArray<{ id: string }> | undefined): void => {
      for (const target of targets ?? []) {
        const edge = { source: node.id, target: target.id, event: eventLabel(event) };
        edges.set(`${edge.source}\u0000${edge.target}\u0000${edge.event}`, edge);
      }
    };
    for (const [event, transitions] of node.transitions) for (const transition of transitions) add(event, transition.target);
    for (const transition of node.always ?? []) add('always', transition.target);
    return {
      id: node.id,
      key: node.key,
      type: node.type,
      initial: node.initial?.target?.[0]?.id ?? null,
      children: Object.values(node.states).map(visit),
    };
  };
  const root = visit(machine.root as unknown as DefinitionNode);
  return { machine: machine.id, root, edges: [...edges.values()] };
}

/** The machine of each kind of actor the inspector lists (nodes have none: they are processes). */
export const machinesByKind: Partial<Record<ActorKind, AnyStateMachine>> = {
  task: taskMachine,
  schedule: scheduleMachine,
  slot: workerSlotMachine,
  supervisor: supervisorMachine,
};

/** The statechart of each kind of actor that has a machine. */
export function statecharts(): Partial<Record<ActorKind, Statechart>> {
  return Object.fromEntries(Object.entries(machinesByKind).map(([kind, machine]) => [kind, statechartOf(machine)]));
}
