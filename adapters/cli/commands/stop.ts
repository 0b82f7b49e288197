import { Command } from 'clipanion';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { stopLocalRunners } from '../../../engine/runner-control.js';

/** `delegate stop`: stop this data dir's runners on this host; running tasks go back to the queue. */
export class StopCommand extends EngineCommand {
  static override paths = [['stop']];
  static override usage = Command.Usage({
    description: "Stop this data dir's runners on this host (no new claims; running tasks are handed back to the queue)",
    examples: [['Stop', '$0 stop']],
  });

  async run(engine: Engine): Promise<number> {
    const stopped = await stopLocalRunners(engine.store, engine.config);
    if (stopped.length === 0) this.print('no runner is running for this data dir');
    else this.print(`stopped ${stopped.length} runner${stopped.length === 1 ? '' : 's'} (${stopped.map((node) => `pid ${node.pid}`).join(', ')})`);
    return exitCode.ok;
  }
}
