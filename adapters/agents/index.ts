/**
 * The agent registry: the names a task's `agent` field may take and the plug-in behind each.
 */
import { UsageError } from '../../engine/errors.js';
import type { Agent } from '../../engine/agent.js';
import { claudeAgent } from './claude.js';
import { demoAgent } from './demo.js';

const agents: ReadonlyMap<string, Agent> = new Map([claudeAgent, demoAgent].map((agent) => [agent.name, agent]));

/** Names of all registered agents, the default (`claude`) first. */
export const agentNames: readonly string[] = [...agents.keys()];

/** The agent called `name`; throws a UsageError (`invalid_input`) naming the known agents when there is none. */
export function agentByName(name: string): Agent {
  const agent = agents.get(name);
  if (!agent) throw new UsageError('invalid_input', `unknown agent '${name}': expected one of ${agentNames.join(', ')}`);
  return agent;
}
