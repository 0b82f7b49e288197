/**
 * Ships the text logs of a runner's live runs into the database, so a front door on another host can read and
 * follow a task's output (`delegate logs`, TaskLogs, `wait`). Only where other hosts share the database: on one
 * host the log files are the output and shipping would only add writes.
 *
 * While a run goes on, whole lines are shipped every tick; when it ends, the rest (a last line without its
 * newline too) is shipped before the step that ends the task commits, so a front door that sees the task
 * finished reads all of its output. Chunks are bounded, and so is a task's output in the database: past the cap
 * a marker line says where the output was cut and where the whole log is. Where a host's shipping of a task
 * stopped is read back from the database, so a runner that adopts a run ships on without repeating a line.
 */
import { isCommitUnknown } from './errors.js';
import { readFileFrom } from './log-follower.js';
import type { Logger } from './logger.js';
import { taskLogPaths } from './pool/protocol.js';
import type { ShippedChunk, Store } from './store/store.js';

/** Bounds of shipped output. */
export interface OutputShipping {
  /** Largest chunk (one row), in bytes. */
  chunkBytes: number;
  /** Most bytes of one task's output the database keeps; the rest stays in the log file of its host. */
  capBytes: number;
}

export const defaultOutputShipping: OutputShipping = { chunkBytes: 64 * 1024, capBytes: 4 * 1024 * 1024 };

/** How far a task's log was shipped from this host. */
interface Position {
  /** Byte offset in the log file reached. */
  offset: number;
  /** Bytes of the task's output in the database (all hosts). */
  stored: number;
}

/** The largest index <= `end` that does not split a UTF-8 character of `bytes`. */
function utf8Boundary(bytes: Buffer, end: number): number {
  let at = Math.min(end, bytes.length);
  // Back off over continuation bytes (10xxxxxx) to the lead byte of the character `at` would split.
  while (at > 0 && at < bytes.length && (bytes[at]! & 0xc0) === 0x80) at--;
  return at;
}

/** The length of the prefix of `bytes` to ship now: whole lines, or everything when the run has ended. */
function shippable(bytes: Buffer, final: boolean): number {
  if (final) return bytes.length;
  return bytes.lastIndexOf(0x0a) + 1;
}

export class OutputShipper {
  readonly #positions = new Map<string, Position>();
  /** Shipping is serialised: a tick and a run's final flush must not ship the same bytes twice. */
  #queue: Promise<void> = Promise.resolve();

  constructor(
    private readonly deps: { store: Store; host: string; logDir: string; log: Logger; shipping?: OutputShipping },
  ) {}

  get #shipping(): OutputShipping {
    return this.deps.shipping ?? defaultOutputShipping;
  }

  /** Ship the whole lines the logs of these tasks (the live runs) gained since the last call. */
  ship(taskIds: readonly string[]): Promise<void> {
    return this.#serial(async () => {
      // Only live runs are remembered: a tick that raced a run's flush must not keep it for good (a forgotten
      // run's position is read back from the database if it comes again).
      const live = new Set(taskIds);
      for (const taskId of this.#positions.keys()) if (!live.has(taskId)) this.#positions.delete(taskId);
      await this.#ship(taskIds, false);
    });
  }

  /** A run of the task ended: ship the rest of its log, then forget it. Never throws (logged instead). */
  flush(taskId: string): Promise<void> {
    return this.#serial(async () => {
      await this.#ship([taskId], true);
      this.#positions.delete(taskId);
    });
  }

  #serial(work: () => Promise<void>): Promise<void> {
    const next = this.#queue.then(work).catch((error: unknown) => this.deps.log.warn('could not ship task output to the database', { error: String(error) }));
    this.#queue = next;
    return next;
  }

  async #ship(taskIds: readonly string[], final: boolean): Promise<void> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.#shipOnce(taskIds, final);
      } catch (error) {
        // The answer to the write was lost (a server that stopped at that moment): whether its chunks were saved
        // is read back from the database, so they are shipped again exactly when they were not. At once, since
        // a run's final flush is not followed by another tick.
        if (!isCommitUnknown(error) || tries === 3) throw error;
        for (const taskId of taskIds) this.#positions.delete(taskId);
        this.deps.log.info('the answer to an output write was lost; shipping again from where the database stands', { tasks: taskIds.length });
      }
    }
  }

  async #shipOnce(taskIds: readonly string[], final: boolean): Promise<void> {
    const chunks: ShippedChunk[] = [];
    const moved = new Map<string, Position>();
    for (const taskId of taskIds) {
      const from = this.#positions.get(taskId) ?? (await this.#positionInDatabase(taskId));
      const { chunks: taskChunks, to } = await this.#read(taskId, from, final);
      chunks.push(...taskChunks);
      moved.set(taskId, to);
    }
    if (chunks.length > 0) await this.deps.store.appendOutput(chunks);
    // Only once committed: a failed write ships the same bytes again next time.
    for (const [taskId, position] of moved) this.#positions.set(taskId, position);
  }

  async #positionInDatabase(taskId: string): Promise<Position> {
    const mark = await this.deps.store.outputMark(taskId, this.deps.host);
    return { offset: mark.fileEnd, stored: mark.bytes };
  }

  /** The chunks of what the log gained after `from`, and where shipping stands after them. */
  async #read(taskId: string, from: Position, final: boolean): Promise<{ chunks: ShippedChunk[]; to: Position }> {
    const file = taskLogPaths(this.deps.logDir, taskId).text;
    const { chunkBytes, capBytes } = this.#shipping;
    const room = capBytes - from.stored;
    // Never more than the cap leaves room for (one byte more tells that the log goes past it).
    const { bytes, size } = await readFileFrom(file, from.offset, Math.max(0, room) + 1);
    // Past the cap the log is only passed over.
    if (room <= 0) return { chunks: [], to: { offset: Math.max(from.offset, size), stored: from.stored } };
    const overflow = size - from.offset > room;
    const length = overflow ? utf8Boundary(bytes, room) : shippable(bytes, final);
    const chunks: ShippedChunk[] = [];
    const chunk = (fileEnd: number, text: string, stands: number) => chunks.push({ taskId, host: this.deps.host, fileEnd, bytes: stands, text });
    for (let at = 0; at < length; ) {
      const end = at + chunkBytes >= length ? length : utf8Boundary(bytes, at + chunkBytes);
      chunk(from.offset + end, bytes.toString('utf8', at, end), end - at);
      at = end;
    }
    if (!overflow) return { chunks, to: { offset: from.offset + length, stored: from.stored + length } };
    // The cap is reached: one marker, standing for the rest of the cap, so that no runner writes a second one.
    const newline = length > 0 && bytes[length - 1] !== 0x0a ? '\n' : '';
    chunk(size, `${newline}[delegate] output cut here: the database keeps ${capBytes} bytes of a task's output; the whole log is ${file} on host ${this.deps.host}\n`, room - length);
    return { chunks, to: { offset: size, stored: capBytes } };
  }
}
