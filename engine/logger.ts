/**
 * Structured logs to stderr with a component prefix. Never stdout: the MCP server's stdout is protocol only and
 * `--json` output must stay one document. A runner's stderr is redirected to `<data dir>/runner.log`.
 */
import type { LogLevel } from './config.js';
import { printable } from './control-characters.js';

const rank: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A component logger. */
export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
  child(component: string): Logger;
}

/** A logger writing lines like `2026-11-27T12:00:00.000Z info  [runner] claimed task id=task-… attempt=1`. */
export function createLogger(component: string, level: LogLevel, write: (line: string) => void = (line) => process.stderr.write(line)): Logger {
  const emit = (at: LogLevel, message: string, fields?: Record<string, unknown>): void => {
    if (rank[at] < rank[level]) return;
    const extra = fields
      ? Object.entries(fields)
          .filter(([, value]) => value !== undefined)
          .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
          .join(' ')
      : '';
    // Fields carry agents' errors and users' input: escaped, each record stays one line and cannot drive the
    // terminal of a foreground `delegate serve`.
    write(`${printable(`${new Date().toISOString()} ${at.padEnd(5)} [${component}] ${message}${extra ? ` ${extra}` : ''}`)}\n`);
  };
  return {
    debug: (message, fields) => emit('debug', message, fields),
    info: (message, fields) => emit('info', message, fields),
    warn: (message, fields) => emit('warn', message, fields),
    error: (message, fields) => emit('error', message, fields),
    child: (child) => createLogger(`${component}:${child}`, level, write),
  };
}
