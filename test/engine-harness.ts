/**
 * An engine in the test process: the real store on a temp database file, the front-door TaskService and a real
 * runner whose agents are real (fake claude) processes. Faster than spawning the CLI for every step.
 */
import { agentsModuleUrl } from '../adapters/agents/index.js';
import { loadConfig, type DelegateConfig } from '../engine/config.js';
import { createLogger } from '../engine/logger.js';
import { Runner, type RunnerTiming } from '../engine/runner.js';
import { openStore, type Store } from '../engine/store/store.js';
import { systemClock, type Clock } from '../engine/clock.js';
import { EventBus, type EngineEvent } from '../engine/events.js';
import { TaskService, type TaskView } from '../engine/task-service.js';
import { ScheduleService } from '../engine/schedule-service.js';
import { eventually, testEnv } from './helpers.js';

/** A running engine for one test. */
export interface EngineHarness {
  env: NodeJS.ProcessEnv;
  config: DelegateConfig;
  store: Store;
  tasks: TaskService;
  schedules: ScheduleService;
  runner: Runner | null;
  /** The in-process event bus the front door and the runner share. */
  bus: EventBus;
  /** Every event published in this process so far. */
  events: EngineEvent[];
  /** Resolves with the first event published from now on that matches. */
  nextEvent(match: (event: EngineEvent) => boolean, timeoutMs?: number): Promise<EngineEvent>;
  startRunner(): Promise<Runner>;
  /** Wait until every task is finished; returns their views. */
  settled(ids: string[], timeoutMs?: number): Promise<TaskView[]>;
  close(): Promise<void>;
}

/** Open an engine on `dataDir`; the runner starts unless `startRunner: false`. */
export async function openEngine(
  dataDir: string,
  options: { env?: Record<string, string>; cwd?: string; clock?: Clock; timing?: Partial<RunnerTiming>; startRunner?: boolean } = {},
): Promise<EngineHarness> {
  const env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_IDLE_EXIT: '0', LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn', ...options.env });
  const config = loadConfig(env);
  const store = await openStore(config.databaseUrl);
  const clock = options.clock ?? systemClock;
  // One bus for the front door and the runner, as in a process that runs both: a commit of one wakes the other.
  const bus = new EventBus();
  const events: EngineEvent[] = [];
  bus.subscribe((event) => events.push(event));
  const tasks = new TaskService(store, config, clock, options.cwd ?? dataDir, { bus });
  const harness: EngineHarness = {
    env,
    config,
    store,
    tasks,
    schedules: new ScheduleService(store, config, clock, options.cwd ?? dataDir, tasks, bus),
    runner: null,
    bus,
    events,
    nextEvent(match, timeoutMs = 20_000) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          unsubscribe();
          reject(new Error(`no matching event within ${timeoutMs} ms`));
        }, timeoutMs);
        const unsubscribe = bus.subscribe((event) => {
          if (!match(event)) return;
          clearTimeout(timer);
          unsubscribe();
          resolve(event);
        });
      });
    },
    async startRunner() {
      const started = await Runner.start({
        config,
        logger: createLogger('runner', config.logLevel),
        autostarted: false,
        env,
        clock,
        agentModules: [agentsModuleUrl()],
        bus,
        timing: { killGraceMs: 1000, sampleMs: 200, ...options.timing },
      });
      if (!('runner' in started)) throw new Error('a runner was already up');
      harness.runner = started.runner;
      return started.runner;
    },
    settled(ids, timeoutMs = 30_000) {
      return eventually(async () => {
        const views = await Promise.all(ids.map((id) => tasks.get(id)));
        return views.every((view) => ['completed', 'failed', 'cancelled'].includes(view.status)) ? views : null;
      }, timeoutMs);
    },
    async close() {
      await harness.runner?.shutdown('test over');
      await store.close();
    },
  };
  if (options.startRunner !== false) await harness.startRunner();
  return harness;
}
