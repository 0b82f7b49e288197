/**
 * The MCP stdio server (`delegate mcp start`): the tools of SPEC §4 over the engine API. Like every front door
 * it only queues work and makes sure a runner node is alive for its data dir; it never runs an agent itself, so
 * tasks keep running after the client (Claude Code) goes away. stdout carries the protocol only; logs go to
 * stderr. The server ends when its stdin closes, after answering the requests it has already received. It never
 * goes silent on bad input: an oversized, non-JSON or non-JSON-RPC line gets a JSON-RPC error (see
 * line-transport.ts) and a request whose params do not fit its MCP method gets −32602 Invalid params.
 */
import type { Readable, Writable } from 'node:stream';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Transport, TransportSendOptions } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { jsonSchemaValidator } from '@modelcontextprotocol/sdk/validation/types.js';
import {
  ErrorCode,
  isJSONRPCErrorResponse,
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type MessageExtraInfo,
} from '@modelcontextprotocol/sdk/types.js';
import { systemClock } from '../../engine/clock.js';
import { loadConfig, type DelegateConfig } from '../../engine/config.js';
import { EventBus } from '../../engine/events.js';
import { createLogger, type Logger } from '../../engine/logger.js';
import { createNotifier, frontDoorNotifyGraceMs } from '../../engine/notifier.js';
import { ensureRunner, noRunnerHint, type RunnerState } from '../../engine/runner-control.js';
import { openStore, type Store } from '../../engine/store/store.js';
import { ScheduleService } from '../../engine/schedule-service.js';
import { TaskService } from '../../engine/task-service.js';
import { delegateVersion } from '../../engine/version.js';
// Registers the built-in agents: this server validates tasks' agent names, also when embedded without the CLI.
import '../agents/index.js';
import { LineTransport } from './line-transport.js';
import { paramsProblem } from './message-checks.js';
import { cancelTask } from './tools/cancel-task.js';
import { createPipeline } from './tools/create-pipeline.js';
import { resumeTask } from './tools/resume-task.js';
import { delegateTask } from './tools/delegate-task.js';
import { retryTask } from './tools/retry-task.js';
import { taskLogs } from './tools/task-logs.js';
import { taskStatus } from './tools/task-status.js';
import type { McpTool, RunnerReport, ToolDeps } from './tools/tool.js';
import { cancelSchedule } from './tools/cancel-schedule.js';
import { getSchedule } from './tools/get-schedule.js';
import { listSchedules } from './tools/list-schedules.js';
import { pauseSchedule, resumeSchedule } from './tools/pause-schedule.js';
import { scheduleTask } from './tools/schedule-task.js';
import { usageSummary } from './tools/usage-summary.js';
import { UsageService } from '../../engine/usage-service.js';
import { waitForTask } from './tools/wait-for-task.js';

/** The tools this server offers, in the order tools/list shows them. */
export const mcpTools: readonly McpTool[] = [
  delegateTask,
  taskStatus,
  taskLogs,
  cancelTask,
  retryTask,
  resumeTask,
  createPipeline,
  waitForTask,
  scheduleTask,
  listSchedules,
  getSchedule,
  cancelSchedule,
  pauseSchedule,
  resumeSchedule,
  usageSummary,
];

const instructions =
  'delegate runs Claude Code tasks in the background on this machine. DelegateTask queues a task and returns its ' +
  'taskId at once; the task keeps running after this session ends. Follow tasks with TaskStatus, read their output ' +
  'with TaskLogs, wait for them with WaitForTask (progress while it waits), chain them with dependsOn (or CreatePipeline), and continue a finished one with ResumeTask. ' +
  'ScheduleTask queues a task on a cron schedule (in a time zone) or once at a time; GetSchedule shows its history. ' +
  'UsageSummary sums what the runs cost (dollars, tokens, turns), per day, agent or schedule.';

/** An MCP server with every tool registered; connect it to any transport (stdio, or in-memory in tests). */
export function createMcpServer(deps: ToolDeps | Promise<ToolDeps>): McpServer {
  const server = new McpServer({ name: 'delegate', version: delegateVersion }, { instructions, jsonSchemaValidator: noElicitation });
  for (const tool of mcpTools) tool.register(server, deps);
  return server;
}

