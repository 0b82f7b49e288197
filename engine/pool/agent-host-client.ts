/**
 * A launcher thread's line to the agent host of a data dir (engine/shim/host.ts): connects to its socket, starts
 * the host when there is none (or only a dead one's socket file), asks it to start runs and hears when they end.
 */
import { spawn } from 'node:child_process';
import { closeSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { openRotatedLog } from '../log-file.js';
import type { AgentHostReply, AgentHostRequest } from '../shim/host-protocol.js';
import { agentHostSocketOf, type ShimProgress, type ShimStarted } from './run-files.js';

/** How many times a launcher starts a host and connects before it gives up on a run. */
const CONNECT_TRIES = 5;

/** What a request to start a run came to; `pushesProgress`: the host sends the run's progress as it goes. */
export type HostStart = { started: ShimStarted; pushesProgress: boolean } | { ended: true } | { hostGone: true } | { error: string };

/** The host's entry script, next to this module's directory in the build output. */
export function agentHostEntry(): string {
  return new URL('../shim/host.js', import.meta.url).pathname;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function connect(socketPath: string): Promise<net.Socket | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    const socket = net.connect(socketPath);
    socket.once('connect', () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => resolve(error));
  });
}

/**
 * Start a host for `runsDir`; resolves once it listens (or found another host listening), or with why not. It is
 * started through a shell that leaves at once, so the host is not this process's child: a host that leaves when
 * idle is reaped by init, not left a zombie of a runner whose launcher thread (its parent's handle) is gone.
 */
async function startHost(runsDir: string, env: Record<string, string>): Promise<string | null> {
  mkdirSync(runsDir, { recursive: true });
  const logFile = path.join(runsDir, 'agent-host.log');
  const log = openRotatedLog(logFile);
  try {
    const shell = spawn('/bin/sh', ['-c', '"$@" &', 'agent-host', process.execPath, agentHostEntry(), runsDir], { detached: true, stdio: ['ignore', 'pipe', log], env, cwd: runsDir });
    shell.on('error', () => undefined);
    const ready = await new Promise<string | null>((resolve) => {
      shell.once('error', (error) => resolve(`cannot start the agent host (/bin/sh, ${process.execPath}): ${error.message}`));
      // The host says "ready" once it listens, or found another host listening; its end of the pipe closing
      // without a word means it could not start.
      shell.stdout?.once('data', () => resolve(null));
      shell.stdout?.once('end', () => resolve(`the agent host could not start; see ${logFile}`));
    });
    shell.stdout?.destroy();
    shell.unref();
    return ready;
  } finally {
    closeSync(log);
  }
}

/** One connection to the agent host of one runs directory. */
export class AgentHostClient {
  #socket: net.Socket | null = null;
  #connecting: Promise<net.Socket | string> | null = null;
  /** Runs asked of the host over the current connection: what to tell them of its replies. */
  readonly #runs = new Map<string, { onStarted(started: ShimStarted, pushesProgress: boolean): void; onProgress(progress: ShimProgress): void; onEnded(hostGone: boolean): void }>();

  constructor(
    private readonly runsDir: string,
    /** The environment of a host this client starts (the agent's own comes with each request). */
    private readonly hostEnv: Record<string, string>,
  ) {}

