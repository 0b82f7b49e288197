/**
 * The Piscina worker entry: one call per run attempt. Many run concurrently in one thread
 * (`concurrentTasksPerWorker`), since a launcher mostly waits on its child process.
 */
import { workerData, type MessagePort } from 'node:worker_threads';
import { runLaunch } from './launcher.js';
import type { LaunchRequest, RunOutcome } from './protocol.js';

/** What the pool hands each worker thread (Piscina `workerData`). */
export interface LauncherWorkerData {
  /** URLs of modules that register agents when imported; a thread starts with an empty agent registry. */
  agentModules: string[];
}

/** What the pool sends for one run: the request and the worker's end of its MessageChannel (transferred). */
export interface LauncherTask {
  req: LaunchRequest;
  port: MessagePort;
}

let agentsLoaded: Promise<void> | undefined;

/** Import the agent modules once per thread, in order, so names register as in the main thread. */
function loadAgents(): Promise<void> {
  agentsLoaded ??= (async () => {
    for (const url of (workerData as LauncherWorkerData).agentModules) await import(url);
  })();
  return agentsLoaded;
}

/** Run one launch; the outcome is also posted on `port` as `exited`. */
export default async function launch({ req, port }: LauncherTask): Promise<RunOutcome> {
  // A module that fails to load rejects every launch of this thread (the runner reports `launcher failed: …`).
  await loadAgents();
  return runLaunch(req, port);
}
