/**
 * The Piscina worker entry: one call per run attempt. Many run concurrently in one thread
 * (`concurrentTasksPerWorker`), since a launcher only asks the agent host to start a run and follows its files.
 */
import type { MessagePort } from 'node:worker_threads';
import { runLaunch } from './launcher.js';
import type { LauncherJob, RunOutcome } from './protocol.js';

/** What the pool sends for one run: the job and the worker's end of its MessageChannel (transferred). */
export interface LauncherTask {
  req: LauncherJob;
  port: MessagePort;
}

/** Run or adopt one attempt; the outcome is also posted on `port` as `exited`. */
export default function launch({ req, port }: LauncherTask): Promise<RunOutcome> {
  return runLaunch(req, port);
}