  /** The connection, made (and the host started) if there is none; a string says why there is none. */
  async #connection(): Promise<net.Socket | string> {
    if (this.#socket && this.#runs.size === 0) {
      // A pool thread with no task waits in Atomics.wait, its loop stopped: a host that died meanwhile is only
      // noticed once the loop polls again. Let it (the second setImmediate runs after the next poll) before
      // sending on the socket, or the run would be lost to a dead host. With runs in flight the loop has been
      // turning, and the socket's state is current.
      await new Promise((resolve) => setImmediate(resolve));
      await new Promise((resolve) => setImmediate(resolve));
    }
    if (this.#socket && !this.#socket.destroyed && !this.#socket.readableEnded) return this.#socket;
    this.#connecting ??= this.#connect().finally(() => {
      this.#connecting = null;
    });
    return this.#connecting;
  }

  async #connect(): Promise<net.Socket | string> {
    const socketPath = agentHostSocketOf(this.runsDir);
    let why = 'no agent host answered';
    for (let tries = 0; tries < CONNECT_TRIES; tries++) {
      const socket = await connect(socketPath);
      if (socket instanceof net.Socket) {
        this.#adopt(socket);
        return socket;
      }
      why = `cannot reach the agent host at ${socketPath}: ${socket.message}`;
      if (socket.code !== 'ENOENT' && socket.code !== 'ECONNREFUSED') return why;
      const failed = await startHost(this.runsDir, this.hostEnv);
      if (failed !== null) why = failed;
      // A host that found another one leaving (or lost a race for the socket) exits 0: try again at once.
      if (tries > 0) await sleep(50 * tries);
    }
    return why;
  }

  #adopt(socket: net.Socket): void {
    this.#socket = socket;
    // The connection must not keep the thread alive by itself; runs in flight hold their own promises.
    socket.unref();
    socket.setEncoding('utf8');
    let buffered = '';
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const reply = JSON.parse(buffered.slice(0, newline)) as AgentHostReply;
        buffered = buffered.slice(newline + 1);
        const run = this.#runs.get(reply.runDir);
        if (!run) continue;
        if ('started' in reply) run.onStarted(reply.started, reply.pushesProgress === true);
        else if ('progress' in reply) run.onProgress(reply.progress);
        else if ('ended' in reply) {
          this.#runs.delete(reply.runDir);
          run.onEnded(false);
        }
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      if (this.#socket === socket) this.#socket = null;
      // The host is gone (or its line is): whoever waits on it must look at the run's files and processes.
      const runs = [...this.#runs.values()];
      this.#runs.clear();
      for (const run of runs) run.onEnded(true);
    });
  }

  /**
   * Ask the host to start the run in `runDir`. `writeSpec` is called once connected, just before the request, so
   * the spec's age measures the request's; it returns why it could not write the spec, or null.
   * `start`: the agent's pid once it runs; `ended` when the run ended before that (a spawn error: its outcome is
   * in the run's files); `hostGone` when the connection broke first. `ended` resolves when the host says the run
   * ended, or the connection breaks. `onProgress` hears the progress a host that pushes it sends.
   */
  async start(
    runDir: string,
    env: Record<string, string>,
    writeSpec: () => string | null,
    onProgress: (progress: ShimProgress) => void,
  ): Promise<{ start: HostStart; ended: Promise<void> }> {
    const connection = await this.#connection();
    if (typeof connection === 'string') return { start: { error: connection }, ended: Promise.resolve() };
    if (connection.destroyed) return { start: { hostGone: true }, ended: Promise.resolve() };
    const unwritten = writeSpec();
    if (unwritten !== null) return { start: { error: unwritten }, ended: Promise.resolve() };
    let resolveStart!: (start: HostStart) => void;
    let resolveEnded!: () => void;
    const start = new Promise<HostStart>((resolve) => (resolveStart = resolve));
    const ended = new Promise<void>((resolve) => (resolveEnded = resolve));
    this.#runs.set(runDir, {
      onStarted: (started, pushesProgress) => resolveStart({ started, pushesProgress }),
      onProgress,
      onEnded: (hostGone) => {
        resolveStart(hostGone ? { hostGone: true } : { ended: true });
        resolveEnded();
      },
    });
    connection.write(`${JSON.stringify({ op: 'start', runDir, env, progress: true } satisfies AgentHostRequest)}\n`);
    return { start: await start, ended };
  }
}

const clients = new Map<string, AgentHostClient>();

/** This thread's client for the agent host of `runsDir`. */
export function agentHostClient(runsDir: string, hostEnv: Record<string, string>): AgentHostClient {
  let client = clients.get(runsDir);
  if (!client) {
    client = new AgentHostClient(runsDir, hostEnv);
    clients.set(runsDir, client);
  }
  return client;
}
