import { Command, Option } from 'clipanion';
import { EngineCommand, exitCode, type Engine } from '../context.js';
import { createLogger } from '../../../engine/logger.js';
import { liveLocalRunners, spawnDetachedRunner, waitForRunner } from '../../../engine/runner-control.js';
import { agentsModuleUrl } from '../../agents/index.js';

/** `delegate serve`: run a runner node in the foreground (or `--detach` it). */
export class ServeCommand extends EngineCommand {
  static override paths = [['serve']];
  static override usage = Command.Usage({
    description: 'Run a runner node: claim queued tasks and run their agents',
    details:
      'Runs in the foreground until SIGINT/SIGTERM or `delegate stop`; with --detach starts in the background (logging to <data dir>/runner.log) and returns once it is up, or says so when a runner already serves this data dir on this host. Any number of runners may share one database. A runner exits after DELEGATE_IDLE_EXIT ms with nothing to do (0 = never).',
    examples: [
      ['Foreground', '$0 serve'],
      ['Background', '$0 serve --detach'],
    ],
  });

  detach = Option.Boolean('--detach', false, { description: 'Start in the background and return once it is up' });
  // Set by front doors that start a runner on demand: such a runner steps aside when another is already up.
  autostarted = Option.Boolean('--autostarted', false, { hidden: true });

  async run(engine: Engine): Promise<number> {
    const { config } = engine;
    if (this.detach) {
      // A second runner on one host only competes for the same slots; someone asking for "a runner" has one.
      const [running] = await liveLocalRunners(engine.store, config);
      if (running) {
        this.print(`a runner is already running for ${config.dataDir} (pid ${running.pid})`);
        return exitCode.ok;
      }
      const pid = spawnDetachedRunner(config, this.context.env);
      const node = await waitForRunner(engine.store, config, 15_000, pid);
      if (!node) {
        this.note(`delegate: the runner did not come up; see ${config.dataDir}/runner.log`);
        return exitCode.failed;
      }
      this.print(`runner ${node.id} started (pid ${node.pid}); log: ${config.dataDir}/runner.log`);
      return exitCode.ok;
    }
    const logger = createLogger('runner', config.logLevel);
    // Loaded here so other commands start without the pool, the probes and the slot machines.
    const { Runner } = await import('../../../engine/runner.js');
    // The pool's worker threads import the same agent modules this process registered.
    const started = await Runner.start({ config, logger, autostarted: this.autostarted, env: this.context.env, agentModules: [agentsModuleUrl()] });
    if ('alreadyRunning' in started) {
      logger.info('another runner already serves this data dir; exiting', { node: started.alreadyRunning.id, pid: started.alreadyRunning.pid });
      return exitCode.ok;
    }
    const { runner } = started;
    const stop = (signal: string): void => void runner.shutdown(signal);
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
    await runner.stopped;
    return exitCode.ok;
  }
}
