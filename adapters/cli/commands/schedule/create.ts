import { Command, Option } from 'clipanion';
import { exitCode, EngineCommand, type Engine } from '../../context.js';
import { valueOption } from '../../options.js';
import { numberish, resolveDirectory } from '../../task-options.js';
import { scheduleSummary } from './format.js';

/** `delegate schedule create <prompt…>`: a cron (`--cron`) or one-time (`--at`) schedule. */
export class ScheduleCreateCommand extends EngineCommand {
  static override paths = [['schedule', 'create']];
  static override usage = Command.Usage({
    description: 'Create a cron or one-time schedule that queues a task at each slot',
    details:
      'Exactly one of --cron (5 fields: minute hour day-of-month month day-of-week, read in --timezone, default UTC), --at (ISO 8601 with a zone, in the future) and --after (another active or paused schedule: run once when it next starts a task, after that task finishes). --missed-run-policy says what happens to slots missed while no runner was up or while paused: skip (default), catchup (one run for all of them) or fail (recorded as failed runs). A new run never starts while the previous one is unfinished. Prints the schedule id.',
    examples: [
      ['Daily at 2am New York time, catching up missed nights', '$0 schedule create "Backup database to S3" --cron "0 2 * * *" --timezone America/New_York --missed-run-policy catchup'],
      ['Once, tomorrow at 8am UTC', '$0 schedule create "Deploy to production" --at 2026-02-19T08:00:00Z'],
      ['Once, after the next run of another schedule', '$0 schedule create "Report on the backup" --after sched-1a2b3c4d5e6f'],
    ],
  });

  prompt = Option.Rest({ name: 'prompt', required: 1 });
  cron = valueOption('--cron', 'EXPR', "Cron expression, e.g. '0 2 * * *'");
  at = valueOption('--at', 'TIME', 'One-time run at this ISO 8601 time with a zone');
  after = valueOption('--after', 'SCHEDULE', "One-time run after this schedule's next run");
  timezone = valueOption('--timezone', 'TZ', 'IANA time zone of the cron expression (default UTC)');
  missedRunPolicy = valueOption('--missed-run-policy', 'skip|catchup|fail', 'What to do with missed slots (default skip)');
  priority = valueOption('-p,--priority', 'P0|P1|P2', 'Priority of its tasks (default P2)');
  workingDirectory = valueOption('-w,--working-directory', 'DIR', 'Directory its tasks run in, relative to here (default: here)');
  agent = valueOption('--agent', 'NAME', 'Agent to run (default claude)');
  maxRuns = valueOption('--max-runs', 'N', 'Complete after this many runs');
  expiresAt = valueOption('--expires-at', 'TIME', 'Expire at this ISO 8601 time with a zone');
  dailyBudgetUsd = valueOption('--daily-budget-usd', 'USD', "US dollars its tasks may spend per day; past it they wait for the next day");
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the schedule as JSON' });

  async run(engine: Engine): Promise<number> {
    const fields = {
      prompt: this.prompt.join(' '),
      cronExpression: this.cron,
      scheduledAt: this.at,
      timezone: this.timezone,
      missedRunPolicy: this.missedRunPolicy,
      priority: this.priority,
      workingDirectory: this.workingDirectory === undefined ? undefined : resolveDirectory(this.workingDirectory, this.context.cwd, '--working-directory'),
      agent: this.agent,
      maxRuns: numberish(this.maxRuns),
      expiresAt: this.expiresAt,
      afterScheduleId: this.after,
      dailyBudgetUsd: numberish(this.dailyBudgetUsd),
    };
    const schedule = await engine.schedules.create(Object.fromEntries(Object.entries(fields).filter(([, value]) => value !== undefined)));
    await engine.ensureRunner();
    if (this.json) this.printJson(schedule);
    else this.print(`${schedule.scheduleId}\n${scheduleSummary(schedule)}`);
    return exitCode.ok;
  }
}
