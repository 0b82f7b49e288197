/**
 * Dependencies, continueFrom, checkpoints, retry, resume and pipelines (issue 5), on a real runner with the
 * fake claude.
 */
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { fakeClaudeEvents, removeDir, tempDir, type FakeClaudeEvent } from './helpers.js';

let dataDir: string;
let engine: EngineHarness;

beforeEach(async () => {
  dataDir = tempDir();
  engine = await openEngine(dataDir, { env: { DELEGATE_MAX_WORKERS: '4' } });
});

afterEach(async () => {
  await engine.close();
  removeDir(dataDir);
});

const starts = (): FakeClaudeEvent[] => fakeClaudeEvents(dataDir).filter((event) => event.event === 'start');
const ends = (): FakeClaudeEvent[] => fakeClaudeEvents(dataDir).filter((event) => event.event === 'end');
/** When the run whose prompt ends with `name` started / ended. */
const startOf = (name: string): number => starts().find((event) => event.prompt.endsWith(name))!.at;
const endOf = (name: string): number => ends().find((event) => event.prompt.endsWith(name))!.at;

async function submit(prompt: string, extra: Record<string, unknown> = {}): Promise<string> {
  return (await engine.tasks.delegate({ prompt, ...extra })).taskId;
}

describe('dependencies', () => {
  it('runs a linear chain in order', async () => {
    const a = await submit('[sleep 200] a');
    const b = await submit('[sleep 200] b', { dependsOn: [a] });
    const c = await submit('c', { dependsOn: [b] });
    expect((await engine.tasks.get(b)).status).toBe('waiting');
    const views = await engine.settled([a, b, c]);
    expect(views.map((view) => view.status)).toEqual(['completed', 'completed', 'completed']);
    expect(startOf(' b')).toBeGreaterThanOrEqual(endOf(' a'));
    expect(startOf('c')).toBeGreaterThanOrEqual(endOf(' b'));
    const bView = await engine.tasks.get(b);
    expect(bView.dependsOn).toEqual([a]);
    expect(bView.dependants).toEqual([c]);
  });

  it('fans out and in, and handles a diamond', async () => {
    const top = await submit('[sleep 200] top');
    const left = await submit('[sleep 300] left', { dependsOn: [top] });
    const right = await submit('[sleep 100] right', { dependsOn: [top] });
    const bottom = await submit('bottom', { dependsOn: [left, right] });
    await engine.settled([top, left, right, bottom]);
    expect(Math.min(startOf('left'), startOf('right'))).toBeGreaterThanOrEqual(endOf('top'));
    // The two branches ran side by side, and the join waited for the slower one.
    expect(startOf('right')).toBeLessThan(endOf('left'));
    expect(startOf('bottom')).toBeGreaterThanOrEqual(Math.max(endOf('left'), endOf('right')));
    expect((await engine.tasks.get(bottom)).status).toBe('completed');
  });

  it('fails dependants through three levels, each naming the first failure', async () => {
    const root = await submit('root [exit 2]');
    const one = await submit('one', { dependsOn: [root] });
    const two = await submit('two', { dependsOn: [one] });
    const three = await submit('three', { dependsOn: [two] });
    const [rootView, ...rest] = await engine.settled([root, one, two, three]);
    expect(rootView).toMatchObject({ status: 'failed', failReason: 'exit_code', exitCode: 2 });
    for (const view of rest) expect(view).toMatchObject({ status: 'failed', failReason: 'dependency_failed' });
    expect(rest[0]!.error).toBe(`dependency ${root} did not complete`);
    expect(rest[2]!.error).toBe(`dependency ${two} did not complete (first failure: ${root})`);
    // None of them ran.
    expect(starts().map((event) => event.prompt)).toEqual(['root [exit 2]']);
  });

  it('cancelling the middle of a chain fails what follows and leaves what precedes', async () => {
    const a = await submit('[sleep 1500] a');
    const b = await submit('b', { dependsOn: [a] });
    const c = await submit('c', { dependsOn: [b] });
    await engine.tasks.cancel(b, 'changed my mind');
    expect((await engine.tasks.get(c)).failReason).toBe('dependency_failed');
    const [aView, bView, cView] = await engine.settled([a, b, c]);
    expect(aView!.status).toBe('completed');
    expect(bView!.status).toBe('cancelled');
    expect(cView).toMatchObject({ status: 'failed', failReason: 'dependency_failed' });
  });
});

