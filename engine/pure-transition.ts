/**
 * XState's pure `initialTransition()` and `transition()` for the machines the engine decides with (DESIGN §1),
 * with one inert actor scope per machine instead of one per call. XState builds that scope from a new actor,
 * which computes the machine's initial snapshot and two actor systems: ~80 of the ~90 µs a task step took, paid
 * by every claim, settle, timer and dependant. The scope is only a place for the actions to go. Sharing it is
 * safe for machines that hold no children (the task and schedule machines make every effect a named action or a
 * delayed `raise`), so nothing ever registers in its system; the results are the same.
 */
import { createActor, type ActorScope, type AnyStateMachine, type EventFromLogic, type ExecutableActionsFrom, type InputFrom, type SnapshotFrom } from 'xstate';

/** The pure transitions of one machine. */
export interface PureTransitions<TMachine extends AnyStateMachine> {
  initialTransition(input: InputFrom<TMachine>): [SnapshotFrom<TMachine>, ExecutableActionsFrom<TMachine>[]];
  transition(snapshot: SnapshotFrom<TMachine>, event: EventFromLogic<TMachine>): [SnapshotFrom<TMachine>, ExecutableActionsFrom<TMachine>[]];
}

export function pureTransitions<TMachine extends AnyStateMachine>(machine: TMachine): PureTransitions<TMachine> {
  // Built on first use: importing a machine's module should not construct an actor.
  let scope: ActorScope<SnapshotFrom<TMachine>, EventFromLogic<TMachine>> | undefined;
  // Each call collects into a fresh array; a transition is synchronous, so calls never interleave.
  let collected: ExecutableActionsFrom<TMachine>[] = [];
  const scopeOf = (): ActorScope<SnapshotFrom<TMachine>, EventFromLogic<TMachine>> => {
    if (!scope) {
      const self = createActor(machine);
      scope = {
        self,
        system: self.system,
        id: '',
        sessionId: '',
        defer: () => {},
        emit: () => {},
        logger: () => {},
        stopChild: () => {},
        actionExecutor: (action) => {
          collected.push(action as ExecutableActionsFrom<TMachine>);
        },
      } as ActorScope<SnapshotFrom<TMachine>, EventFromLogic<TMachine>>;
    }
    return scope;
  };
  return {
    initialTransition(input) {
      collected = [];
      const next = machine.getInitialSnapshot(scopeOf(), input) as SnapshotFrom<TMachine>;
      return [next, collected];
    },
    transition(snapshot, event) {
      collected = [];
      const next = machine.transition(snapshot, event, scopeOf()) as SnapshotFrom<TMachine>;
      return [next, collected];
    },
  };
}
