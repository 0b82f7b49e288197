/** The task as the MCP tools return it: the engine's TaskView, declared as an output schema. */
import { z } from 'zod';
import type { LimitsView, TaskView } from '../../../engine/task-service.js';
import { finishedStates, priorities, unfinishedStates } from '../../../engine/store/store.js';

/** Every task state, unfinished first. */
export const taskStates = [...unfinishedStates, ...finishedStates] as const;

/** Token counts as the Anthropic API reports them. */
export const tokenCountsSchema = z
  .object({
    input: z.number().describe('Input tokens not read from or written to the prompt cache.'),
    output: z.number().describe('Output tokens.'),
    cacheCreation: z.number().describe('Input tokens written to the prompt cache.'),
    cacheRead: z.number().describe('Input tokens read from the prompt cache.'),
  })
  .describe('Tokens.');

const time = (what: string) => z.string().nullable().describe(`${what} (ISO 8601 UTC), null until then`);

/** One task (SPEC §4 TaskStatus result). */
export const taskViewSchema: z.ZodType<TaskView> = z
  .object({
    taskId: z.string().describe('The task id, task-<random>.'),
    status: z.enum(taskStates).describe('Lifecycle state.'),
    priority: z.enum(priorities as readonly string[] as [string, ...string[]]).describe('P0, P1 or P2.'),
    prompt: z.string().describe('What the agent was asked to do.'),
    agent: z.string().describe('Which agent runs it.'),
    workingDirectory: z.string().describe('Where the agent runs.'),
    worktreePath: z.string().nullable().describe('The git worktree the task runs in (worktree: true); null when it runs in place.'),
    worktreeBranch: z.string().nullable().describe('The branch of that worktree, delegate/<task id>; merge it with delegate worktree merge.'),
    permissionMode: z.string().nullable().describe('The claude --permission-mode it runs with.'),
    failReason: z.string().nullable().describe('Why it failed: exit_code, timeout, output_limit, dependency_failed, spawn_error, budget_exceeded or crashed.'),
    error: z.string().nullable().describe('The error, when it failed.'),
    cancelReason: z.string().nullable().describe('Why it was cancelled (the reason given to CancelTask), when it was.'),
    exitCode: z.number().nullable().describe("The agent process's exit code."),
    attempt: z.number().describe('How many times a runner has claimed it.'),
    createdAt: z.string().describe('When it was submitted (ISO 8601 UTC).'),
    startedAt: time('When the agent started'),
    completedAt: time('When it finished'),
    durationMs: z.number().nullable().describe('Run time in milliseconds.'),
    resumeAt: z.string().nullable().describe('For a task paused by a usage limit: when it goes back to the queue (ISO 8601 UTC).'),
    heldUntil: z.string().nullable().describe('For a ready task held back by a usage limit or a spent daily budget: when it may start (ISO 8601 UTC).'),
    waitingFor: z.string().nullable().describe('What a paused or held task waits for (a usage limit, a daily budget), in one line.'),
    costUsd: z.number().nullable().describe('What the agent reported it spent over all its runs, in US dollars.'),
    sessionId: z.string().nullable().describe('The Claude Code session id (for claude --resume).'),
    numTurns: z.number().nullable().describe('Agent turns, summed over its runs.'),
    tokens: tokenCountsSchema.nullable().describe('Tokens summed over its runs; null until a run reported them.'),
    model: z.string().nullable().describe('The model the agent reported running, else the one the task asked for.'),
    result: z.string().nullable().describe("The agent's final answer."),
    dependsOn: z.array(z.string()).describe('Tasks it waits for.'),
    dependants: z.array(z.string()).describe('Tasks that wait for it.'),
    continueFrom: z.string().nullable().describe('The dependency whose checkpoint was added to its prompt.'),
    parentTaskId: z.string().nullable().describe('The task it resumes.'),
    retryOf: z.string().nullable().describe('The task it retries.'),
    note: z.string().nullable().describe('What the status alone does not tell, e.g. that its runner died while its agent runs on.'),
  })
  .describe('A task.');

/** Usage limits in force and budgets with today's spend (TaskStatus `limits`). */
export const limitsViewSchema: z.ZodType<LimitsView> = z
  .object({
    holds: z
      .array(
        z.object({
          agent: z.string().describe('The agent held back.'),
          account: z.string().describe('Whose limit (DELEGATE_ACCOUNT, or derived from the credentials).'),
          until: z.string().describe('When its tasks may start again (ISO 8601 UTC).'),
          limitType: z.string().nullable().describe('five_hour, seven_day, seven_day_opus, seven_day_sonnet, overage, when known.'),
          taskId: z.string().nullable().describe('The task whose run hit the limit.'),
        }),
      )
      .describe('Usage limits in force.'),
    budgets: z
      .array(
        z.object({
          scope: z.enum(['daily', 'schedule']).describe('The whole data dir (DELEGATE_DAILY_BUDGET_USD) or one schedule.'),
          scheduleId: z.string().nullable().describe("The schedule, for a schedule's budget."),
          spentUsd: z.number().describe('Spent today (US dollars), by runs that ended today.'),
          budgetUsd: z.number().describe('The daily budget (US dollars).'),
          level: z.enum(['ok', 'warning', 'exhausted']).describe('warning from 80 %; exhausted: no new task starts until the next day.'),
        }),
      )
      .describe("Budgets that are set, with today's spend (the runner's local day)."),
    dayEndsAt: z.string().describe("When the budgets' day ends (ISO 8601 UTC)."),
    lines: z.array(z.string()).describe('One line per hold and budget.'),
  })
  .describe('Usage limits and budgets.');
