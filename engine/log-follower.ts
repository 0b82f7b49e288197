/**
 * Reading a task's log as it grows. `logs --follow` polls for minutes on logs that can reach megabytes, so each
 * poll must cost what was appended since the last one, not the size of the whole file: the follower keeps the
 * byte offset it reached and reads on from there.
 */
import { open, type FileHandle } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';

/** Bytes asked of the file per read call. */
const chunkBytes = 64 * 1024;

/** Yields the lines of an append-only text file in order, each once, reading only bytes it has not read before. */
export class LogFollower {
  #offset = 0;
  // A read can end inside a multi-byte UTF-8 character; the decoder keeps its first bytes for the next read.
  readonly #decoder = new StringDecoder('utf8');
  #partial = '';

  /**
   * @param file the log file; it may not exist yet (a queued task has written nothing).
   * @param keep which lines to return; the others are skipped but still consumed.
   */
  constructor(
    private readonly file: string,
    private readonly keep: (line: string) => boolean = () => true,
  ) {}

  /** Bytes of the file consumed so far. */
  get offset(): number {
    return this.#offset;
  }

  /** The lines completed since the last call; a last line without its newline yet is held back until it has one. */
  async read(): Promise<string[]> {
    let handle: FileHandle;
    try {
      handle = await open(this.file, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      throw error;
    }
    let text = '';
    try {
      const buffer = Buffer.alloc(chunkBytes);
      for (;;) {
        const { bytesRead } = await handle.read(buffer, 0, buffer.length, this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        text += this.#decoder.write(buffer.subarray(0, bytesRead));
      }
    } finally {
      await handle.close();
    }
    if (text === '') return [];
    const lines = (this.#partial + text).split('\n');
    this.#partial = lines.pop() ?? '';
    return lines.filter(this.keep);
  }

  /** The held-back last line, for when the writer is done and will never end it with a newline. */
  end(): string[] {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = '';
    return rest !== '' && this.keep(rest) ? [rest] : [];
  }
}
