/**
 * Git worktrees for tasks (SPEC §12): a task submitted with `worktree: true` runs in a fresh worktree of its
 * working directory's repository, on its own branch `delegate/<task id>`, under `<data dir>/worktrees/`. Tasks
 * that carry its work on (continueFrom, resume, retry, later pipeline steps) run in the same worktree. Merging
 * is a plain `git merge` into the branch the worktree was made from; what git says is what the user sees.
 *
 * Git is run with argument arrays (never a shell string). Everything here happens in front doors, before or
 * after a task runs: the runner only sees the worktree as the task's working directory.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import { UsageError } from './errors.js';
import type { NewWorktree, WorktreeRecord } from './store/records.js';

/** The result of one git command. */
interface GitResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run git in `cwd`; never throws for a non-zero exit (the caller decides what it means). */
export function runGit(cwd: string, args: readonly string[]): Promise<GitResult> {
  return new Promise((resolve) => {
    execFile('git', [...args], { cwd, timeout: 60_000, maxBuffer: 16 * 1024 * 1024, env: { ...process.env, GIT_TERMINAL_PROMPT: '0' } }, (error, stdout, stderr) => {
      const code = error ? (typeof (error as NodeJS.ErrnoException & { code?: unknown }).code === 'number' ? Number((error as { code: number }).code) : 1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr || (error && !stderr ? error.message : '')) });
    });
  });
}

/** The first line of git's complaint, for a one-line error. */
function gitSays(result: GitResult): string {
  return (result.stderr || result.stdout).trim().split('\n').find((line) => line.trim() !== '')?.replace(/^(fatal|error): /, '') ?? `git exited with ${result.code}`;
}

/** Where a directory sits in its repository. */
export interface RepoPosition {
  /** The top level of the checkout the directory is in. */
  top: string;
  /** The directory relative to `top` ('' at the top). */
  subdir: string;
  /** The branch checked out there; null when HEAD is detached. */
  branch: string | null;
  sha: string;
}

