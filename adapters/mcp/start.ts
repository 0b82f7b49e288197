/**
 * `delegate mcp start` as a process: serve the MCP tools on stdio until the client closes stdin, and say why when
 * the server cannot start. Its own module, so that bin/delegate.js can run it without loading the CLI (every
 * command, clipanion): MCP clients start it at every session.
 */
import type { Readable, Writable } from 'node:stream';
import { isStoreError, isUsageError } from '../../engine/errors.js';
import { exitCode } from '../cli/exit-code.js';
import { startStdioServer } from './server.js';

/** What the server is started with: the process's streams and environment, or a test's. */
export interface McpStartContext {
  stdin: Readable;
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
}


/** Serve until the client closes stdin (or SIGINT/SIGTERM); resolves with the exit code. */
export async function runMcpStart(context: McpStartContext): Promise<number> {
  let server;
  try {
    server = await startStdioServer(context.env, context.cwd, { stdin: context.stdin, stdout: context.stdout });
  } catch (error) {
    if (isUsageError(error)) {
      context.stderr.write(`delegate: ${error.message}\n`);
      return exitCode.usage;
    }
    // Never on stdout, which belongs to the protocol. A database the user must fix is one line; the stack only
    // helps with our own faults (or when asked for).
    const stack = error instanceof Error && (!isStoreError(error) || context.env.LOG_LEVEL === 'debug') ? error.stack : undefined;
    context.stderr.write(`delegate: the MCP server could not start: ${stack ?? (error instanceof Error ? error.message : String(error))}\n`);
    return exitCode.failed;
  }
  const running = server;
  const stop = (signal: string): void => void running.close(signal);
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  await running.closed;
  return exitCode.ok;
}
