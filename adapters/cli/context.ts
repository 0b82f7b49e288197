/**
 * What every CLI command needs: validated config, the store and the engine API, opened once per command and
 * closed when it ends. Commands derive from `EngineCommand`, which turns errors into one line on stderr (and,
 * with --json, one JSON document on stdout) and an exit code, in one place: usage errors exit 2, a refused
 * command and database errors (locked, not a database) exit 1.
 */
import { Command, type BaseContext } from 'clipanion';
import { loadConfig, type DelegateConfig } from '../../engine/config.js';
import { exitCode } from './exit-code.js';
import { isStoreError, isUsageError, type StoreErrorCode, type UsageErrorCode } from '../../engine/errors.js';
import { systemClock } from '../../engine/clock.js';
import { EventBus } from '../../engine/events.js';
import { createLogger } from '../../engine/logger.js';
import { createNotifier, frontDoorNotifyGraceMs, type Notifier } from '../../engine/notifier.js';
import { ensureRunner, noRunnerHint } from '../../engine/runner-control.js';
import { openStore, type Store } from '../../engine/store/store.js';
import { ScheduleService } from '../../engine/schedule-service.js';
import { TaskService } from '../../engine/task-service.js';
import { UsageService } from '../../engine/usage-service.js';
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
  schedules: ScheduleService;
  usage: UsageService;
  /** Where this command's own commits are published (its cancels, retries), for whoever follows them in-process. */
  bus: EventBus;
  /** Make sure a runner serves this data dir (SPEC §2); says so on stderr when it had to start one. */
  ensureRunner(): Promise<void>;
}

export { exitCode };

/**
 * The exit code of a usage error. A conflict is a valid request the task's state refuses (cancel a finished
 * task, retry a running one): the command failed, the user did not misuse it, so scripts can tell them apart.
 */
export function exitCodeOf(code: UsageErrorCode): number {
  return code === 'conflict' ? exitCode.failed : exitCode.usage;
}

/** An error as `--json` prints it: the error's code and its one-line message. */
export function jsonError(code: UsageErrorCode | StoreErrorCode | 'internal', message: string): string {
  return `${formatJson({ error: { code, message } }, 2)}\n`;
}

/** Base of every command: runs `run(engine)` with an open engine and maps errors to exit codes. */
export abstract class EngineCommand extends Command<DelegateContext> {
  /** `--json`, in commands that declare it. Read before the engine opens, so even a config error is JSON. */
  // `declare`: a field here would be defined first and so list --json first in every command's help.
  declare jsonOutput?: boolean;

  abstract run(engine: Engine): Promise<number>;

  override async execute(): Promise<number> {
    let store: Store | undefined;
    let notifier: Notifier | null = null;
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
      // Task ends this command commits (a cancel, what a dead runner's agent left) are announced by it (engine/notifier.ts).
      const bus = new EventBus();
      notifier = createNotifier(config.notify, (id) => opened.getTask(id), createLogger('notify', config.logLevel), { env: this.context.env });
      if (notifier) bus.subscribe((event) => notifier!.onEvent(event));
      // A task whose runner died here while its agent runs on needs a runner to adopt it.
      const tasks = new TaskService(opened, config, systemClock, this.context.cwd, { onAdrift: startRunner, bus });
      const engine: Engine = {
        config,
        store: opened,
        tasks,
        schedules: new ScheduleService(opened, config, systemClock, this.context.cwd, tasks),
        usage: new UsageService(opened, systemClock),
        bus,
        ensureRunner: startRunner,
      };
      return await this.run(engine);
    } catch (error) {
      if (isUsageError(error)) {
        if (this.json) this.context.stdout.write(jsonError(error.code, error.message));
        // One line, whatever value the message quotes.
        this.context.stderr.write(`delegate: ${printable(error.message)}\n`);
        return exitCodeOf(error.code);
      }
      const debug = this.context.env.LOG_LEVEL === 'debug';
      if (isStoreError(error)) {
        if (this.json) this.context.stdout.write(jsonError(error.code, error.message));
        this.context.stderr.write(`delegate: ${debug ? (error.stack ?? error.message) : error.message}\n`);
        return exitCode.failed;
      }
      // Not rethrown: clipanion would print it on stdout, which belongs to --json output.
      const message = error instanceof Error ? error.message : String(error);
      const detail = error instanceof Error && debug ? (error.stack ?? message) : message;
      if (this.json) this.context.stdout.write(jsonError('internal', message));
      this.context.stderr.write(`delegate: internal error: ${printable(detail, { multiline: true })}\n  (LOG_LEVEL=debug shows the stack)\n`);
      return exitCode.failed;
    } finally {
      await notifier?.close(frontDoorNotifyGraceMs);
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

  /** Whether the command's stdout is one JSON document (then nothing else may go there). */
  protected get json(): boolean {
    return this.jsonOutput === true;
  }

  /** True when progress may be drawn: a terminal, and not --json. */
  protected get interactive(): boolean {
    return !this.json && (this.context.stderr as NodeJS.WriteStream).isTTY === true;
  }
}
