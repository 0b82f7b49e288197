/**
 * What to run for a claimed task: its prompt with the context it continues from (a dependency's checkpoint, a
 * resumed task's checkpoint and extra instructions, or a note that its last run was cut short), which agent
 * session to use — a pre-assigned new one, a fork of the resumed task's, or the interrupted one's — and the
 * launch request the pool runs. The `startAgent` effect builds it right after the claim commits.
 */
import { agentByName } from './agent.js';
import { composePrompt, formatCheckpointContext } from './checkpoint.js';
import { localHostIdentity } from './process-info.js';
import type { DelegateConfig } from './config.js';
import type { LaunchRequest, RunOutcome } from './pool/protocol.js';
import type { Store, TaskRecord } from './store/store.js';

/** A launch request, or why there can be none (the run then fails as `spawn_error`). */
export type LaunchPlan = { request: LaunchRequest } | { error: string };

/** The environment variable that marks an agent's processes with their run. */
export const runMarkerVariable = 'DELEGATE_RUN';

/** The marker value of one run. */
export function runMarker(taskId: string, attempt: number): string {
  return `${taskId}#${attempt}`;
}

/** An outcome for a run that never reached a process. */
export function failedToStart(error: string): RunOutcome {
  return { end: 'spawn_error', exitCode: null, signal: null, error, result: { sawResult: false, isError: false }, outputBytes: 0, lastLines: [] };
}

/** What a plan needs besides the task. */
export interface LaunchContext {
  store: Store;
  config: DelegateConfig;
  logDir: string;
  killGraceMs: number;
  /** The environment agents resolve their binaries from. */
  env: NodeJS.ProcessEnv;
  /** Modules that register agents, for the agent host's parser of the run's output. */
  agentModules: readonly string[];
  /** The agent host ends the agent when no runner followed it this long (runs other hosts may take over); null: never. */
  keepaliveMs?: number | null;
}

/** The launch of a claimed task's current attempt. */
export async function planLaunch(task: TaskRecord, context: LaunchContext): Promise<LaunchPlan> {
  try {
    const agent = agentByName(task.agent);
    const blocks: string[] = [];
    if (task.continueFrom) {
      const checkpoint = await context.store.latestCheckpoint(task.continueFrom);
      if (checkpoint) blocks.push(formatCheckpointContext(checkpoint, 'the task this one continues,'));
    }
    if (task.parentTaskId) {
      const checkpoint = await context.store.latestCheckpoint(task.parentTaskId);
      if (checkpoint) blocks.push(formatCheckpointContext(checkpoint, 'the earlier run this task resumes,'));
      if (task.additionalContext) blocks.push(`=== Additional instructions for this run ===\n${task.additionalContext}`);
    }
    const interrupted = task.snapshot.context.interrupted;
    const pausedAtLimit = (task.snapshot.context.limitPauses ?? 0) > 0;
    // A run cut short or stopped at a usage limit continues its own agent session, if the agent got far enough
    // to create one: its work so far is in that session. The id its run recorded, not the task's pre-assigned
    // one: an agent that picks its own ids (codex) reports another.
    // Only a session of this host: an agent keeps its sessions on the machine it ran on (claude in ~/.claude), so a
    // run taken over from another host starts a new session, with the note below and its checkpoint context.
    const runs = interrupted || pausedAtLimit ? await context.store.taskRuns(task.id) : [];
    const here = localHostIdentity(context.config.hostId);
    const startedSession = runs.filter((run) => run.attempt < task.attempt && run.sessionId !== null && run.host === here).at(-1)?.sessionId ?? null;
    // A resumed task forks its parent's session only where that session is; elsewhere the checkpoint context
    // above is what it continues from.
    const forkSessionId =
      task.forkSessionId && task.parentTaskId && (await context.store.taskRuns(task.parentTaskId)).some((run) => run.sessionId === task.forkSessionId && run.host === here)
        ? task.forkSessionId
        : null;
    if (interrupted) {
      blocks.push(
        '=== Note ===\nAn earlier run of this task was interrupted before it finished (its runner stopped). Continue from where it left off; check the working directory for work already done.',
      );
    } else if (pausedAtLimit) {
      blocks.push('=== Note ===\nAn earlier run of this task stopped at a usage limit, which has reset now. Continue from where it left off.');
    }
    const session =
      startedSession
        ? { resumeSessionId: startedSession }
        : forkSessionId
          ? { forkFromSessionId: forkSessionId, sessionId: task.sessionId ?? undefined }
          : { sessionId: task.sessionId ?? undefined };
    const command = agent.buildCommand(
      {
        taskId: task.id,
        attempt: task.attempt,
        prompt: composePrompt(task.prompt, blocks),
        taskPrompt: task.prompt,
        workingDirectory: task.workingDirectory,
        model: task.model ?? undefined,
        permissionMode: task.permissionMode ?? context.config.permissionMode,
        allowedTools: task.allowedTools,
        disallowedTools: task.disallowedTools,
        maxBudgetUsd: task.maxBudgetUsd ?? undefined,
        ...session,
      },
      context.env,
    );
    // Marks the agent's processes as this run's, so the recovery sweep finds them even if their pid was never recorded.
    command.env = { ...command.env, [runMarkerVariable]: runMarker(task.id, task.attempt) };
    return {
      request: {
        taskId: task.id,
        attempt: task.attempt,
        agent: task.agent,
        command,
        cwd: task.workingDirectory,
        logDir: context.logDir,
        maxOutputBuffer: task.maxOutputBuffer,
        killGraceMs: context.killGraceMs,
        baseEnv: { ...context.env },
        agentModules: context.agentModules,
        keepaliveMs: context.keepaliveMs ?? null,
      },
    };
  } catch (error) {
    return { error: error instanceof Error ? error.message : String(error) };
  }
}
