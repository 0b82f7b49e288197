/**
 * What a run's outcome means for its task: the event it is, the columns it fills in, and the one fenced commit
 * of both — the same whether the runner that ran the agent commits it, a runner that collected it after that
 * runner died, or a front door that found it on the dead runner's host.
 */
import type { TaskEvent } from '../actors/task.machine.js';
import type { AgentResult, UsageLimitNotice } from './agent.js';
import type { RunOutcome } from './pool/protocol.js';
import type { RunEnd, TaskColumns, TaskRecord } from './store/store.js';
import type { StepResult, TaskActors } from './task-actors.js';
import { localTimeZone, resolveWallClock } from './wall-clock.js';

/**
 * How long to pause when the reported reset time has already passed (clock skew, a stale message): resuming at
 * once would hit the limit again and loop.
 */
export const minUsageLimitPauseMs = 60_000;

/** Added to a reported reset: the provider's clock and ours differ a little, and a run started early hits the limit again. */
export const usageLimitMarginMs = 30_000;

/** How long to pause when the agent hit a limit but said nothing of when it resets (a bare 429). */
export const unknownResetPauseMs = 300_000;

/** The longest pause a reported reset can cause: a weekly limit plus a day of slack. */
export const maxUsageLimitPauseMs = 8 * 86_400_000;

/**
 * When a task paused by `notice`, seen at `now`, goes back to the queue: the reported reset plus a margin, read
 * in `zone` when the message gave only a wall-clock time; a short pause when the reset is unknown; and never
 * less than a minute, so a reset already past does not loop, nor more than a week and a margin beyond it.
 */
export function usageLimitResumeAt(notice: UsageLimitNotice, now: number, zone: string): number {
  const reset = notice.resetAt ?? (notice.resetWallClock ? resolveWallClock(notice.resetWallClock, now, zone) : undefined);
  if (reset === undefined) return now + unknownResetPauseMs;
  if (reset <= now) return now + minUsageLimitPauseMs;
  // A garbled reset far in the future must not park the task for good: weekly limits reset within a week.
  return Math.min(reset + usageLimitMarginMs, now + maxUsageLimitPauseMs);
}

/**
 * The task event a run's outcome means; null when there is nothing to record (the run was stopped on purpose)
 * or the run is handed back instead (`lost`: the agent ended with no word of how).
 */
export function outcomeEvent(outcome: RunOutcome, now: number, zone?: string): TaskEvent | null {
  switch (outcome.end) {
    case 'cancelled':
    case 'lost':
      return null;
    case 'output_limit':
    case 'spawn_error':
      return { type: 'AGENT_FAILED', reason: outcome.end, error: outcome.error ?? outcome.end, exitCode: outcome.exitCode };
    case 'exited': {
      const result: AgentResult = outcome.result;
      if (result.usageLimit) {
        return { type: 'USAGE_LIMIT', resetAt: usageLimitResumeAt(result.usageLimit, now, zone ?? localTimeZone()), at: now, limitType: result.usageLimit.limitType ?? null };
      }
      if (result.budgetExceeded) {
        const spent = result.costUsd !== undefined ? ` ($${result.costUsd.toFixed(4)} spent)` : '';
        return { type: 'AGENT_FAILED', reason: 'budget_exceeded', error: `the run reached its maxBudgetUsd${spent}`, exitCode: outcome.exitCode };
      }
      const error = result.isError ? `agent reported an error: ${(result.resultText ?? '').split('\n')[0]?.slice(0, 300) ?? ''}` : outcome.error;
      return { type: 'AGENT_EXITED', exitCode: outcome.exitCode, sawResult: result.sawResult, isError: result.isError, ...(error ? { error } : {}) };
    }
  }
}

/**
 * Columns a run's outcome fills in on the task. Cost, turns and tokens are not among them: they go on the run
 * row, and the task's are the sums over its runs (see recordRunEnd).
 */
function outcomeColumns(outcome: RunOutcome): TaskColumns {
  const result = outcome.result;
  return {
    exitCode: outcome.exitCode,
    ...(result.sessionId ? { sessionId: result.sessionId } : {}),
    ...(result.resultText !== undefined ? { result: result.resultText } : {}),
  };
}

/** How the run row ends as `end`, with what the agent reported it used. */
export function runEndOf(end: string, outcome: RunOutcome | undefined): RunEnd {
  const result = outcome?.result;
  return {
    outcome: end,
    exitCode: outcome?.exitCode ?? null,
    outputBytes: outcome?.outputBytes ?? 0,
    costUsd: result?.costUsd ?? null,
    sessionId: result?.sessionId ?? null,
    numTurns: result?.numTurns ?? null,
    tokens: result?.tokens ?? null,
    model: result?.model ?? null,
  };
}

/**
 * Commit a run's outcome to its task, fenced: `expect` says which run it belongs to (owner and attempt). Null
 * when the outcome records nothing (the run was stopped on purpose, or is to be handed back).
 */
export async function commitOutcome(actors: TaskActors, now: number, taskId: string, expect: (task: TaskRecord) => boolean, outcome: RunOutcome): Promise<StepResult | null> {
  const event = outcomeEvent(outcome, now);
  if (!event) return null;
  return actors.send(taskId, event, { expect, extra: outcomeColumns(outcome), runEnd: runEndOf(outcome.end, outcome), runReport: { git: outcome.git, lastLines: outcome.lastLines } });
}
