/**
 * The agent host (DESIGN §10): `node shim/host.js <runs dir>`. One small long-lived process of ours per data dir,
 * started detached in its own session by the first runner that needs it, runs the agents of every runner of that
 * data dir. Each agent leads a process group of its own; the host logs its output to the task's files and
 * reports through the run's files (run-files.ts), so it and its agents outlive a runner that dies, and the next
 * runner adopts the live runs or collects the outcomes the host wrote.
 *
 * One host rather than a shim process per run: a Node process costs ~110–150 ms of CPU to start, more than an
 * instant agent itself, and on two cores that halved the throughput of short tasks. A runner asks the host to
 * start a run over a unix socket (one JSON line each way); the files stay the truth, the socket only saves the
 * runner its polling. The host leaves when it has had no run and no runner for a few seconds.
 */
import { appendFileSync, chmodSync, readFileSync, statSync, unlinkSync } from 'node:fs';
import net from 'node:net';
import { captureGitState } from '../checkpoint.js';
import { processStartTime } from '../process-info.js';
import type { RunOutcome } from '../pool/protocol.js';
import { agentHostSocketOf, runFiles, START_GRACE_MS, writeJsonAtomic, type ProcessRef, type ShimProgress, type ShimSpec } from '../pool/run-files.js';
import type { AgentHostReply, AgentHostRequest } from './host-protocol.js';
import { superviseAgent } from './supervise.js';
import { applyV8Settings } from '../v8-settings.js';

// Node starts the host directly, not through bin/delegate.js: its V8 settings are set here, before any run.
applyV8Settings();

/** How long the host stays with no run and no runner connected. */
const IDLE_EXIT_MS = 5000;

function lost(error: string): RunOutcome {
  return { end: 'lost', exitCode: null, signal: null, error, result: { sawResult: false, isError: false }, outputBytes: 0, lastLines: [] };
}

function say(line: string): void {
  // stderr is the host's log file (agent-host.log in the runs directory).
  process.stderr.write(`${new Date().toISOString()} agent host ${process.pid}: ${line}\n`);
}

/** Write one of a run's files; a run whose runner removed its directory (cancelled) needs it no more. */
function writeRunFile(file: string, value: unknown): void {
  try {
    writeJsonAtomic(file, value, 0o600, false);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') say(`could not write ${file}: ${(error as Error).message}`);
  }
}

class AgentHost {
  readonly #self: ProcessRef = { pid: process.pid, pidStart: processStartTime(process.pid) };
  /** Runners connected, each with what to do when its connection closes: write the progress it heard that no file holds yet. */
  readonly #clients = new Map<net.Socket, Set<() => void>>();
  readonly #loadedModules = new Set<string>();
  #runs = 0;
  #idleTimer: NodeJS.Timeout | undefined;

