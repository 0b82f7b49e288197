/** LogFollower: `logs --follow` reads each byte of a growing log once, in whole lines. */
import { appendFileSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LogFollower } from '../engine/log-follower.js';
import { removeDir, tempDir } from './helpers.js';

let dir: string;
let file: string;

beforeEach(() => {
  dir = tempDir();
  file = path.join(dir, 'task.log');
});

afterEach(() => {
  vi.restoreAllMocks();
  removeDir(dir);
});

/** Spy on every read of a file handle (the follower's only way to the bytes) and add up the bytes they returned. */
async function countBytesRead(): Promise<{ total: () => number }> {
  writeFileSync(path.join(dir, 'probe'), '');
  const probe = await open(path.join(dir, 'probe'), 'r');
  const proto = Object.getPrototypeOf(probe) as { read: (...args: unknown[]) => Promise<{ bytesRead: number }> };
  await probe.close();
  const original = proto.read;
  let total = 0;
  vi.spyOn(proto, 'read').mockImplementation(async function (this: unknown, ...args: unknown[]) {
    const result = await original.apply(this, args);
    total += result.bytesRead;
    return result;
  });
  return { total: () => total };
}

describe('LogFollower', () => {
  it('returns nothing for a log that does not exist yet, then its lines once it does', async () => {
    const follower = new LogFollower(file);
    expect(await follower.read()).toEqual([]);
    writeFileSync(file, 'one\n');
    expect(await follower.read()).toEqual(['one']);
  });

  it('returns only the lines appended since the last read', async () => {
    writeFileSync(file, 'one\ntwo\n');
    const follower = new LogFollower(file);
    expect(await follower.read()).toEqual(['one', 'two']);
    expect(await follower.read()).toEqual([]);
    appendFileSync(file, 'three\n');
    expect(await follower.read()).toEqual(['three']);
    appendFileSync(file, 'four\nfive\n');
    expect(await follower.read()).toEqual(['four', 'five']);
    expect(await follower.read()).toEqual([]);
    expect(follower.offset).toBe('one\ntwo\nthree\nfour\nfive\n'.length);
  });

  it('holds back a partial last line until its newline arrives', async () => {
    writeFileSync(file, 'done\nhal');
    const follower = new LogFollower(file);
    expect(await follower.read()).toEqual(['done']);
    appendFileSync(file, 'f a li');
    expect(await follower.read()).toEqual([]);
    appendFileSync(file, 'ne\n');
    expect(await follower.read()).toEqual(['half a line']);
    appendFileSync(file, 'never ended');
    expect(await follower.read()).toEqual([]);
    // The writer is done: the last line will get no newline.
    expect(follower.end()).toEqual(['never ended']);
    expect(follower.end()).toEqual([]);
  });

  it('decodes a UTF-8 character split across two reads', async () => {
    const bytes = Buffer.from('né 🙂\n', 'utf8');
    const split = bytes.indexOf(0xf0) + 2; // inside the 4-byte emoji
    writeFileSync(file, bytes.subarray(0, split));
    const follower = new LogFollower(file);
    expect(await follower.read()).toEqual([]);
    appendFileSync(file, bytes.subarray(split));
    expect(await follower.read()).toEqual(['né 🙂']);
  });

  it('skips the lines its filter rejects, as logs does for stderr in the text log', async () => {
    writeFileSync(file, 'out 1\n[stderr] err 1\n');
    const follower = new LogFollower(file, { keep: (line) => !line.startsWith('[stderr] ') });
    expect(await follower.read()).toEqual(['out 1']);
    appendFileSync(file, '[stderr] err 2\nout 2\n[stderr] tail');
    expect(await follower.read()).toEqual(['out 2']);
    expect(follower.end()).toEqual([]);
  });

  it('reads only the appended bytes, however large the log already is', async () => {
    const row = `${'x'.repeat(99)}\n`;
    writeFileSync(file, row.repeat(20_000)); // 2 MB
    const bytes = await countBytesRead();
    const follower = new LogFollower(file);
    expect(await follower.read()).toHaveLength(20_000);
    expect(bytes.total()).toBe(2_000_000);

    for (let poll = 0; poll < 5; poll++) {
      const before = bytes.total();
      appendFileSync(file, `new ${poll}\n`);
      expect(await follower.read()).toEqual([`new ${poll}`]);
      expect(bytes.total() - before).toBe(`new ${poll}\n`.length);
    }
    const before = bytes.total();
    expect(await follower.read()).toEqual([]);
    expect(bytes.total()).toBe(before);
  });
});
