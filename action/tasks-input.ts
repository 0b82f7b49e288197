/**
 * The `tasks` input: a YAML list of `{id, prompt, depends_on | needs, continue_from, priority, agent}` (SPEC §10),
 * checked whole before anything runs, with one-line errors that name the entry and field (`tasks[2].needs`), and
 * ordered so every task comes after the tasks it depends on.
 */
import { agentNames } from '../engine/agent.js';
import { priorities } from '../engine/store/store.js';
import { ActionInputError } from './action-input-error.js';
import { parse as parseYaml, YAMLError } from 'yaml';

/** One task of the input, as validated. */
export interface TaskSpec {
  /** The name other tasks and the results use; `task_<n>` when not given. */
  id: string;
  /** Its place in the input (0-based). */
  index: number;
  /** Where it is in the input, for messages: `tasks[1]`. */
  label: string;
  prompt: string;
  /** Ids of tasks it waits for; includes `continueFrom`. */
  dependsOn: string[];
  continueFrom?: string;
  priority?: string;
  agent?: string;
}

const fields = ['id', 'prompt', 'depends_on', 'needs', 'continue_from', 'priority', 'agent'] as const;

/** Like a GitHub job id, so `needs:` reads the same as in a workflow. */
const idPattern = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function fail(problem: string): never {
  throw new ActionInputError('tasks', problem);
}

const shownValue = (value: unknown): string => (typeof value === 'string' ? `'${value}'` : JSON.stringify(value));

/** One line of a YAML error: what is wrong, and where. */
function yamlProblem(error: YAMLError): string {
  const what = error.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
  const where = error.linePos?.[0];
  return where ? `line ${where.line}, column ${where.col}: ${what}` : what;
}

/** Read, check and order the `tasks` input. */
export function readTasks(text: string): TaskSpec[] {
  let document: unknown;
  try {
    // YAML 1.2 (JSON is YAML too); a key written twice is an error rather than silently the last one.
    document = parseYaml(text, { uniqueKeys: true });
  } catch (error) {
    if (error instanceof YAMLError) fail(`tasks: not a YAML list of tasks: ${yamlProblem(error)}`);
    throw error;
  }
  if (!Array.isArray(document)) fail('tasks: expected a YAML list of tasks (- id: …  prompt: …)');
  const list = document as unknown[];
  if (list.length === 0) fail('tasks: expected at least one task');
  const specs = list.map((item, index) => readTask(item, index));
  const byId = new Map<string, TaskSpec>();
  for (const spec of specs) {
    if (byId.has(spec.id)) fail(`${spec.label}.id '${spec.id}': already the id of ${byId.get(spec.id)!.label}; ids must be unique`);
    byId.set(spec.id, spec);
  }
  for (const spec of specs) {
    for (const need of spec.dependsOn) {
      if (!byId.has(need)) fail(`${spec.label}: depends on '${need}', which is not the id of a task in tasks (ids: ${[...byId.keys()].join(', ')})`);
      if (need === spec.id) fail(`${spec.label}: '${need}' depends on itself`);
    }
  }
  return topologicalOrder(specs, byId);
}

function readTask(item: unknown, index: number): TaskSpec {
  const label = `tasks[${index}]`;
  if (typeof item !== 'object' || item === null || Array.isArray(item)) fail(`${label}: expected a mapping with at least prompt (got ${shownValue(item)})`);
  const entry = item as Record<string, unknown>;
  const unknown = Object.keys(entry).filter((key) => !(fields as readonly string[]).includes(key));
  if (unknown.length > 0) fail(`${label}: unknown field ${unknown.map((key) => `'${key}'`).join(', ')}; allowed fields are ${fields.join(', ')}`);
  const text = (field: string): string | undefined => {
    const value = entry[field];
    if (value === undefined) return undefined;
    if (typeof value !== 'string' || value.trim() === '') fail(`${label}.${field} ${shownValue(value)}: expected a non-empty string`);
    return value as string;
  };
  const prompt = text('prompt');
  if (prompt === undefined) fail(`${label}.prompt: missing; every task needs a prompt`);
  const id = text('id')?.trim() ?? `task_${index + 1}`;
  if (!idPattern.test(id)) fail(`${label}.id '${id}': expected letters, digits, _ and - starting with a letter or _ (like a job id)`);
  if (entry.depends_on !== undefined && entry.needs !== undefined) fail(`${label}: give depends_on or needs (the same thing), not both`);
  const dependsField = entry.needs !== undefined ? 'needs' : 'depends_on';
  const rawDepends = entry[dependsField];
  const dependsOn = rawDepends === undefined ? [] : typeof rawDepends === 'string' ? [rawDepends] : rawDepends;
  if (!Array.isArray(dependsOn) || dependsOn.some((need) => typeof need !== 'string' || need.trim() === '')) {
    fail(`${label}.${dependsField} ${shownValue(rawDepends)}: expected a task id or a list of task ids`);
  }
  const needs = (dependsOn as string[]).map((need) => need.trim());
  const continueFrom = text('continue_from')?.trim();
  // continue_from implies waiting for that task; the engine needs it among the dependencies.
  if (continueFrom !== undefined && !needs.includes(continueFrom)) needs.push(continueFrom);
  const priority = text('priority')?.trim();
  if (priority !== undefined && !(priorities as readonly string[]).includes(priority)) fail(`${label}.priority '${priority}': expected P0, P1 or P2`);
  const agent = text('agent')?.trim();
  const known = agentNames();
  if (agent !== undefined && !known.includes(agent)) fail(`${label}.agent '${agent}': expected one of ${known.join(', ')}`);
  return {
    id,
    index,
    label,
    prompt: prompt!,
    dependsOn: [...new Set(needs)],
    ...(continueFrom !== undefined ? { continueFrom } : {}),
    ...(priority !== undefined ? { priority } : {}),
    ...(agent !== undefined ? { agent } : {}),
  };
}

/** Tasks with every dependency first, otherwise in input order; a cycle fails naming it (`a → b → a`). */
function topologicalOrder(specs: TaskSpec[], byId: Map<string, TaskSpec>): TaskSpec[] {
  const ordered: TaskSpec[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (spec: TaskSpec, path: string[]): void => {
    const seen = state.get(spec.id);
    if (seen === 'done') return;
    if (seen === 'visiting') {
      const cycle = [...path.slice(path.indexOf(spec.id)), spec.id];
      fail(`tasks: depends_on/needs form a cycle: ${cycle.join(' → ')}`);
    }
    state.set(spec.id, 'visiting');
    for (const need of spec.dependsOn) visit(byId.get(need)!, [...path, spec.id]);
    state.set(spec.id, 'done');
    ordered.push(spec);
  };
  for (const spec of specs) visit(spec, []);
  return ordered;
}