  constructor(
    private readonly server: net.Server,
    private readonly socketPath: string,
    private readonly socketInode: number,
  ) {
    server.on('connection', (socket) => this.#accept(socket));
    this.#checkIdle();
  }

  #accept(socket: net.Socket): void {
    this.#clients.set(socket, new Set());
    this.#checkIdle();
    let buffered = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => {
      buffered += chunk;
      for (let newline = buffered.indexOf('\n'); newline >= 0; newline = buffered.indexOf('\n')) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        this.#onRequest(line, socket);
      }
    });
    socket.on('error', () => undefined);
    socket.on('close', () => {
      for (const gone of this.#clients.get(socket) ?? []) gone();
      this.#clients.delete(socket);
      this.#checkIdle();
    });
  }

  #onRequest(line: string, socket: net.Socket): void {
    let request: AgentHostRequest;
    try {
      request = JSON.parse(line) as AgentHostRequest;
    } catch {
      say(`ignored a request that is not JSON: ${line.slice(0, 80)}`);
      return;
    }
    if (request.op !== 'start' || typeof request.runDir !== 'string') {
      say(`ignored an unknown request: ${line.slice(0, 80)}`);
      return;
    }
    void this.#run(request.runDir, request.env ?? {}, request.progress === true, socket);
  }

  #reply(socket: net.Socket, reply: AgentHostReply): void {
    if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(reply)}\n`);
  }

  async #run(runDir: string, env: Record<string, string>, pushProgress: boolean, socket: net.Socket): Promise<void> {
    this.#runs++;
    this.#checkIdle();
    const files = runFiles(runDir);
    let outcome: RunOutcome | null = null;
    // progress.json is for a runner that adopts the run once the one following it is gone. While that one is
    // connected and hears the progress, the file is not written (one file fewer to create per run); when its
    // connection closes, the last progress it heard is.
    let unwritten: ShimProgress | null = null;
    const writeUnwritten = (): void => {
      if (unwritten) writeRunFile(files.progress, unwritten);
      unwritten = null;
    };
    const toldOnGone = pushProgress ? this.#clients.get(socket) : undefined;
    toldOnGone?.add(writeUnwritten);
    try {
      let spec: ShimSpec;
      try {
        // A request older than half the start grace may come after a sweep gave the run up: not started.
        if (Date.now() - statSync(files.spec).mtimeMs > START_GRACE_MS / 2) {
          outcome = lost('the request to start the agent reached the agent host too late; the run is resumed');
          return;
        }
        spec = JSON.parse(readFileSync(files.spec, 'utf8')) as ShimSpec;
      } catch (error) {
        // Its runner removed it (cancelled before it started): nothing to run, nothing to report.
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw error;
      }
      for (const url of spec.agentModules) {
        if (this.#loadedModules.has(url)) continue;
        await import(url);
        this.#loadedModules.add(url);
      }
      outcome = await superviseAgent(spec, env, {
        started: (agent) => {
          const started = { ...agent, host: this.#self };
          writeRunFile(files.started, started);
          this.#reply(socket, pushProgress ? { runDir, started, pushesProgress: true } : { runDir, started });
        },
        progress: (progress) => {
          if (toldOnGone && !socket.destroyed) {
            unwritten = progress;
            this.#reply(socket, { runDir, progress });
          } else {
            writeRunFile(files.progress, progress);
          }
        },
        keepaliveFile: files.keepalive,
      });
      // The checkpoint's git state, taken here where a spawn is cheap, not by the runner (see RunOutcome.git).
      outcome.git = await captureGitState(spec.cwd);
    } catch (error) {
      // A fault of ours, not the agent's: the run must not stay "live" for as long as the host lives.
      say(`run ${runDir} failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`);
      outcome = lost(`the agent host failed: ${error instanceof Error ? error.message : String(error)}`);
    } finally {
      toldOnGone?.delete(writeUnwritten);
      if (outcome) writeRunFile(files.exit, outcome);
      this.#runs--;
      this.#reply(socket, { runDir, ended: true });
      this.#checkIdle();
    }
  }

  /** Leave once nothing has used the host for IDLE_EXIT_MS: no run of its own, no runner connected. */
  #checkIdle(): void {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#runs > 0 || this.#clients.size > 0) return;
    this.#idleTimer = setTimeout(() => {
      if (this.#runs > 0 || this.#clients.size > 0) return;
      this.server.close();
      // Another host may have taken the path over (it found this one unreachable): leave its socket alone.
      try {
        if (statSync(this.socketPath).ino === this.socketInode) unlinkSync(this.socketPath);
      } catch {
        // Gone already.
      }
      process.exit(0);
    }, IDLE_EXIT_MS);
  }
}

/** Whether some process accepts connections on `socketPath`. */
function reachable(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = net.connect(socketPath);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
}

/** Listen on the socket, or null when a live host already does. A socket file nobody answers is a dead host's. */
async function listen(socketPath: string): Promise<net.Server | null> {
  for (let tries = 0; tries < 3; tries++) {
    const server = net.createServer();
    const listening = await new Promise<boolean>((resolve, reject) => {
      server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(false) : reject(error)));
      // Nobody else may connect, even for the moment between bind and chmod: who connects runs commands as us.
      const umask = process.umask(0o077);
      try {
        server.listen(socketPath, () => resolve(true));
      } finally {
        process.umask(umask);
      }
    });
    if (listening) {
      chmodSync(socketPath, 0o600);
      return server;
    }
    if (await reachable(socketPath)) return null;
    try {
      unlinkSync(socketPath);
    } catch {
      // Another host removed it first.
    }
  }
  throw new Error(`cannot listen on ${socketPath}: it stays in use`);
}

async function main(runsDir: string): Promise<void> {
  const socketPath = agentHostSocketOf(runsDir);
  const server = await listen(socketPath);
  // The runner that started this process waits for this line (or for its exit) before it connects.
  process.stdout.write('ready\n');
  if (!server) {
    say('another agent host serves this directory; leaving');
    process.exit(0);
  }
  new AgentHost(server, socketPath, statSync(socketPath).ino);
  say(`serving ${socketPath}`);
}

const runsDir = process.argv[2];
if (!runsDir) {
  process.stderr.write('usage: host <runs dir>\n');
  process.exit(2);
}
// Whoever started the host may close its end of stdout once it read "ready".
process.stdout.on('error', () => undefined);
main(runsDir).catch((error: unknown) => {
  try {
    appendFileSync(2, `agent host ${process.pid} could not start: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
  } finally {
    process.exit(1);
  }
});
