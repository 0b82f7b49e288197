/**
 * `delegate attach` (SPEC §12): hand a task's claude session to the user's terminal. A running (or paused) task
 * is first cancelled with a reason that says so, and its agent is waited for until it is gone, so two claude
 * processes never write one session; the task's history records the hand-over. A task that has not started has
 * no session yet and is refused.
 */
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { UsageError } from './errors.js';
import { isProcessAlive, localHostIdentity } from './process-info.js';
import type { Store, TaskRun } from './store/store.js';
import type { TaskService } from './task-service.js';

/** The reason a task handed over to `delegate attach` is cancelled with. */
export const handOverReason = 'handed over to an interactive session (delegate attach)';

/** What `delegate attach` starts: claude resuming `sessionId` in `workingDirectory`. */
export interface AttachPlan {
  taskId: string;
  sessionId: string;
  workingDirectory: string;
  /** The task was running or paused and has just been handed over (cancelled). */
  handedOver: boolean;
}

/** Whether a run's agent may still be running: alive on this host, or not yet recorded as ended elsewhere. */
function mayBeRunning(run: TaskRun | undefined): boolean {
  if (!run || run.endedAt !== null) return false;
  if (run.host === localHostIdentity()) return run.pid !== null && isProcessAlive(run.pid, run.pidStart);
  return true;
}

/** Stop the task if it runs, and say which session to resume where; throws a UsageError when there is none. */
export async function prepareAttach(tasks: TaskService, store: Store, taskId: string, options: { stopTimeoutMs?: number } = {}): Promise<AttachPlan> {
  let task = await store.getTask(taskId);
  if (!task) throw new UsageError('not_found', `task-id '${taskId}': no such task`);
  if (task.agent !== 'claude') throw new UsageError('invalid_input', `task ${taskId} runs agent '${task.agent}'; attach resumes claude sessions only`);
  if (task.state === 'queued' || task.state === 'waiting' || task.state === 'ready') {
    throw new UsageError('conflict', `task ${taskId} is ${task.state}: it has no agent session yet; wait until it runs (delegate wait ${taskId}) or cancel it`);
  }
  let handedOver = false;
  if (task.state === 'running' || task.state === 'paused') {
    await tasks.cancel(taskId, handOverReason);
    handedOver = true;
    const deadline = Date.now() + (options.stopTimeoutMs ?? 20_000);
    for (;;) {
      const runs = await store.taskRuns(taskId);
      if (!mayBeRunning(runs.at(-1))) break;
      if (Date.now() > deadline) throw new UsageError('conflict', `the agent of ${taskId} has not stopped yet; it was cancelled, so try delegate attach ${taskId} again in a moment`);
      await sleep(100);
    }
    task = (await store.getTask(taskId)) ?? task;
  }
  const runs = await store.taskRuns(taskId);
  const sessionId = task.sessionId ?? [...runs].reverse().find((run) => run.sessionId !== null)?.sessionId ?? null;
  if (!sessionId) throw new UsageError('conflict', `task ${taskId} has no agent session recorded (its agent never started one); retry it instead`);
  if (!existsSync(task.workingDirectory)) {
    throw new UsageError('conflict', `the working directory of ${taskId}, ${task.workingDirectory}, is gone${task.worktreePath ? ' (its worktree was removed)' : ''}`);
  }
  return { taskId, sessionId, workingDirectory: task.workingDirectory, handedOver };
}