/**
 * In place of the SDK's default validator (Ajv), which it only uses on what an elicitation returns: this server
 * never asks the user anything. Building Ajv with its formats cost every start ~5 ms, and the MCP bundle leaves
 * Ajv out altogether (scripts/bundle-mcp.js).
 */
const noElicitation: jsonSchemaValidator = {
  getValidator: () => {
    throw new Error('the delegate MCP server does not elicit, so it has no JSON Schema validator');
  },
};

/** A front door's runner check as a report for tool results. Never throws: the task is saved before it runs. */
export function runnerStarter(store: Store, config: DelegateConfig, env: NodeJS.ProcessEnv, logger: Logger): () => Promise<RunnerReport> {
  const log = `${config.dataDir}/runner.log`;
  const notes: Record<RunnerState, string> = {
    running: 'A runner is up and will run it.',
    started: `Started a runner for ${config.dataDir} (log: ${log}); it runs the task in the background.`,
    starting: 'A runner is being started and will run it.',
    disabled: `${noRunnerHint.charAt(0).toUpperCase()}${noRunnerHint.slice(1)}.`,
  };
  return async () => {
    try {
      const state = await ensureRunner(store, config, env);
      if (state === 'started') logger.info('started a runner', { dataDir: config.dataDir, log });
      return { runner: state, note: notes[state] };
    } catch (error) {
      const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
      logger.error('could not start a runner', { error: message });
      return { runner: 'failed', note: `Could not start a runner (${message}); the task is saved and waits in the queue until you start one with \`delegate serve\` (log: ${log}).` };
    }
  };
}

/** A serving stdio server. */
export interface StdioServer {
  /** Resolves once the server has closed (stdin ended, stdout broke, or `close` was called) and the store is closed. */
  closed: Promise<void>;
  /** Stop serving: answer the requests already received (waiting up to 10 s), then close the transport and the store. */
  close(why: string): Promise<void>;
}

/** How long a closing server waits for unanswered requests (a DelegateTask may be starting a runner). */
const drainMs = 10_000;

/** How long the store waits for the client's first message before it opens anyway. */
const firstInputWaitMs = 100;

/**
 * A transport that knows which requests it has not answered yet, so a server whose client went away still
 * finishes what it was asked (the task is queued, a runner started) before it exits. It also answers requests
 * whose params do not fit their MCP method: the SDK would parse them inside the handler and answer −32603 with a
 * zod dump.
 */
class AnsweringTransport implements Transport {
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  onmessage?: (<T extends JSONRPCMessage>(message: T, extra?: MessageExtraInfo) => void) | undefined;
  readonly unanswered = new Set<string | number>();

  constructor(private readonly inner: Transport) {
    inner.onmessage = (message, extra) => {
      if (isJSONRPCRequest(message)) {
        this.unanswered.add(message.id);
        const problem = paramsProblem(message);
        if (problem !== undefined) {
          const refusal = `Invalid params: ${problem}`;
          this.onerror?.(new Error(refusal));
          this.send({ jsonrpc: '2.0', id: message.id, error: { code: ErrorCode.InvalidParams, message: refusal } }).catch((error: unknown) =>
            this.onerror?.(error instanceof Error ? error : new Error(String(error))),
          );
          return;
        }
      }
      this.onmessage?.(message, extra);
    };
    inner.onclose = () => this.onclose?.();
    inner.onerror = (error) => this.onerror?.(error);
  }

  start(): Promise<void> {
    return this.inner.start();
  }

