/**
 * Checkpoints (SPEC §8): what a finished attempt leaves for the tasks that continue from it or resume it —
 * the git state of its working directory, its last output lines, its error and its agent session — and the
 * delimited block that carries them into a later prompt.
 */
import { execFile } from 'node:child_process';
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

/** Branch, HEAD and uncommitted files of `cwd` (at most 200 files listed). */
export async function captureGitState(cwd: string): Promise<GitState> {
  const inside = await git(cwd, ['rev-parse', '--is-inside-work-tree']);
  if (inside?.trim() !== 'true') return { branch: null, sha: null, dirty: [] };
  const [branch, sha, status] = await Promise.all([
    git(cwd, ['rev-parse', '--abbrev-ref', 'HEAD']),
    git(cwd, ['rev-parse', 'HEAD']),
    git(cwd, ['status', '--porcelain=v1', '--untracked-files=normal']),
  ]);
  const dirty = (status ?? '')
    .split('\n')
    .filter((line) => line.length > 3)
    .map((line) => line.slice(3))
    .slice(0, 200);
  return { branch: branch?.trim() || null, sha: sha?.trim() || null, dirty };
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
