/**
 * The inspector's HTTP server (SPEC §11): one page, a small JSON API and an SSE stream, on 127.0.0.1 by default.
 * Every request needs the random token the command printed; state-changing ones (cancel, retry) need it in the
 * `X-Delegate-Token` header, which a cross-site form or image cannot send, so a page on another origin cannot
 * make the browser cancel a task. Cancel and retry are the front doors' TaskService verbs, as the CLI's are.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Clock } from '../../engine/clock.js';
import { isUsageError, UsageError, type UsageErrorCode } from '../../engine/errors.js';
import type { EngineEvent, EventBus } from '../../engine/events.js';
import type { Logger } from '../../engine/logger.js';
import type { Store } from '../../engine/store/store.js';
import type { TaskService } from '../../engine/task-service.js';
import { EventStream } from './event-stream.js';
import { pageHtml, pageScript, pageStyle } from './page.js';
import { InspectorReads } from './reads.js';
import { statecharts } from './statechart.js';

/** The header that carries the token on API calls (required on POST). */
export const tokenHeader = 'x-delegate-token';

/** What the inspector serves from. */
export interface InspectorOptions {
  store: Store;
  tasks: TaskService;
  clock: Clock;
  log: Logger;
  /** Events committed on this process's own connection (its cancels and retries), which data_version does not show. */
  bus?: EventBus | undefined;
  /** Called after a retry queued a task, so a runner picks it up (as `delegate retry` does). */
  ensureRunner?: (() => Promise<void>) | undefined;
  /** Every batch of events the page gets (the --stately bridge). */
  onEvents?: ((events: readonly EngineEvent[]) => void) | undefined;
  host?: string | undefined;
  /** 0 (the default) picks a free port. */
  port?: number | undefined;
  /** Tests pass one; otherwise 24 random bytes. */
  token?: string | undefined;
}

/** A running inspector. */
export interface Inspector {
  /** The page's address with the token, to print. */
  url: string;
  host: string;
  port: number;
  token: string;
  close(): Promise<void>;
}

/** History pages hold this many tasks unless the page asks for another size (1–200). */
const defaultPageSize = 50;

const httpStatus: Record<UsageErrorCode, number> = { invalid_input: 400, invalid_config: 400, not_found: 404, conflict: 409 };

/** Headers of every answer: nothing cached (it carries the token), no referrer (the token is in the URL), own code only. */
const commonHeaders = {
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
};

function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, { ...commonHeaders, 'content-type': type });
  response.end(body);
}

function sendJson(response: ServerResponse, status: number, value: unknown): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(value));
}

function sendError(response: ServerResponse, status: number, code: string, message: string): void {
  sendJson(response, status, { error: { code, message } });
}

/** Constant-time comparison, so the token cannot be guessed byte by byte from response times. */
function sameToken(given: string | null | undefined, token: string): boolean {
  if (typeof given !== 'string') return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** A small JSON body (cancel's reason); an empty body is `{}`. */
async function readJsonBody(request: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > 64 * 1024) throw new UsageError('invalid_input', 'request body: expected at most 64 KiB of JSON');
    chunks.push(chunk);
  }
  // Decoded once whole: a character split between chunks stays one character.
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return {};
  try {
    const value: unknown = JSON.parse(text);
    if (value && typeof value === 'object' && !Array.isArray(value)) return value as Record<string, unknown>;
  } catch {
    // Falls through to the one error below.
  }
  throw new UsageError('invalid_input', 'request body: expected a JSON object like {"reason": "…"}');
}

/** Start the inspector; resolves once it listens. */
export async function startInspector(options: InspectorOptions): Promise<Inspector> {
  const token = options.token ?? randomBytes(24).toString('hex');
  const host = options.host ?? '127.0.0.1';
  const reads = new InspectorReads(options.store, options.tasks);
  const stream = new EventStream(options.store, options.clock, options.log, options.onEvents);
  await stream.start(options.bus);
  const charts = JSON.stringify(statecharts());

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://inspector');
    const headerToken = request.headers[tokenHeader];
    const fromHeader = sameToken(Array.isArray(headerToken) ? headerToken[0] : headerToken, token);
    const fromQuery = sameToken(url.searchParams.get('token'), token);
    if (!fromHeader && !fromQuery) return sendError(response, 401, 'unauthorized', `token: missing or wrong; open the URL \`delegate inspect\` printed`);
    const method = request.method ?? 'GET';
    const action = /^\/api\/tasks\/([^/]+)\/(cancel|retry)$/.exec(url.pathname);
    if (action) {
      if (method !== 'POST') return sendError(response, 405, 'method_not_allowed', `${url.pathname}: expected POST`);
      if (!fromHeader) return sendError(response, 403, 'forbidden', `${tokenHeader}: a cancel or retry needs the token in this header, not only in the URL`);
      const taskId = decodeURIComponent(action[1]!);
      if (action[2] === 'cancel') {
        const body = await readJsonBody(request);
        const reason = body.reason === undefined ? undefined : String(body.reason);
        return sendJson(response, 200, await options.tasks.cancelWithCascade(taskId, reason ?? 'cancelled from the inspector'));
      }
      const task = await options.tasks.retry(taskId);
      await options.ensureRunner?.();
      return sendJson(response, 200, task);
    }
    if (method !== 'GET' && method !== 'HEAD') return sendError(response, 405, 'method_not_allowed', `${method} ${url.pathname}: the inspector is read-only except POST …/cancel and …/retry`);
    switch (url.pathname) {
      case '/':
        return send(response, 200, 'text/html; charset=utf-8', pageHtml(token));
      case '/app.js':
        return send(response, 200, 'text/javascript; charset=utf-8', pageScript);
      case '/app.css':
        return send(response, 200, 'text/css; charset=utf-8', pageStyle);
      case '/api/statecharts':
        return send(response, 200, 'application/json; charset=utf-8', charts);
      case '/api/live':
        return sendJson(response, 200, await reads.live());
      case '/api/history': {
        const size = Number(url.searchParams.get('limit') ?? defaultPageSize);
        if (!Number.isInteger(size) || size < 1 || size > 200) throw new UsageError('invalid_input', `limit '${url.searchParams.get('limit')}': expected a whole number from 1 to 200`);
        return sendJson(response, 200, await reads.history(url.searchParams.get('after'), size));
      }
      case '/api/actor':
        return sendJson(response, 200, await reads.actor(url.searchParams.get('kind') ?? '', url.searchParams.get('id') ?? ''));
      case '/api/graph':
        return sendJson(response, 200, await reads.graph(url.searchParams.get('id') ?? ''));
      case '/api/stream':
        return stream.attach(response);
      default:
        return sendError(response, 404, 'not_found', `${url.pathname}: no such page`);
    }
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((error: unknown) => {
      if (response.headersSent) return void response.destroy();
      if (isUsageError(error)) return sendError(response, httpStatus[error.code], error.code, error.message);
      options.log.error('request failed', { path: request.url?.split('?')[0], error: String(error) });
      sendError(response, 500, 'internal', error instanceof Error ? error.message : String(error));
    });
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port ?? 0, host, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (error) {
    await stream.close();
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError('invalid_input', `--port ${options.port}: already in use on ${host}; pick another, or leave --port out for a free one`);
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new UsageError('invalid_input', `--host ${host}: not an address of this machine`);
    throw error;
  }
  const { port } = server.address() as AddressInfo;
  const shownHost = host.includes(':') ? `[${host}]` : host;
  return {
    url: `http://${shownHost}:${port}/?token=${token}`,
    host,
    port,
    token,
    async close() {
      await stream.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
