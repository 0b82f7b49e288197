/** A run's files are removed once its end is committed: the known ones by name, anything else too. */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { removeRunDir, runDirOf, runFiles } from '../engine/pool/run-files.js';
import { removeDir, tempDir } from './helpers.js';

let logDir: string;

beforeEach(() => {
  logDir = tempDir('delegate-run-files-');
});

afterEach(() => removeDir(logDir));

function runWith(taskId: string, names: Array<keyof ReturnType<typeof runFiles>>, extra: string[] = []): string {
  const runDir = runDirOf(logDir, taskId, 1);
  mkdirSync(runDir, { recursive: true });
  const files = runFiles(runDir);
  for (const name of names) writeFileSync(files[name], '{}');
  for (const name of extra) writeFileSync(`${runDir}/${name}`, 'x');
  return runDir;
}

it('removes a run directory with every file a run writes', async () => {
  const runDir = runWith('task-a', ['spec', 'started', 'progress', 'exit', 'keepalive']);
  await removeRunDir(logDir, 'task-a', 1);
  expect(existsSync(runDir)).toBe(false);
});

it('removes one with some of them and a file it does not know (a writer that died before its rename)', async () => {
  const runDir = runWith('task-b', ['spec', 'keepalive'], ['exit.json.4242.tmp']);
  await removeRunDir(logDir, 'task-b', 1);
  expect(existsSync(runDir)).toBe(false);
});

it('does nothing for a run directory that is gone already', async () => {
  await expect(removeRunDir(logDir, 'task-c', 1)).resolves.toBeUndefined();
});
