/**
 * The front doors' worktree API (SPEC §12): list the worktrees made for tasks, merge one into the branch it was
 * made from, remove one. A worktree in use by an unfinished task is never merged or removed under it.
 */
import type { Clock } from './clock.js';
import { UsageError } from './errors.js';
import type { Store, WorktreeRecord } from './store/store.js';
import { mergeWorktree, removeWorktree, uncommittedFiles, type MergeOutcome } from './worktrees.js';
import { finishedStates } from './store/store.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A worktree as front doors show it. */
export interface WorktreeView {
  path: string;
  branch: string;
  /** The checkout it was made from, and its branch there (null: a detached HEAD). */
  repo: string;
  baseBranch: string | null;
  baseSha: string;
  /** The task it was made for, and every task that ran in it, oldest first. */
  taskId: string;
  tasks: Array<{ taskId: string; status: string }>;
  /** Files changed and not committed; null when the directory is gone. */
  uncommitted: string[] | null;
  createdAt: string;
  mergedAt: string | null;
}

/** What a merge did. */
export type MergeView = MergeOutcome & { worktree: WorktreeView };

export class WorktreeService {
  constructor(
    private readonly store: Store,
    private readonly clock: Clock,
  ) {}

  /** Worktrees not yet removed, newest first. */
  async list(): Promise<WorktreeView[]> {
    return Promise.all((await this.store.listWorktrees()).map((worktree) => this.view(worktree)));
  }

  /** Merge the worktree task `taskId` ran in into its base branch; a conflict is reported, not hidden or undone. */
  async merge(taskId: string): Promise<MergeView> {
    const worktree = await this.idle(taskId, 'merged');
    const first = (await this.store.getTask(worktree.taskId))?.prompt.split('\n')[0]?.slice(0, 60) ?? '';
    const outcome = await mergeWorktree(worktree, `delegate: work of ${worktree.taskId}${first ? `: ${first}` : ''}`);
    if (outcome.merged) await this.store.markWorktree(worktree.path, 'merged', this.clock.now());
    return { ...outcome, worktree: await this.view((await this.store.getWorktree(worktree.path)) ?? worktree) };
  }

  /** Remove the worktree task `taskId` ran in; one with uncommitted changes only with `force`. */
  async remove(taskId: string, force = false): Promise<{ worktree: WorktreeView; branchDeleted: boolean }> {
    const worktree = await this.idle(taskId, 'removed');
    const view = await this.view(worktree);
    const { branchDeleted } = await removeWorktree(worktree, force);
    await this.store.markWorktree(worktree.path, 'removed', this.clock.now());
    return { worktree: view, branchDeleted };
  }

  /** The live worktree of a task, once none of its tasks is unfinished. */
  private async idle(taskId: string, what: 'merged' | 'removed'): Promise<WorktreeRecord> {
    const task = await this.store.getTask(taskId);
    if (!task) throw new UsageError('not_found', `task-id '${taskId}': no such task`);
    if (task.worktreePath === null) throw new UsageError('invalid_input', `task ${taskId} ran in place (${task.workingDirectory}), not in a worktree`);
    const worktree = await this.store.getWorktree(task.worktreePath);
    if (!worktree || worktree.removedAt !== null) throw new UsageError('conflict', `the worktree of ${taskId} was removed`);
    const busy = (await this.store.worktreeTasks(worktree.path)).filter((row) => !(finishedStates as readonly string[]).includes(row.state));
    if (busy.length > 0) {
      throw new UsageError('conflict', `the worktree of ${taskId} is in use by ${busy.map((row) => `${row.id} (${row.state})`).join(', ')}; it can be ${what} once they finish (or cancel them)`);
    }
    return worktree;
  }

  private async view(worktree: WorktreeRecord): Promise<WorktreeView> {
    const [tasks, uncommitted] = await Promise.all([this.store.worktreeTasks(worktree.path), worktree.removedAt === null ? uncommittedFiles(worktree) : null]);
    return {
      path: worktree.path,
      branch: worktree.branch,
      repo: worktree.repo,
      baseBranch: worktree.baseBranch,
      baseSha: worktree.baseSha,
      taskId: worktree.taskId,
      tasks: tasks.map((row) => ({ taskId: row.id, status: row.state })),
      uncommitted,
      createdAt: iso(worktree.createdAt)!,
      mergedAt: iso(worktree.mergedAt),
    };
  }
}
