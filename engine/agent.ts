/**
 * The Agent port: the one interface every agent plug-in implements, and the registry the engine looks agents up
 * in. An agent module is pure: it turns a run specification into a command line and turns the agent's output
 * into readable text and a result. The pool worker (engine/pool) does the spawning, so agents never touch
 * processes themselves. The engine names no agent: whoever starts it registers them (its composition root).
 */
import { UsageError } from './errors.js';
import type { WallClockTime } from './wall-clock.js';


/** What the engine asks an agent to run. */
export interface AgentRunSpec {
  taskId: string;
  attempt: number;
  /** The prompt to give the agent: the task's own prompt with any context the engine prepends (a checkpoint, a note). */
  prompt: string;
  /** The task's own prompt, without that context; for agents that run the prompt as a command (`shell`). */
  taskPrompt?: string | undefined;
  workingDirectory: string;
  model?: string | undefined;
  /** A claude `--permission-mode` value; background runs cannot answer prompts. */
  permissionMode: string;
  allowedTools: string[];
  disallowedTools: string[];
  maxBudgetUsd?: number | undefined;
  /** A session id chosen by the engine before the run, so the session can be resumed even after a crash. */
  sessionId?: string | undefined;
  /** Continue this earlier agent session (the same session goes on: an interrupted run of the same task). */
  resumeSessionId?: string | undefined;
  /** Start a new session (`sessionId`) that carries this earlier session's history (a resumed task). */
  forkFromSessionId?: string | undefined;
}

/** An argument-array command (never a shell string), with the prompt fed on stdin. */
export interface AgentCommand {
  file: string;
  args: string[];
  stdin: string;
  /** Extra environment on top of the launcher's safelist. */
  env: Record<string, string>;
}

/** The tokens one agent run used, as the Anthropic API counts them (cache writes and reads apart from plain input). */
export interface TokenCounts {
  input: number;
  output: number;
  cacheCreation: number;
  cacheRead: number;
}

/** What an agent run produced, as far as its output tells. */
export interface AgentResult {
  /** True once the agent printed its final result record. */
  sawResult: boolean;
  isError: boolean;
  sessionId?: string | undefined;
  costUsd?: number | undefined;
  numTurns?: number | undefined;
  /** Tokens of this run (this process only: a resumed session's earlier runs reported theirs). */
  tokens?: TokenCounts | undefined;
  /** The model the agent says it ran (not necessarily the alias it was asked for). */
  model?: string | undefined;
  resultText?: string | undefined;
  /** The agent stopped at its account's usage limit: the task pauses until the reset, it does not fail. */
  usageLimit?: UsageLimitNotice | undefined;
  /** The agent stopped because the run spent its `maxBudgetUsd` (the task fails with `budget_exceeded`). */
  budgetExceeded?: boolean | undefined;
}

/**
 * What an agent said about a usage limit it hit. The reset is an instant (`resetAt`), a wall-clock time for the
 * engine to resolve against its clock and zone (`resetWallClock`), or unknown (neither: a short default pause).
 */
export interface UsageLimitNotice {
  /** Which signal said so: a structured event, an API error status, or a text message (the fallback). */
  source: 'rate_limit_event' | 'api_error' | 'text';
  /** Epoch ms of the reset. */
  resetAt?: number | undefined;
  resetWallClock?: WallClockTime | undefined;
  /** The kind of limit, e.g. `five_hour`, `seven_day`, `seven_day_opus`, `overage`. */
  limitType?: string | undefined;
}

/** Incremental parser of one run's stdout, line by line. */
export interface AgentOutputParser {
  /** Feed one stdout line; returns human-readable lines for the task's text log (may be empty). */
  pushLine(line: string): string[];
  /** The result so far (final once the process exited). */
  result(): AgentResult;
}

/** A new task's settings as an agent sees them before the task is written. */
export type AgentTaskSettings = Pick<AgentRunSpec, 'prompt' | 'model' | 'permissionMode' | 'allowedTools' | 'disallowedTools' | 'maxBudgetUsd'>;

/** An agent plug-in. */
export interface Agent {
  readonly name: string;
  /**
   * Refuse settings this agent cannot honour, at submit time, with a UsageError naming the field (so nothing is
   * written and the front door answers at once instead of the run failing later). No method: everything goes.
   */
  checkTask?(settings: AgentTaskSettings): void;
  /** Build the command; `env` is the engine's environment, used to resolve the binary. */
  buildCommand(spec: AgentRunSpec, env: NodeJS.ProcessEnv): AgentCommand;
  createParser(): AgentOutputParser;
  /**
   * A one-line, agent-specific explanation of a failed spawn of `file` (say, how to install the binary);
   * undefined (or no method) leaves the launcher's generic text.
   */
  describeSpawnError?(error: NodeJS.ErrnoException, file: string): string | undefined;
}

// Insertion order is the order names are listed in, so the first registered agent (the default) comes first.
const registry = new Map<string, Agent>();

/** Make `agent` available under its name; registering the same agent again is a no-op, another one under a taken name throws. */
export function registerAgent(agent: Agent): void {
  const existing = registry.get(agent.name);
  if (existing === agent) return;
  // Silently replacing would make which agent runs depend on import order.
  if (existing) throw new Error(`agent '${agent.name}' is already registered`);
  registry.set(agent.name, agent);
}

/** Names of all registered agents, in registration order (the default, `claude`, first). */
export function agentNames(): readonly string[] {
  return [...registry.keys()];
}

/** The agent called `name`; throws a UsageError (`invalid_input`) naming the known agents when there is none. */
export function agentByName(name: string): Agent {
  const agent = registry.get(name);
  if (agent) return agent;
  // An empty registry is a wiring mistake (nothing imported the agent modules), not a typo in the task.
  if (registry.size === 0) throw new UsageError('invalid_input', `unknown agent '${name}': no agents are registered`);
  throw new UsageError('invalid_input', `unknown agent '${name}': expected one of ${agentNames().join(', ')}`);
}
