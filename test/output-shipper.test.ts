/**
 * Output in the database (issue 16): a runner ships its runs' text logs in bounded chunks, whole lines while a
 * run goes on and the rest when it ends, up to a cap with a marker where the output was cut; a reader follows
 * the chunks like a log file, and a runner that takes over ships on from where the last one stopped.
 */
import { appendFileSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { StoredOutputFollower, TaskOutputFollower } from '../engine/log-follower.js';
import { StoreError } from '../engine/errors.js';
import { createLogger } from '../engine/logger.js';
import { OutputShipper, type OutputShipping } from '../engine/output-shipper.js';
import { taskLogPaths } from '../engine/pool/protocol.js';
import { openStore, type Store } from '../engine/store/store.js';
import { removeDir, tempDir } from './helpers.js';

let dir: string;
let logDir: string;
let store: Store;
const taskId = 'task-000000000001';

beforeEach(async () => {
  dir = tempDir();
  logDir = path.join(dir, 'logs');
  mkdirSync(logDir);
  store = await openStore(`file:${path.join(dir, 'delegate.db')}`);
});

afterEach(async () => {
  await store.close();
  removeDir(dir);
});

const log = createLogger('test', 'error');
const append = (text: string) => appendFileSync(taskLogPaths(logDir, taskId).text, text);
const shipper = (host: string, shipping?: OutputShipping) => new OutputShipper({ store, host, logDir, log, ...(shipping ? { shipping } : {}) });

async function stored(): Promise<string> {
  return (await store.outputAfter(taskId, 0, 10_000)).map((chunk) => chunk.text).join('');
}

describe('OutputShipper', () => {
  it('ships whole lines while the run goes on, the unfinished last line when it ends, each byte once', async () => {
    const ship = shipper('host-a');
    append('one\ntw');
    await ship.ship([taskId]);
    expect(await stored()).toBe('one\n');
    await ship.ship([taskId]);
    expect(await stored()).toBe('one\n');
    append('o\nthree');
    await ship.ship([taskId]);
    expect(await stored()).toBe('one\ntwo\n');
    await ship.flush(taskId);
    expect(await stored()).toBe('one\ntwo\nthree');
  });

  it('bounds chunks without splitting a UTF-8 character', async () => {
    const ship = shipper('host-a', { chunkBytes: 8, capBytes: 1_000 });
    const text = 'héllo wörld ✓✓✓ done\n';
    append(text);
    await ship.flush(taskId);
    const chunks = await store.outputAfter(taskId, 0, 100);
    expect(chunks.length).toBeGreaterThan(2);
    for (const chunk of chunks) expect(Buffer.byteLength(chunk.text)).toBeLessThanOrEqual(8);
    expect(chunks.map((chunk) => chunk.text).join('')).toBe(text);
  });

  it('keeps at most the cap, then one marker that says where the whole log is, and passes over the rest', async () => {
    const ship = shipper('host-a', { chunkBytes: 16, capBytes: 40 });
    append('0123456789\n'.repeat(3));
    await ship.ship([taskId]);
    append('abcdefghij\n'.repeat(3));
    await ship.ship([taskId]);
    append('more after the cut\n');
    await ship.flush(taskId);
    const text = await stored();
    const [kept, marker, ...rest] = text.split('\n[delegate] ');
    expect(Buffer.byteLength(kept!)).toBe(40);
    expect(rest).toEqual([]);
    expect(marker).toBe(`output cut here: the database keeps 40 bytes of a task's output; the whole log is ${taskLogPaths(logDir, taskId).text} on host host-a\n`);
    // A runner that takes the run over later writes no second marker.
    append('even more\n');
    await shipper('host-a', { chunkBytes: 16, capBytes: 40 }).flush(taskId);
    expect(await stored()).toBe(text);
  });

  it('ships on from where the last runner of the host stopped; another host ships its own log', async () => {
    append('first runner\n');
    await shipper('host-a').ship([taskId]);
    append('after it died\n');
    await shipper('host-a').flush(taskId);
    expect(await stored()).toBe('first runner\nafter it died\n');
    // The task's next run, on another host: its log file there starts empty.
    removeDir(logDir);
    mkdirSync(logDir);
    append('run 2 elsewhere\n');
    await shipper('host-b').flush(taskId);
    expect(await stored()).toBe('first runner\nafter it died\nrun 2 elsewhere\n');
  });

  it('does not lose bytes when the database write fails: the same bytes go out next time', async () => {
    const ship = shipper('host-a');
    append('kept\n');
    const appendOutput = store.appendOutput.bind(store);
    let failures = 1;
    store.appendOutput = async (chunks) => {
      if (failures-- > 0) throw new Error('server unreachable');
      return appendOutput(chunks);
    };
    await ship.ship([taskId]);
    expect(await stored()).toBe('');
    await ship.ship([taskId]);
    expect(await stored()).toBe('kept\n');
  });

  // A server that stopped as the write's COMMIT was on its way: the write may or may not have been applied.
  for (const applied of [true, false]) {
    it(`ships each byte once when the answer to a write is lost (${applied ? 'applied' : 'not applied'})`, async () => {
      let lose = 0;
      const losing: Store = Object.create(store, {
        appendOutput: {
          value: async (chunks: Parameters<Store['appendOutput']>[0]) => {
            if (lose === 0) return store.appendOutput(chunks);
            lose--;
            if (applied) await store.appendOutput(chunks);
            throw new StoreError('commit_unknown', 'lost the connection to the database server while committing');
          },
        },
      });
      const ship = new OutputShipper({ store: losing, host: 'host-a', logDir, log });
      append('one\n');
      await ship.ship([taskId]);
      append('two\nthree');
      lose = 1;
      await ship.ship([taskId]);
      expect(await stored()).toBe('one\ntwo\n');
      // The last flush of a run has no tick after it: it is shipped again at once.
      lose = 1;
      await ship.flush(taskId);
      expect(await stored()).toBe('one\ntwo\nthree');
    });
  }
});

describe('following output in the database', () => {
  it('reads chunks as lines, each once, holding back a partial line until the run ends', async () => {
    const ship = shipper('host-a', { chunkBytes: 5, capBytes: 10_000 });
    const follower = new StoredOutputFollower(store, taskId);
    expect(await follower.read()).toEqual([]);
    append('alpha\nbeta gamma\n[stderr] oops\nlast');
    await ship.ship([taskId]);
    expect(await follower.read()).toEqual(['alpha', 'beta gamma', '[stderr] oops']);
    expect(await follower.read()).toEqual([]);
    await ship.flush(taskId);
    expect(await follower.read()).toEqual([]);
    expect(follower.end()).toEqual(['last']);
  });

  it('prefers the database once it holds output, else this host’s file; stderr is the marked lines there', async () => {
    append('local line\n');
    const local = new TaskOutputFollower(store, taskId, { file: taskLogPaths(logDir, taskId).text });
    expect(await local.read()).toEqual(['local line']);
    await shipper('host-a').flush(taskId);
    append('[stderr] boom\n');
    await shipper('host-a').flush(taskId);
    const stderr = new TaskOutputFollower(store, taskId, { file: '/nonexistent' }, { keep: (line) => line.startsWith('[stderr] '), map: (line) => line.slice(9) });
    expect(await stderr.read()).toEqual(['boom']);
  });
});
