import { Command, Option } from 'clipanion';
import { systemClock } from '../../../engine/clock.js';
import { UsageError } from '../../../engine/errors.js';
import { EventFollower, type EngineEvent, type EventFilter } from '../../../engine/events.js';
import { valueOption } from '../options.js';
import { parseSince } from '../../../engine/task-input.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { formatJson, printable } from '../format.js';

/** One event as a line: time, type, actor, then what changed and why. */
export function formatEvent(event: EngineEvent): string {
  const parts = [new Date(event.at).toISOString(), event.type.padEnd(15), printable(event.actorId)];
  if (event.from !== null && event.from !== event.to) parts.push(`${event.from}→${event.to}`);
  parts.push(`(${event.cause})`);
  if (event.attempt !== null) parts.push(`attempt=${event.attempt}`);
  if (event.nodeId !== null) parts.push(`node=${event.nodeId}`);
  // One line per event: a multi-line cancel reason shows its newlines as \n.
  if (event.detail) parts.push(`— ${printable(event.detail)}`);
  return parts.join(' ');
}

/** `delegate events`: the event stream of every runner on this database (SPEC §12). */
export class EventsCommand extends EngineCommand {
  static override paths = [['events']];
  static override usage = Command.Usage({
    description: 'Print the engine’s events (every committed state change of tasks, slots and runners), oldest first',
    examples: [
      ['Everything still in the table', '$0 events'],
      ['Follow one task as JSON lines', '$0 events --follow --task task-1a2b3c4d5e6f --json'],
      ['The last ten minutes', '$0 events --since 10m'],
    ],
  });

  follow = Option.Boolean('-f,--follow', false, { description: 'Keep printing new events until interrupted' });
  taskId = valueOption('--task', 'ID', 'Only events of this task');
  since = valueOption('--since', 'TIME', 'Only events since an ISO 8601 time or a duration ago (30s, 10m, 2h, 1d)');
  jsonOutput = Option.Boolean('--json', false, { description: 'One JSON object per line' });

  async run(engine: Engine): Promise<number> {
    const filter: EventFilter = {};
    if (this.since !== undefined) {
      const sinceAt = parseSince(this.since, Date.now());
      if (sinceAt === null) {
        throw new UsageError('invalid_input', `--since '${this.since}': expected an ISO 8601 time (2026-11-30T09:00:00Z) or a duration like 90s, 10m, 2h, 1d`);
      }
      filter.sinceAt = sinceAt;
    }
    if (this.taskId !== undefined) {
      await engine.tasks.get(this.taskId);
      filter.actorId = this.taskId;
    }
    const follower = new EventFollower(engine.store, systemClock, filter, 0);
    const print = (events: readonly EngineEvent[]): void => {
      for (const event of events) this.print(this.jsonOutput ? formatJson(event) : formatEvent(event));
    };
    for (let batch = await follower.poll(); batch.length > 0; batch = await follower.poll()) print(batch);
    if (!this.follow) return exitCode.ok;
    await new Promise<void>((resolve) => {
      follower.start(print);
      // The store closes after this: let a read in flight finish first.
      const stop = (): void => void follower.stop().then(resolve);
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });
    return exitCode.ok;
  }
}