describe('checkpoints, continueFrom, retry and resume', () => {
  it('records a checkpoint with git state and passes it to a task that continues from it', async () => {
    const repo = tempDir('delegate-repo-');
    const git = (...args: string[]) => execFileSync('git', ['-C', repo, ...args], { encoding: 'utf8' }).trim();
    git('init', '-q', '-b', 'feature');
    git('-c', 'user.email=t@t', '-c', 'user.name=t', 'commit', '-q', '--allow-empty', '-m', 'first');
    writeFileSync(path.join(repo, 'dirty.txt'), 'uncommitted');
    const sha = git('rev-parse', 'HEAD');
    try {
      const build = await submit('build [lines 60]', { workingDirectory: repo });
      const test = await submit('test', { workingDirectory: repo, dependsOn: [build], continueFrom: build });
      await engine.settled([build, test]);
      const checkpoint = (await engine.tasks.checkpoint(build))!;
      expect(checkpoint).toMatchObject({ taskId: build, attempt: 1, outcome: 'completed', gitBranch: 'feature', gitSha: sha, gitDirty: ['dirty.txt'], error: null });
      expect(checkpoint.lastLines).toHaveLength(50);
      expect(checkpoint.lastLines.at(-1)).toBe('done: build');
      expect(checkpoint.sessionId).toBe((await engine.tasks.get(build)).sessionId);
      const received = starts().find((event) => event.prompt.endsWith('test'))!.prompt;
      expect(received).toContain(`=== Context from the task this one continues, ${build} (completed, attempt 1) ===`);
      expect(received).toContain(`Git: branch feature, HEAD ${sha}`);
      expect(received).toContain('Uncommitted changes: dirty.txt');
      expect(received).toContain('line 60');
      expect(received).not.toContain('line 10\n');
      expect(received.endsWith(`=== End of context from ${build} ===\n\n=== Your task ===\ntest`)).toBe(true);
    } finally {
      removeDir(repo);
    }
  });

  it('checkpoints a directory that is not a git repository without git fields', async () => {
    const id = await submit('plain [exit 1]');
    await engine.settled([id]);
    expect(await engine.tasks.checkpoint(id)).toMatchObject({ outcome: 'failed', gitBranch: null, gitSha: null, gitDirty: [] });
    expect((await engine.tasks.checkpoint(id))!.error).toContain('code 1');
  });

  it('retries a failed task as a new task with retryOf', async () => {
    const failed = await submit('flaky [exit 1]', { priority: 'P1', timeout: 60_000 });
    await engine.settled([failed]);
    const retry = await engine.tasks.retry(failed);
    expect(retry).toMatchObject({ retryOf: failed, priority: 'P1', prompt: 'flaky [exit 1]' });
    await expect(engine.tasks.retry(retry.taskId)).rejects.toThrow(`task ${retry.taskId} is`);
    await engine.settled([retry.taskId]);
  });

  it('resumes a task in a fork of its agent session with its checkpoint and extra context', async () => {
    const first = await submit('refactor [exit 1]');
    await engine.settled([first]);
    const parentSession = (await engine.tasks.get(first)).sessionId!;
    const resumed = await engine.tasks.resume(first, 'Try a different approach this time');
    expect(resumed).toMatchObject({ parentTaskId: first, status: 'ready' });
    const [done] = await engine.settled([resumed.taskId]);
    expect(done!.sessionId).not.toBe(parentSession);
    const start = starts().find((event) => event.prompt.includes('Try a different approach'))!;
    expect(start.argv).toEqual(expect.arrayContaining(['--resume', parentSession, '--fork-session', '--session-id', done!.sessionId!]));
    // The agent resumed with the earlier conversation.
    expect(start.history).toEqual(['refactor [exit 1]']);
    expect(start.prompt).toContain(`=== Context from the earlier run this task resumes, ${first} (failed, attempt 1) ===`);
    expect(start.prompt).toContain('=== Additional instructions for this run ===\nTry a different approach this time');
    expect(start.prompt.endsWith('=== Your task ===\nrefactor [exit 1]')).toBe(true);
  });
});

describe('logs', () => {
  it('reads the agent text, its stderr, or both in order', async () => {
    const id = await submit('noisy [lines 2] [stderr warning: low disk]');
    await engine.settled([id]);
    const stdout = (await engine.tasks.logs(id)).lines;
    expect(stdout).toEqual(expect.arrayContaining(['line 1', 'line 2']));
    expect(stdout.some((line) => line.includes('low disk'))).toBe(false);
    expect((await engine.tasks.logs(id, { stream: 'stderr' })).lines).toEqual(['warning: low disk']);
    const both = (await engine.tasks.logs(id, { stream: 'both' })).lines;
    expect(both.filter((line) => line.includes('low disk'))).toEqual(['[stderr] warning: low disk']);
    expect((await engine.tasks.logs(id, { tail: 1 })).lines).toEqual([stdout.at(-1)]);
    expect((await engine.tasks.logs(id, { tail: 0 })).lines).toEqual([]);
  });
});

describe('pipelines', () => {
  it('chains steps with continueFrom and waits the delay between them', async () => {
    const steps = await engine.tasks.pipeline([{ prompt: 'step one' }, { prompt: 'step two', delayMs: 1200 }, { prompt: 'step three', delayMs: 1200 }]);
    expect(steps[1]).toMatchObject({ dependsOn: [steps[0]!.taskId], continueFrom: steps[0]!.taskId });
    expect(steps[2]).toMatchObject({ dependsOn: [steps[1]!.taskId], continueFrom: steps[1]!.taskId });
    await engine.settled(steps.map((step) => step.taskId));
    expect(startOf('step two') - endOf('step one')).toBeGreaterThanOrEqual(1200);
    expect(startOf('step three') - endOf('step two')).toBeGreaterThanOrEqual(1200);
    expect(starts().find((event) => event.prompt.endsWith('step three'))!.prompt).toContain(`Context from the task this one continues, ${steps[1]!.taskId}`);
  });

  it('rejects a bad step and writes nothing', async () => {
    await expect(engine.tasks.pipeline([{ prompt: 'ok' }, { prompt: '' }])).rejects.toThrow('steps[1].prompt: expected a non-empty string (got an empty one)');
    await expect(engine.tasks.pipeline([{ prompt: 'ok' }, { prompt: 'x', delayMs: -5 }])).rejects.toThrow('steps[1].delay -5');
    await expect(engine.tasks.pipeline([])).rejects.toThrow('steps: expected at least one step');
    expect(await engine.tasks.list()).toEqual([]);
  });
});