  async send(message: JSONRPCMessage, options?: TransportSendOptions): Promise<void> {
    try {
      await this.inner.send(message, options);
    } finally {
      if ((isJSONRPCResultResponse(message) || isJSONRPCErrorResponse(message)) && message.id !== undefined) this.unanswered.delete(message.id);
    }
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  /** Resolves when every request received so far is answered, or after `timeoutMs`. */
  async drained(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.unanswered.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Serve MCP on stdio for the data dir of `env`, with `cwd` as the default working directory of tasks. Throws a
 * UsageError (`invalid_config`) before serving anything when the configuration is bad.
 */
export async function startStdioServer(
  env: NodeJS.ProcessEnv,
  cwd: string,
  io: { stdin?: Readable; stdout?: Writable } = {},
): Promise<StdioServer> {
  const config = loadConfig(env);
  const logger = createLogger('mcp', config.logLevel);
  const stdin = io.stdin ?? process.stdin;
  const stdout = io.stdout ?? process.stdout;
  // Ends waits (WaitForTask) when the server closes, so closing does not sit out their timeouts.
  const serverClosing = new AbortController();
  const lines = new LineTransport(stdin, stdout, { maxMessageBytes: config.mcpMaxMessageBytes });
  // initialize and tools/list need no database, so the store opens once the first read of stdin (which usually
  // holds initialize) is answered: opening it loads the native driver and reads the schema, ~20–30 ms that a
  // client would otherwise wait for its first answer. A client that says nothing for a while does not hold it
  // up; tool calls wait for it. A store that cannot open still ends the server, just after it may have answered.
  const opening = (async () => {
    let waited: NodeJS.Timeout | undefined;
    await Promise.race([lines.firstInput, new Promise((resolve) => (waited = setTimeout(resolve, firstInputWaitMs)))]);
    clearTimeout(waited);
    // The answer to that input is written in the microtasks after its read: after them, not before.
    await new Promise((resolve) => setImmediate(resolve));
    const store = await openStore(config.databaseUrl, { authToken: config.databaseToken, onWait: (message) => logger.warn(message) });
    const ensureRunner = runnerStarter(store, config, env, logger);
    // Task ends this server commits (a cancel, what a dead runner's agent left) are announced by it (engine/notifier.ts).
    const bus = new EventBus();
    const notifier = createNotifier(config.notify, (id) => store.getTask(id), logger.child('notify'), { env });
    if (notifier) bus.subscribe((event) => notifier.onEvent(event));
    // A task whose runner died here while its agent runs on needs a runner to adopt it.
    const tasks = new TaskService(store, config, systemClock, cwd, { onAdrift: () => ensureRunner(), bus });
    const deps: ToolDeps = {
      tasks,
      schedules: new ScheduleService(store, config, systemClock, cwd, tasks),
      usage: new UsageService(store, systemClock),
      ensureRunner,
      logger,
      closing: serverClosing.signal,
      allowShellAgent: config.allowShellAgent,
    };
    return { store, notifier, deps };
  })();
  const deps = opening.then((opened) => opened.deps);
  // Both are awaited (below, and by tool calls); until then a failure must not count as unhandled.
  opening.catch(() => undefined);
  deps.catch(() => undefined);
  const server = createMcpServer(deps);
  const transport = new AnsweringTransport(lines);

  let markClosed!: () => void;
  const closed = new Promise<void>((resolve) => (markClosed = resolve));
  let closing = false;
  const close = async (why: string): Promise<void> => {
    if (closing) return closed;
    closing = true;
    logger.info('closing', { why, unanswered: transport.unanswered.size });
    serverClosing.abort(new Error(`the server is closing (${why})`));
    await transport.drained(drainMs);
    await server.close().catch((error: unknown) => logger.warn('closing the transport failed', { error: String(error) }));
    const opened = await opening.catch(() => undefined);
    await opened?.notifier?.close(frontDoorNotifyGraceMs);
    await opened?.store.close();
    markClosed();
    return closed;
  };

  // A client that goes away just closes stdin; the transport reports it after delivering what came before.
  lines.onend = () => void close('stdin closed');
  stdout.on('error', (error: Error) => void close(`stdout failed: ${error.message}`));
  server.server.onerror = (error) => logger.warn('protocol error', { error: error.message });
  server.server.onclose = () => void close('transport closed');
  await server.connect(transport);
  try {
    await opening;
  } catch (error) {
    // Not serving without a database: stop reading, and let the caller say why, as when nothing was answered yet.
    closing = true;
    serverClosing.abort(error);
    await server.close().catch(() => undefined);
    throw error;
  }
  // Once its store is open. A client that said its piece and went at once has had it answered by now, and the
  // log has already said the server is closing.
  if (!closing) logger.info('serving MCP on stdio', { dataDir: config.dataDir, cwd, pid: process.pid, version: delegateVersion });
  return { closed, close };
}
