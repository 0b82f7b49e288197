/**
 * What every CLI command needs: validated config, the store and the engine API, opened once per command and
 * closed when it ends. Commands derive from `EngineCommand`, which turns usage errors into one line on stderr
 * and exit code 2, and database errors (locked, not a database) into one line and exit code 1, in one place.
 */
import { Command, type BaseContext } from 'clipanion';
import { loadConfig, type DelegateConfig } from '../../engine/config.js';
import { isStoreError, isUsageError } from '../../engine/errors.js';
import { systemClock } from '../../engine/clock.js';
import { ensureRunner, noRunnerHint } from '../../engine/runner-control.js';
import { openStore, type Store } from '../../engine/store/store.js';
import { TaskService } from '../../engine/task-service.js';
import { formatJson, printable } from './format.js';

/** The context clipanion passes to commands, plus the environment and cwd (tests pass their own). */
export interface DelegateContext extends BaseContext {
  cwd: string;
}

/** An open engine for one command. */
export interface Engine {
  config: DelegateConfig;
  store: Store;
  tasks: TaskService;
  /** Make sure a runner serves this data dir (SPEC §2); says so on stderr when it had to start one. */
  ensureRunner(): Promise<void>;
}

/** Exit codes (SPEC §5). */
export const exitCode = { ok: 0, failed: 1, usage: 2 } as const;

/** Base of every command: runs `run(engine)` with an open engine and maps errors to exit codes. */
export abstract class EngineCommand extends Command<DelegateContext> {
  /** Whether the command's stdout is one JSON document (then nothing else may go there). */
  protected json = false;

  abstract run(engine: Engine): Promise<number>;

  override async execute(): Promise<number> {
    let store: Store | undefined;
    try {
      const config = loadConfig(this.context.env);
      let toldWaiting = false;
      store = await openStore(config.databaseUrl, {
        authToken: config.databaseToken,
        // Once per command: a user needs to know why it is slow, not every statement that waited.
        onWait: (message) => {
          if (!toldWaiting) this.note(`delegate: ${message}`);
          toldWaiting = true;
        },
      });
      const opened = store;
      const startRunner = async (): Promise<void> => {
        const state = await ensureRunner(opened, config, this.context.env);
        if (state === 'started') this.note(`started a runner for ${config.dataDir} (log: ${config.dataDir}/runner.log)`);
        if (state === 'disabled') this.note(noRunnerHint);
      };
      const engine: Engine = {
        config,
        store: opened,
        // A task whose runner died here while its agent runs on needs a runner to adopt it.
        tasks: new TaskService(opened, config, systemClock, this.context.cwd, { onAdrift: startRunner }),
        ensureRunner: startRunner,
      };
      return await this.run(engine);
    } catch (error) {
      if (isUsageError(error)) {
        // One line, whatever value the message quotes.
        this.context.stderr.write(`delegate: ${printable(error.message)}\n`);
        return exitCode.usage;
      }
      const debug = this.context.env.LOG_LEVEL === 'debug';
      if (isStoreError(error)) {
        this.context.stderr.write(`delegate: ${debug ? (error.stack ?? error.message) : error.message}\n`);
        return exitCode.failed;
      }
      // Not rethrown: clipanion would print it on stdout, which belongs to --json output.
      const detail = error instanceof Error ? (debug ? (error.stack ?? error.message) : error.message) : String(error);
      this.context.stderr.write(`delegate: internal error: ${printable(detail, { multiline: true })}\n  (LOG_LEVEL=debug shows the stack)\n`);
      return exitCode.failed;
    } finally {
      await store?.close();
    }
  }

  /** A human note on stderr (stdout stays clean for --json and pipes); notes quote flags as typed, so they are escaped. */
  protected note(message: string): void {
    this.context.stderr.write(`${printable(message, { multiline: true })}\n`);
  }

  protected print(text: string): void {
    this.context.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
  }

  protected printJson(value: unknown): void {
    this.context.stdout.write(`${formatJson(value, 2)}\n`);
  }

  /** True when progress may be drawn: a terminal, and not --json. */
  protected get interactive(): boolean {
    return !this.json && (this.context.stderr as NodeJS.WriteStream).isTTY === true;
  }
}
