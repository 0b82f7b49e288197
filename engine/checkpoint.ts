/**
 * Checkpoints (SPEC §8): what a finished attempt leaves for the tasks that continue from it or resume it —
 * the git state of its working directory, its last output lines, its error and its agent session — and the
 * delimited block that carries them into a later prompt.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import type { Checkpoint } from './store/store.js';

/** Git state of a directory; null fields when it is not a repository or git is missing (not an error). */
export interface GitState {
  branch: string | null;
  sha: string | null;
  dirty: string[];
}

function git(cwd: string, args: string[]): Promise<string | null> {
  return new Promise((resolve) => {
    execFile('git', args, { cwd, timeout: 5000, maxBuffer: 4 * 1024 * 1024, env: { ...process.env, GIT_OPTIONAL_LOCKS: '0' } }, (error, stdout) =>
      resolve(error ? null : stdout),
    );
  });
}

/**
 * Whether git could find a repository for `cwd`: a `.git` in it or a directory above, or git told where one is.
 * Cheaper than asking git: a spawn cost ~30 ms of wall time between a run's end and the next run's start.
 */
function mayBeInRepository(cwd: string): boolean {
  if (process.env.GIT_DIR || process.env.GIT_WORK_TREE) return true;
  for (let dir = path.resolve(cwd); ; dir = path.dirname(dir)) {
    if (existsSync(path.join(dir, '.git'))) return true;
    if (path.dirname(dir) === dir) return false;
  }
}

/**
 * Branch, HEAD and uncommitted files of `cwd` (at most 200 files listed), from one `git status` (porcelain v2
 * reports the branch and HEAD too): one process per checkpoint, since it runs between a task and the next.
 */
export async function captureGitState(cwd: string): Promise<GitState> {
  if (!mayBeInRepository(cwd)) return { branch: null, sha: null, dirty: [] };
  const status = await git(cwd, ['status', '--porcelain=v2', '--branch', '--untracked-files=normal']);
  if (status === null) return { branch: null, sha: null, dirty: [] };
  let branch: string | null = null;
  let sha: string | null = null;
  const dirty: string[] = [];
  for (const line of status.split('\n')) {
    if (line.startsWith('# branch.oid ')) sha = line.slice('# branch.oid '.length).trim();
    else if (line.startsWith('# branch.head ')) branch = line.slice('# branch.head '.length).trim();
    else if (line.startsWith('1 ') || line.startsWith('u ')) dirty.push(line.split(' ').slice(line.startsWith('1 ') ? 8 : 10).join(' '));
    else if (line.startsWith('2 ')) dirty.push(line.split(' ').slice(9).join(' ').split('\t')[0]!);
    else if (line.startsWith('? ')) dirty.push(line.slice(2));
  }
  return {
    branch: branch === '(detached)' ? null : branch,
    // A repository without commits reports "(initial)".
    sha: sha && /^[0-9a-f]{7,}$/.test(sha) ? sha : null,
    dirty: dirty.slice(0, 200),
  };
}

/** Lines of output a checkpoint keeps. */
export const checkpointLines = 50;

/** The context block a later task gets: clearly delimited, so the agent can tell it from its own task. */
export function formatCheckpointContext(checkpoint: Checkpoint, relation: string): string {
  const lines = [`=== Context from ${relation} ${checkpoint.taskId} (${checkpoint.outcome}, attempt ${checkpoint.attempt}) ===`];
  if (checkpoint.gitSha) {
    lines.push(`Git: branch ${checkpoint.gitBranch ?? '(detached)'}, HEAD ${checkpoint.gitSha}`);
    lines.push(checkpoint.gitDirty.length ? `Uncommitted changes: ${checkpoint.gitDirty.join(', ')}` : 'Working tree clean');
  }
  if (checkpoint.error) lines.push(`Error: ${checkpoint.error}`);
  if (checkpoint.sessionId) lines.push(`Agent session: ${checkpoint.sessionId}`);
  lines.push(`Last ${checkpoint.lastLines.length} lines of its output:`);
  lines.push(...checkpoint.lastLines);
  lines.push(`=== End of context from ${checkpoint.taskId} ===`);
  return lines.join('\n');
}

/** The prompt an agent receives: context blocks first, then the task itself. */
export function composePrompt(prompt: string, blocks: readonly string[]): string {
  if (blocks.length === 0) return prompt;
  return `${blocks.join('\n\n')}\n\n=== Your task ===\n${prompt}`;
}

/**
 * The last `count` lines of a text file (a task's log), reading at most its last `maxBytes`: a checkpoint is
 * taken after every attempt, and a long run's log must not be read whole for it. A missing file has no lines.
 */
export async function readLastLines(file: string, count: number, maxBytes = 256 * 1024): Promise<string[]> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch {
    return [];
  }
  try {
    const { size } = await handle.stat();
    const start = Math.max(0, size - maxBytes);
    const buffer = Buffer.alloc(size - start);
    await handle.read(buffer, 0, buffer.length, start);
    const lines = buffer.toString('utf8').split('\n');
    // A window that starts mid-file starts mid-line: drop that partial first line.
    if (start > 0) lines.shift();
    if (lines.at(-1) === '') lines.pop();
    return lines.slice(-count);
  } finally {
    await handle.close();
  }
}
