import { closeSync, existsSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openRotatedLog } from '../engine/log-file.js';
import { removeDir, tempDir } from './helpers.js';

describe('the log of a detached process', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = tempDir();
    file = path.join(dir, 'runner.log');
  });
  afterEach(() => removeDir(dir));

  const append = (text: string, limit: number) => {
    const fd = openRotatedLog(file, limit);
    writeSync(fd, text);
    closeSync(fd);
  };

  it('is appended to while it is under the limit', () => {
    append('one\n', 100);
    append('two\n', 100);
    expect(readFileSync(file, 'utf8')).toBe('one\ntwo\n');
    expect(existsSync(`${file}.1`)).toBe(false);
  });

  it('past the limit becomes <file>.1, replacing the one before, and the next process writes a fresh file', () => {
    writeFileSync(`${file}.1`, 'oldest\n');
    writeFileSync(file, 'x'.repeat(101));
    append('fresh\n', 100);
    expect(readFileSync(`${file}.1`, 'utf8')).toBe('x'.repeat(101));
    expect(readFileSync(file, 'utf8')).toBe('fresh\n');
  });
});
