import { Command, Option } from 'clipanion';
import { systemClock } from '../../../engine/clock.js';
import { UsageError } from '../../../engine/errors.js';
import { createLogger } from '../../../engine/logger.js';
import type { StatelyBridge } from '../../inspector/stately.js';
import { valueOption } from '../options.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';

/** `delegate inspect`: serve the statechart inspector (SPEC §11) until interrupted. */
export class InspectCommand extends EngineCommand {
  static override paths = [['inspect']];
  static override usage = Command.Usage({
    description: 'Serve a local web page showing every live actor (runners, slots, tasks, schedules), its statechart and events',
    details:
      'The page shows the runners, worker slots, unfinished tasks and schedules of every engine sharing this database, each with its statechart and recent events, a dependency graph of a task, and the finished tasks page by page; it updates live. It is read-only except for Cancel and Retry, which do what `delegate cancel` and `delegate retry` do. It listens on 127.0.0.1 and every request needs the random token in the printed URL. Runs until SIGINT/SIGTERM.',
    examples: [
      ['On a free port', '$0 inspect'],
      ['On a fixed port', '$0 inspect --port 7070'],
    ],
  });

  port = valueOption('--port', 'N', 'Port to listen on (default: a free one)');
  host = valueOption('--host', 'ADDRESS', 'Address to listen on (default 127.0.0.1; the token still guards every request)');
  stately = Option.Boolean('--stately', false, { description: 'Also send events to Stately’s inspector (needs @statelyai/inspect installed)' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print {url, port, token} as JSON once listening' });

  async run(engine: Engine): Promise<number> {
    const port = this.port === undefined ? 0 : Number(this.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new UsageError('invalid_input', `--port '${this.port}': expected a whole number from 0 to 65535`);
    let bridge: StatelyBridge | null = null;
    if (this.stately) {
      // Loaded only here: the optional package must not be needed by any other command.
      const { startStatelyBridge } = await import('../../inspector/stately.js');
      bridge = await startStatelyBridge();
    }
    // Loaded only by this command (its page, routes and readers).
    const { startInspector } = await import('../../inspector/server.js');
    const inspector = await startInspector({
      store: engine.store,
      tasks: engine.tasks,
      clock: systemClock,
      log: createLogger('inspector', engine.config.logLevel),
      bus: engine.bus,
      ensureRunner: () => engine.ensureRunner(),
      onEvents: bridge ? (events) => bridge.onEvents(events) : undefined,
      host: this.host,
      port,
    });
    if (this.json) this.printJson({ url: inspector.url, port: inspector.port, token: inspector.token });
    else this.print(`inspector: ${inspector.url}\n(read-only except cancel and retry; Ctrl-C stops it)`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await inspector.close();
    bridge?.stop();
    return exitCode.ok;
  }
}
