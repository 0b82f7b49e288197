/**
 * The shim process (DESIGN §10): `node shim/main.js <run dir>`. A runner starts it detached, in its own session
 * and process group, with the agent's environment; it runs the agent (same group) with output going to the
 * task's log files, reports through the run's files, and writes the outcome to `exit.json` at the end. It holds
 * nothing of the runner's, so it and its agent outlive a runner that dies; the next runner on the host adopts it
 * (follows the same files) or collects its outcome.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { captureGitState } from '../checkpoint.js';
import { runFiles, writeJsonAtomic, type ShimSpec } from '../pool/run-files.js';
import { superviseAgent } from './supervise.js';

async function main(runDir: string): Promise<void> {
  const files = runFiles(runDir);
  const spec = JSON.parse(readFileSync(files.spec, 'utf8')) as ShimSpec;
  for (const url of spec.agentModules) await import(url);
  const outcome = await superviseAgent(spec, process.env, {
    started: (agent) => writeJsonAtomic(files.started, agent),
    progress: (progress) => writeJsonAtomic(files.progress, progress),
    keepaliveFile: files.keepalive,
  });
  // The checkpoint's git state, taken here where a spawn is cheap, not by the runner (see RunOutcome.git). A
  // stopped run records no checkpoint.
  if (outcome.end !== 'cancelled') outcome.git = await captureGitState(spec.cwd);
  writeJsonAtomic(files.exit, outcome);
  // Done: a timer still waiting on the agent's pipes (a tool that kept them open) must not keep the shim up.
  process.exit(0);
}

const runDir = process.argv[2];
if (!runDir) {
  process.stderr.write('usage: shim <run dir>\n');
  process.exit(2);
}
main(runDir).catch((error: unknown) => {
  // No exit.json: the runner treats the run as lost and resumes it. Say why for whoever looks.
  try {
    writeFileSync(runFiles(runDir).shimLog, `${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`, { flag: 'a' });
  } finally {
    process.exit(1);
  }
});
