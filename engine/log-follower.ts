/**
 * Reading a task's output as it grows. `logs --follow` polls for minutes on logs that can reach megabytes, so each
 * poll must cost what was appended since the last one, not the size of the whole log: a follower keeps the byte
 * offset (or chunk) it reached and reads on from there. The output is the log file of this host, or, where a
 * runner of another host ran the task, the chunks it shipped to the database (engine/output-shipper.ts).
 */
import { existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import type { Store } from './store/store.js';

/** Reads a task's output lines, each once, in order. */
export interface OutputFollower {
  /** The lines completed since the last call; a last line without its newline yet is held back. */
  read(): Promise<string[]>;
  /** The held-back last line, for when the writer is done and will never end it with a newline. */
  end(): string[];
}

/** Which lines of a log a reader wants, and how they read (e.g. without a mark). */
export interface LineSelection {
  keep?: (line: string) => boolean;
  map?: (line: string) => string;
}

/** Turns appended text into whole lines, holding back a partial last one. */
class Lines {
  #partial = '';

  constructor(private readonly selection: LineSelection) {}

  push(text: string): string[] {
    if (text === '') return [];
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    return this.#select(lines);
  }

  end(): string[] {
    const rest = this.#partial;
    this.#partial = '';
    return rest === '' ? [] : this.#select([rest]);
  }

  #select(lines: string[]): string[] {
    const { keep, map } = this.selection;
    const kept = keep ? lines.filter(keep) : lines;
    return map ? kept.map(map) : kept;
  }
}

/**
 * Up to `maxBytes` of `file` from `offset` on, and the file's size; nothing when it does not exist yet (a queued
 * task has written nothing). Only bytes past `offset` are read, however large the file is.
 */
export async function readFileFrom(file: string, offset: number, maxBytes = Infinity): Promise<{ bytes: Buffer; size: number }> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { bytes: Buffer.alloc(0), size: 0 };
    throw error;
  }
  try {
    const { size } = await handle.stat();
    const buffer = Buffer.alloc(Math.max(0, Math.min(size - offset, maxBytes)));
    let read = 0;
    while (read < buffer.length) {
      const { bytesRead } = await handle.read(buffer, read, buffer.length - read, offset + read);
      if (bytesRead === 0) break;
      read += bytesRead;
    }
    return { bytes: buffer.subarray(0, read), size };
  } finally {
    await handle.close();
  }
}

/** Yields the lines of an append-only text file in order, each once, reading only bytes it has not read before. */
export class LogFollower implements OutputFollower {
  #offset = 0;
  // A read can end inside a multi-byte UTF-8 character; the decoder keeps its first bytes for the next read.
  readonly #decoder = new StringDecoder('utf8');
  readonly #lines: Lines;

  /**
   * @param file the log file; it may not exist yet (a queued task has written nothing).
   * @param selection which lines to return; the others are skipped but still consumed.
   */
  constructor(
    private readonly file: string,
    selection: LineSelection = {},
  ) {
    this.#lines = new Lines(selection);
  }

  /** Bytes of the file consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** The lines completed since the last call; a last line without its newline yet is held back until it has one. */
  async read(): Promise<string[]> {
    const { bytes } = await readFileFrom(this.file, this.#offset);
    this.#offset += bytes.length;
    return this.#lines.push(this.#decoder.write(bytes));
  }

  /** The held-back last line, for when the writer is done and will never end it with a newline. */
  end(): string[] {
    return [...this.#lines.push(this.#decoder.end()), ...this.#lines.end()];
  }
}

/** Chunks read per query. */
const chunksPerRead = 64;

/** Follows the output a runner shipped to the database, by chunk sequence number. */
export class StoredOutputFollower implements OutputFollower {
  #after = 0;
  readonly #lines: Lines;

  constructor(
    private readonly store: Store,
    private readonly taskId: string,
    selection: LineSelection = {},
  ) {
    this.#lines = new Lines(selection);
  }

  async read(): Promise<string[]> {
    let text = '';
    for (;;) {
      const chunks = await this.store.outputAfter(this.taskId, this.#after, chunksPerRead);
      for (const chunk of chunks) {
        text += chunk.text;
        this.#after = chunk.seq;
      }
      if (chunks.length < chunksPerRead) break;
    }
    return this.#lines.push(text);
  }

  end(): string[] {
    return this.#lines.end();
  }
}

/**
 * A task's output from wherever it is: the database once a runner shipped some of it there (it ran where other
 * hosts share the database; the chunks hold every host's runs of the task), else this host's log file. The
 * source is chosen at the first read that finds output, and kept.
 */
export class TaskOutputFollower implements OutputFollower {
  #source: OutputFollower | null = null;

  /**
   * @param local this host's log file and the lines of it wanted
   * @param stored the lines wanted of the shipped text log (stdout and `[stderr] `-marked lines, as they came)
   */
  constructor(
    private readonly store: Store,
    private readonly taskId: string,
    private readonly local: { file: string } & LineSelection,
    private readonly stored: LineSelection = local,
  ) {}

  async read(): Promise<string[]> {
    if (!this.#source) {
      if ((await this.store.outputAfter(this.taskId, 0, 1)).length > 0) this.#source = new StoredOutputFollower(this.store, this.taskId, this.stored);
      else if (existsSync(this.local.file)) this.#source = new LogFollower(this.local.file, this.local);
      else return [];
    }
    return this.#source.read();
  }

  end(): string[] {
    return this.#source?.end() ?? [];
  }
}
