/** How an agent that runs an installed CLI explains a failed spawn of it: the same for every such agent. */
import type { Agent } from '../../engine/agent.js';

/**
 * An `Agent.describeSpawnError` for the CLI `name`, installed as `installHint` says: a missing or non-executable
 * binary gets the hint; other failures (EMFILE, E2BIG, …), which installing does not fix, keep the generic text.
 */
export function missingBinaryExplainer(name: string, installHint: string): NonNullable<Agent['describeSpawnError']> {
  return (error, file) => {
    switch (error.code) {
      case 'ENOENT':
        return file.includes('/') ? `${name} binary ${file} not found: ${installHint}` : `${name} not found on PATH: ${installHint}`;
      case 'EACCES':
        return `${file} is not executable (EACCES): ${installHint}`;
      default:
        return undefined;
    }
  };
}
