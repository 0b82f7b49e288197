/**
 * The pure check of a batch's dependency graph: the order to insert it in, or a UsageError naming a duplicate
 * id, a self-dependency or a cycle. No SQL; dependencies outside the batch are the caller's to check.
 */
import { UsageError } from '../errors.js';
import type { NewTaskNode } from './records.js';

/**
 * The batch in an order where every task comes after its batch dependencies (Kahn's algorithm), or a
 * UsageError naming a cycle. Linear in tasks plus edges.
 */
export function topologicalOrder(nodes: readonly NewTaskNode[]): NewTaskNode[] {
  const byId = new Map<string, NewTaskNode>();
  for (const node of nodes) {
    if (byId.has(node.task.id)) throw new UsageError('invalid_input', `id ${node.task.id}: used by two tasks of the batch; ids must be unique`);
    byId.set(node.task.id, node);
  }
  const indegree = new Map<string, number>();
  const dependants = new Map<string, string[]>();
  for (const node of nodes) {
    const deps = [...new Set(node.dependsOn)].filter((dep) => byId.has(dep));
    if (deps.includes(node.task.id)) throw new UsageError('invalid_input', `dependsOn: task ${node.task.id} depends on itself`);
    indegree.set(node.task.id, deps.length);
    for (const dep of deps) dependants.set(dep, [...(dependants.get(dep) ?? []), node.task.id]);
  }
  const ready = nodes.filter((node) => indegree.get(node.task.id) === 0).map((node) => node.task.id);
  const order: NewTaskNode[] = [];
  for (let next = 0; next < ready.length; next++) {
    const id = ready[next]!;
    order.push(byId.get(id)!);
    for (const dependant of dependants.get(id) ?? []) {
      const left = indegree.get(dependant)! - 1;
      indegree.set(dependant, left);
      if (left === 0) ready.push(dependant);
    }
  }
  if (order.length < nodes.length) {
    throw new UsageError('invalid_input', `dependsOn: cycle ${describeCycle(nodes.filter((node) => indegree.get(node.task.id)! > 0), byId)}`);
  }
  return order;
}

/** One cycle among the tasks left over by Kahn's algorithm, as `a → b → a`. */
export function describeCycle(left: readonly NewTaskNode[], byId: ReadonlyMap<string, NewTaskNode>): string {
  const remaining = new Set(left.map((node) => node.task.id));
  const path: string[] = [];
  const seen = new Map<string, number>();
  let current = left[0]!.task.id;
  while (!seen.has(current)) {
    seen.set(current, path.length);
    path.push(current);
    current = byId.get(current)!.dependsOn.find((dep) => remaining.has(dep))!;
  }
  return [...path.slice(seen.get(current)), current].join(' → ');
}
