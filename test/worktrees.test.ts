/**
 * Worktrees and attach (SPEC §12) with real git repositories in temp dirs, a real runner and the fake claude,
 * whose `[append FILE TEXT]` edits a file in its working directory like an agent's Edit tool.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { handOverReason } from '../engine/attach.js';
import { systemClock } from '../engine/clock.js';
import { WorktreeService } from '../engine/worktree-service.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { cli, eventually, fakeClaudeEvents, removeDir, tempDir, testEnv } from './helpers.js';

let dataDir: string;
let repo: string;
let engine: EngineHarness | undefined;

const git = (cwd: string, ...args: string[]) => execFileSync('git', args, { cwd, encoding: 'utf8' }).trim();

beforeEach(() => {
  dataDir = tempDir('delegate-wt-');
  repo = tempDir('delegate-repo-');
  git(repo, 'init', '-q', '-b', 'main');
  git(repo, 'config', 'user.name', 'Test');
  git(repo, 'config', 'user.email', 'test@example.com');
  writeFileSync(path.join(repo, 'notes.txt'), 'base\n');
  mkdirSync(path.join(repo, 'pkg'));
  writeFileSync(path.join(repo, 'pkg', 'a.txt'), 'a\n');
  git(repo, 'add', '-A');
  git(repo, 'commit', '-q', '-m', 'base');
});

afterEach(async () => {
  await engine?.close();
  engine = undefined;
  await cli(['stop'], testEnv(dataDir));
  removeDir(dataDir);
  removeDir(repo);
});

describe('worktrees', () => {
  it('runs parallel tasks in their own worktrees; a continuation shares one; merge reports a conflict as git left it', async () => {
    engine = await openEngine(dataDir, { cwd: repo });
    const worktrees = new WorktreeService(engine.store, systemClock);
    const a = await engine.tasks.delegate({ prompt: '[append notes.txt from A] [sleep 300]', worktree: true });
    const b = await engine.tasks.delegate({ prompt: '[append notes.txt from B] [sleep 300]', worktree: true });
    expect(a).toMatchObject({ worktreePath: path.join(dataDir, 'worktrees', a.taskId), worktreeBranch: `delegate/${a.taskId}`, workingDirectory: path.join(dataDir, 'worktrees', a.taskId) });
    const [doneA, doneB] = await engine.settled([a.taskId, b.taskId]);
    expect([doneA!.status, doneB!.status]).toEqual(['completed', 'completed']);
    // Each saw only its own edit; the repository saw neither.
    expect(readFileSync(path.join(a.worktreePath!, 'notes.txt'), 'utf8')).toBe('base\nfrom A\n');
    expect(readFileSync(path.join(b.worktreePath!, 'notes.txt'), 'utf8')).toBe('base\nfrom B\n');
    expect(readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toBe('base\n');
    expect(await engine.tasks.checkpoint(a.taskId)).toMatchObject({ gitBranch: `delegate/${a.taskId}`, gitDirty: ['notes.txt'] });

    // continueFrom, resume and retry carry on in the same worktree.
    const next = await engine.tasks.delegate({ prompt: '[append notes.txt A again]', worktree: true, dependsOn: [a.taskId], continueFrom: a.taskId });
    expect(next.worktreePath).toBe(a.worktreePath);
    const resumed = await engine.tasks.resume(a.taskId, 'once more');
    expect(resumed.worktreePath).toBe(a.worktreePath);
    await engine.settled([next.taskId, resumed.taskId]);
    // The resumed task ran A's prompt again, in the same worktree (the two ran side by side, so in either order).
    expect(readFileSync(path.join(a.worktreePath!, 'notes.txt'), 'utf8').split('\n').sort()).toEqual(['', 'A again', 'base', 'from A', 'from A']);

    const listed = await worktrees.list();
    expect(listed.map((view) => view.taskId).sort()).toEqual([a.taskId, b.taskId].sort());
    expect(listed.find((view) => view.taskId === a.taskId)).toMatchObject({ baseBranch: 'main', repo, uncommitted: ['notes.txt'], tasks: [{ taskId: a.taskId }, { taskId: next.taskId }, { taskId: resumed.taskId }] });

    const mergedA = await worktrees.merge(next.taskId);
    expect(mergedA).toMatchObject({ merged: true, committed: 1 });
    expect(readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toBe(readFileSync(path.join(a.worktreePath!, 'notes.txt'), 'utf8'));
    expect(git(repo, 'log', '-1', '--format=%s', `delegate/${a.taskId}`)).toBe(`delegate: work of ${a.taskId}: [append notes.txt from A] [sleep 300]`);

    const mergedB = await worktrees.merge(b.taskId);
    expect(mergedB).toMatchObject({ merged: false, conflicts: ['notes.txt'] });
    // Left as git left it: the repository is mid-merge with the conflict markers in the file.
    expect(readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toContain('<<<<<<<');
    expect(git(repo, 'status', '--porcelain')).toContain('UU notes.txt');
    git(repo, 'merge', '--abort');

    // Remove: the merged one goes with its branch; the other keeps its (unmerged) branch.
    expect(await worktrees.remove(a.taskId)).toMatchObject({ branchDeleted: true });
    expect(existsSync(a.worktreePath!)).toBe(false);
    expect(await worktrees.remove(b.taskId)).toMatchObject({ branchDeleted: false });
    expect(git(repo, 'branch', '--list', `delegate/${b.taskId}`)).toContain(b.taskId);
    expect(await worktrees.list()).toEqual([]);
    await expect(worktrees.merge(a.taskId)).rejects.toThrow(`the worktree of ${a.taskId} was removed`);
  });

  it('a pipeline shares one worktree; a subdirectory maps into it; remove refuses uncommitted changes without force', async () => {
    engine = await openEngine(dataDir, { cwd: path.join(repo, 'pkg') });
    const steps = await engine.tasks.pipeline([{ prompt: '[append a.txt one]' }, { prompt: '[append a.txt two]' }], { worktree: true });
    expect(steps[1]!.worktreePath).toBe(steps[0]!.worktreePath);
    expect(steps[0]!.workingDirectory).toBe(path.join(steps[0]!.worktreePath!, 'pkg'));
    await engine.settled(steps.map((step) => step.taskId));
    expect(readFileSync(path.join(steps[0]!.workingDirectory, 'a.txt'), 'utf8')).toBe('a\none\ntwo\n');
    const worktrees = new WorktreeService(engine.store, systemClock);
    await expect(worktrees.remove(steps[1]!.taskId)).rejects.toThrow(/has 1 uncommitted change\(s\) \(pkg\/a\.txt\); merge it first, or remove with --force/);
    expect(existsSync(steps[0]!.worktreePath!)).toBe(true);
    // The edits were never committed, so the branch holds nothing the base lacks: it goes too.
    expect(await worktrees.remove(steps[1]!.taskId, true)).toMatchObject({ branchDeleted: true });
    expect(existsSync(steps[0]!.worktreePath!)).toBe(false);
  });

  it('refuses worktree outside a git repository, and a merge of a busy worktree, writing nothing', async () => {
    const plain = tempDir('delegate-plain-');
    try {
      engine = await openEngine(dataDir, { cwd: plain, startRunner: false });
      await expect(engine.tasks.delegate({ prompt: 'x', worktree: true })).rejects.toThrow(`worktree true: ${plain} is not in a git repository; run git init there, or leave worktree unset`);
      git(plain, 'init', '-q');
      await expect(engine.tasks.delegate({ prompt: 'x', worktree: true })).rejects.toThrow('has no commit yet; commit once, or leave worktree unset');
      // A batch that fails after its first worktree was made leaves neither rows nor worktrees behind.
      await expect(engine.tasks.pipeline([{ prompt: 'one' }, { prompt: 'two', delayMs: -1 }], { worktree: true, workingDirectory: repo })).rejects.toThrow('steps[1].delay');
      await expect(engine.tasks.delegate({ prompt: 'x', worktree: true, workingDirectory: repo, dependsOn: ['task-000000000000'] })).rejects.toThrow('dependsOn: task task-000000000000 does not exist');
      expect(await engine.store.listTasks()).toEqual([]);
      expect(await engine.store.listWorktrees()).toEqual([]);
      expect(existsSync(path.join(dataDir, 'worktrees')) ? readdirSync(path.join(dataDir, 'worktrees')) : []).toEqual([]);
      expect(git(repo, 'branch', '--list', 'delegate/*')).toBe('');
      const queued = await engine.tasks.delegate({ prompt: 'x', worktree: true, workingDirectory: repo });
      await expect(new WorktreeService(engine.store, systemClock).merge(queued.taskId)).rejects.toThrow(`is in use by ${queued.taskId} (ready)`);
    } finally {
      removeDir(plain);
    }
  });
});

describe('delegate worktree and delegate attach (CLI)', () => {
  it('--worktree, worktree list/merge; attach resumes a finished session and hands a running task over first', async () => {
    const env = testEnv(dataDir, { LOG_LEVEL: 'error' });
    const queued = await cli(['delegate', '[append notes.txt cli]', '--worktree', '--wait', '--json'], env, repo);
    expect(queued.code, queued.stderr).toBe(0);
    const task = JSON.parse(queued.stdout) as { taskId: string; sessionId: string; worktreePath: string; status: string };
    expect(task.status).toBe('completed');
    const list = await cli(['worktree', 'list'], env, repo);
    expect(list.stdout).toContain(`delegate/${task.taskId}  ${task.worktreePath}`);
    expect(list.stdout).toContain('1 uncommitted');

    const attached = await cli(['attach', task.taskId], env, repo);
    expect(attached.code, attached.stderr).toBe(0);
    expect(attached.stdout).toBe(`fake claude: resumed session ${task.sessionId} in ${task.worktreePath}\n`);
    const interactive = fakeClaudeEvents(dataDir).filter((event) => (event.event as string) === 'interactive');
    expect(interactive).toEqual([expect.objectContaining({ argv: ['--resume', task.sessionId], cwd: task.worktreePath })]);

    const merged = await cli(['worktree', 'merge', task.taskId], env, repo);
    expect(merged.code, merged.stderr).toBe(0);
    expect(merged.stdout).toContain(`merged delegate/${task.taskId} into main in ${repo} (committed 1 uncommitted file(s) on it first)`);
    expect(readFileSync(path.join(repo, 'notes.txt'), 'utf8')).toBe('base\ncli\n');

    // A running task: stopped first (its fake claude ends on SIGTERM), then its session is resumed.
    const long = await cli(['delegate', '[sleep 60000]'], env, repo);
    const longId = long.stdout.trim();
    await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start' && event.prompt.includes('[sleep 60000]')) ?? null);
    const handed = await cli(['attach', longId], env, repo);
    expect(handed.code, handed.stderr).toBe(0);
    expect(handed.stderr).toContain(`${longId} stopped and handed over to this terminal`);
    const events = fakeClaudeEvents(dataDir);
    const ended = events.findIndex((event) => event.event === 'end' && (event as { signal?: string }).signal === 'SIGTERM');
    const resumedAt = events.map((event) => event.event as string).lastIndexOf('interactive');
    expect(ended).toBeGreaterThanOrEqual(0);
    expect(resumedAt).toBeGreaterThan(ended);
    const status = JSON.parse((await cli(['status', longId, '--json'], env, repo)).stdout) as { status: string; cancelReason: string };
    expect(status).toMatchObject({ status: 'cancelled', cancelReason: handOverReason });

    // Not started yet: refused, nothing changes.
    const noRunner = { ...env, DELEGATE_AUTOSTART: '0' };
    await cli(['stop'], env);
    const waiting = (await cli(['delegate', 'later'], noRunner, repo)).stdout.trim();
    const refused = await cli(['attach', waiting], noRunner, repo);
    expect(refused).toMatchObject({ code: 1, stderr: `delegate: task ${waiting} is ready: it has no agent session yet; wait until it runs (delegate wait ${waiting}) or cancel it\n` });
  });
});