/** The repository `dir` is in, at its HEAD; a UsageError naming `field` when it is not in one or has no commit. */
export async function repoPosition(dir: string, field = 'worktree true'): Promise<RepoPosition> {
  const top = await runGit(dir, ['rev-parse', '--show-toplevel']);
  if (top.code !== 0) throw new UsageError('invalid_input', `${field}: ${dir} is not in a git repository; run git init there, or leave worktree unset`);
  const topLevel = top.stdout.trim();
  const head = await runGit(dir, ['rev-parse', '--verify', '--quiet', 'HEAD']);
  if (head.code !== 0) throw new UsageError('invalid_input', `${field}: the repository ${topLevel} has no commit yet; commit once, or leave worktree unset`);
  const branch = await runGit(dir, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  return {
    top: topLevel,
    subdir: path.relative(await realpath(topLevel), await realpath(dir)),
    branch: branch.code === 0 ? branch.stdout.trim() : null,
    sha: head.stdout.trim(),
  };
}

/** The branch of a task's worktree. */
export function worktreeBranch(taskId: string): string {
  return `delegate/${taskId}`;
}

/**
 * Make a fresh worktree for `taskId` of the repository `workingDirectory` is in, at its HEAD, on a new branch.
 * Returns the row to store and the directory the task runs in (the same subdirectory, inside the worktree).
 */
export async function createWorktree(dataDir: string, workingDirectory: string, taskId: string, now: number): Promise<{ worktree: NewWorktree; workingDirectory: string }> {
  const repo = await repoPosition(workingDirectory);
  const root = path.join(dataDir, 'worktrees');
  mkdirSync(root, { recursive: true });
  const worktreePath = path.join(root, taskId);
  const branch = worktreeBranch(taskId);
  const added = await runGit(repo.top, ['worktree', 'add', '-b', branch, worktreePath, repo.sha]);
  if (added.code !== 0) throw new UsageError('invalid_input', `worktree true: git worktree add failed in ${repo.top}: ${gitSays(added)}`);
  return {
    worktree: { path: worktreePath, repo: repo.top, branch, baseBranch: repo.branch, baseSha: repo.sha, taskId, createdAt: now },
    workingDirectory: repo.subdir ? path.join(worktreePath, repo.subdir) : worktreePath,
  };
}

/** Undo a createWorktree whose task was not stored after all (best effort: nothing was ever run in it). */
export async function discardWorktree(worktree: NewWorktree): Promise<void> {
  await runGit(worktree.repo, ['worktree', 'remove', '--force', worktree.path]);
  await runGit(worktree.repo, ['branch', '-D', worktree.branch]);
}

/** Uncommitted files of a worktree (porcelain paths); null when the directory is gone. */
export async function uncommittedFiles(worktree: Pick<WorktreeRecord, 'path'>): Promise<string[] | null> {
  if (!existsSync(worktree.path)) return null;
  const status = await runGit(worktree.path, ['status', '--porcelain', '--untracked-files=normal']);
  if (status.code !== 0) return null;
  return status.stdout.split('\n').filter((line) => line.trim() !== '').map((line) => line.slice(3));
}

/** How a merge went. */
export type MergeOutcome =
  | { merged: true; committed: number; summary: string }
  | { merged: false; conflicts: string[]; message: string };

/**
 * Merge a worktree's branch into its base branch, in the repository it came from. The task's uncommitted edits
 * are committed on its branch first (agents often leave them uncommitted; merging without them would merge
 * nothing). The repository must have the base branch checked out; a conflict is reported and left as git left it.
 */
export async function mergeWorktree(worktree: WorktreeRecord, message: string): Promise<MergeOutcome> {
  if (worktree.baseBranch === null) {
    throw new UsageError('invalid_input', `worktree of ${worktree.taskId} was made from a detached HEAD (${worktree.baseSha.slice(0, 12)}); merge ${worktree.branch} by hand`);
  }
  const dirty = await uncommittedFiles(worktree);
  if (dirty === null) throw new UsageError('conflict', `worktree ${worktree.path} is gone; its branch ${worktree.branch} can still be merged by hand`);
  if (dirty.length > 0) {
    const added = await runGit(worktree.path, ['add', '-A']);
    const commit = added.code === 0 ? await runGit(worktree.path, ['-c', 'user.name=delegate', '-c', 'user.email=delegate@localhost', 'commit', '--no-verify', '-m', message]) : added;
    if (commit.code !== 0) throw new UsageError('conflict', `could not commit the uncommitted changes in ${worktree.path}: ${gitSays(commit)}`);
  }
  const current = await runGit(worktree.repo, ['symbolic-ref', '--quiet', '--short', 'HEAD']);
  if (current.code !== 0 || current.stdout.trim() !== worktree.baseBranch) {
    throw new UsageError('conflict', `${worktree.repo} has ${current.code === 0 ? current.stdout.trim() : 'a detached HEAD'} checked out; check out ${worktree.baseBranch} there, then merge again`);
  }
  const merge = await runGit(worktree.repo, ['merge', '--no-edit', worktree.branch]);
  if (merge.code === 0) return { merged: true, committed: dirty.length, summary: merge.stdout.trim().split('\n').at(-1) ?? '' };
  const unmerged = await runGit(worktree.repo, ['diff', '--name-only', '--diff-filter=U']);
  const conflicts = unmerged.stdout.split('\n').filter((line) => line.trim() !== '');
  return { merged: false, conflicts, message: gitSays(merge) };
}

/** Remove a worktree; its branch goes too when it is merged into the base branch, else it is kept (and said so). */
export async function removeWorktree(worktree: WorktreeRecord, force: boolean): Promise<{ branchDeleted: boolean }> {
  const dirty = await uncommittedFiles(worktree);
  if (dirty && dirty.length > 0 && !force) {
    throw new UsageError('conflict', `worktree ${worktree.path} has ${dirty.length} uncommitted change(s) (${dirty.slice(0, 3).join(', ')}${dirty.length > 3 ? ', …' : ''}); merge it first, or remove with --force`);
  }
  if (dirty !== null) {
    const removed = await runGit(worktree.repo, ['worktree', 'remove', ...(force ? ['--force'] : []), worktree.path]);
    if (removed.code !== 0) throw new UsageError('conflict', `git worktree remove failed: ${gitSays(removed)}`);
  } else {
    await runGit(worktree.repo, ['worktree', 'prune']);
  }
  const deleted = await runGit(worktree.repo, ['branch', '-d', worktree.branch]);
  return { branchDeleted: deleted.code === 0 };
}
