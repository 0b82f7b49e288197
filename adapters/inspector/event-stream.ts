/**
 * The inspector's live feed: one EventFollower on the events table for the whole server, fanned out to every
 * open page as Server-Sent Events. Following the table (not an in-process bus) is what lets one page show every
 * runner sharing the database, a detached one included.
 */
import type { ServerResponse } from 'node:http';
import type { Clock } from '../../engine/clock.js';
import { EventFollower, type EngineEvent, type EventBus } from '../../engine/events.js';
import type { Logger } from '../../engine/logger.js';
import type { Store } from '../../engine/store/store.js';

/** Comment lines keep idle connections open through proxies and let a closed page be noticed. */
const keepAliveMs = 15_000;
/** A page this far behind is cut off; its EventSource reconnects and the page reloads its data. */
const maxBufferedBytes = 1 << 20;
/**
 * A node journal publishes slot events on the bus before its batched write (every 200 ms): the follower is
 * woken again after that, so the written rows are read even when no other connection commits.
 */
const journalFlushWaitMs = 400;

/** Fans the events table out to SSE clients. */
export class EventStream {
  readonly #clients = new Set<ServerResponse>();
  #follower: EventFollower | null = null;
  #keepAlive: ReturnType<typeof setInterval> | null = null;
  #unsubscribe: (() => void) | null = null;
  #lateWake: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
    private readonly log: Logger,
    private readonly onEvents: (events: readonly EngineEvent[]) => void = () => undefined,
  ) {}

  /** Follow from the newest event on; `bus` carries the commits of this process's own connection. */
  async start(bus?: EventBus): Promise<void> {
    const follower = new EventFollower(this.store, this.clock, {}, await this.store.lastEventId());
    this.#follower = follower;
    follower.start(
      (events) => this.#broadcast(events),
      (error) => this.log.warn('could not read events', { error: String(error) }),
    );
    this.#unsubscribe =
      bus?.subscribe((event) => {
        follower.wake();
        if (event.id === 0) {
          this.#lateWake ??= setTimeout(() => {
            this.#lateWake = null;
            follower.wake();
          }, journalFlushWaitMs);
        }
      }) ?? null;
    this.#keepAlive = setInterval(() => {
      for (const client of this.#clients) client.write(': keep-alive\n\n');
    }, keepAliveMs);
    this.#keepAlive.unref();
  }

  /** Answer a request with the stream; it ends when the page goes away or the server closes. */
  attach(response: ServerResponse): void {
    response.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-store',
      connection: 'keep-alive',
      // Seconds-long reconnects are enough for a debugging page, and spare a restarting server.
      'x-accel-buffering': 'no',
    });
    response.write('retry: 2000\n\n');
    this.#clients.add(response);
    response.on('close', () => this.#clients.delete(response));
  }

  #broadcast(events: readonly EngineEvent[]): void {
    this.onEvents(events);
    const frame = `id: ${events.at(-1)?.id ?? 0}\nevent: events\ndata: ${JSON.stringify(events)}\n\n`;
    for (const client of this.#clients) {
      if (client.writableLength > maxBufferedBytes) {
        client.destroy();
        continue;
      }
      client.write(frame);
    }
  }

  /** Stop following and end every stream. */
  async close(): Promise<void> {
    this.#unsubscribe?.();
    if (this.#keepAlive) clearInterval(this.#keepAlive);
    if (this.#lateWake) clearTimeout(this.#lateWake);
    await this.#follower?.stop();
    for (const client of this.#clients) client.end();
    this.#clients.clear();
  }
}
