/**
 * The built-in agents, registered with the engine's agent registry when this module is imported. Composition
 * roots (the CLI, the MCP server, the pool's worker threads via `agentsModuleUrl`) import it before they start the engine.
 */
import { registerAgent } from '../../engine/agent.js';
import { claudeAgent } from './claude.js';
import { codexAgent } from './codex.js';
import { demoAgent } from './demo.js';
import { shellAgent } from './shell.js';

// claude first: it is the default, and lists of agent names show it first.
registerAgent(claudeAgent);
registerAgent(demoAgent);
registerAgent(codexAgent);
registerAgent(shellAgent);

/** This module's URL as a pool worker thread can import it (compiled JS, so under `<repo>/dist` when run from `.ts`). */
export function agentsModuleUrl(moduleUrl: string = import.meta.url): string {
  // Worker threads cannot load `.ts`; same reasoning as the pool's `launcherWorkerUrl`.
  if (moduleUrl.endsWith('.ts')) return new URL('../../dist/adapters/agents/index.js', moduleUrl).href;
  return moduleUrl;
}
