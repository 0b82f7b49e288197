/**
 * The Piscina worker entry: one call per run attempt. Many run concurrently in one thread
 * (`concurrentTasksPerWorker`), since a launcher mostly waits on its child process.
 */
import type { MessagePort } from 'node:worker_threads';
import { runLaunch } from './launcher.js';
import type { LaunchRequest, RunOutcome } from './protocol.js';

/** What the pool sends for one run: the request and the worker's end of its MessageChannel (transferred). */
export interface LauncherTask {
  req: LaunchRequest;
  port: MessagePort;
}

/** Run one launch; the outcome is also posted on `port` as `exited`. */
export default async function launch({ req, port }: LauncherTask): Promise<RunOutcome> {
  return runLaunch(req, port);
}
