/** `delegate worktree list|merge|remove`: the git worktrees made for `--worktree` tasks. */
import { Command, Option } from 'clipanion';
import { WorktreeService, type WorktreeView } from '../../../../engine/worktree-service.js';
import { systemClock } from '../../../../engine/clock.js';
import { EngineCommand, exitCode, type Engine } from '../../context.js';

function service(engine: Engine): WorktreeService {
  return new WorktreeService(engine.store, systemClock);
}

function summary(view: WorktreeView): string {
  const dirty = view.uncommitted === null ? 'directory gone' : view.uncommitted.length ? `${view.uncommitted.length} uncommitted` : 'clean';
  const state = view.mergedAt ? `merged ${view.mergedAt}` : dirty;
  const tasks = view.tasks.map((task) => `${task.taskId} (${task.status})`).join(', ');
  return `${view.branch}  ${view.path}\n  from ${view.baseBranch ?? `detached ${view.baseSha.slice(0, 12)}`} in ${view.repo} · ${state} · ${tasks}`;
}

export class WorktreeListCommand extends EngineCommand {
  static override paths = [['worktree', 'list']];
  static override usage = Command.Usage({ description: 'List the git worktrees made for --worktree tasks, with their tasks and uncommitted changes' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the worktrees as JSON' });

  async run(engine: Engine): Promise<number> {
    const views = await service(engine).list();
    if (this.json) this.printJson({ worktrees: views });
    else this.print(views.length ? views.map(summary).join('\n') : 'No worktrees.');
    return exitCode.ok;
  }
}

export class WorktreeMergeCommand extends EngineCommand {
  static override paths = [['worktree', 'merge']];
  static override usage = Command.Usage({
    description: "Merge a task's worktree branch into the branch it was made from (a plain git merge)",
    details:
      "Uncommitted changes in the worktree are committed on its branch first. The repository the worktree came from must have that branch checked out. A conflict is reported with its files and left as git left it: resolve and commit there, or run git merge --abort. Exit 1 on a conflict.",
    examples: [['Merge the work of a task', '$0 worktree merge task-1a2b3c4d5e6f']],
  });
  taskId = Option.String({ required: true, name: 'task-id' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the outcome as JSON' });

  async run(engine: Engine): Promise<number> {
    const outcome = await service(engine).merge(this.taskId);
    if (this.json) this.printJson(outcome);
    else if (outcome.merged) {
      const committed = outcome.committed ? ` (committed ${outcome.committed} uncommitted file(s) on it first)` : '';
      this.print(`merged ${outcome.worktree.branch} into ${outcome.worktree.baseBranch} in ${outcome.worktree.repo}${committed}${outcome.summary ? `: ${outcome.summary}` : ''}`);
    } else {
      this.context.stderr.write(
        `delegate: merging ${outcome.worktree.branch} into ${outcome.worktree.baseBranch} stopped: ${outcome.message}${outcome.conflicts.length ? `; conflicts in ${outcome.conflicts.join(', ')}` : ''}. Resolve them in ${outcome.worktree.repo} and commit, or run git merge --abort there.\n`,
      );
    }
    return outcome.merged ? exitCode.ok : exitCode.failed;
  }
}

export class WorktreeRemoveCommand extends EngineCommand {
  static override paths = [['worktree', 'remove']];
  static override usage = Command.Usage({
    description: "Remove a task's worktree (refused with uncommitted changes unless --force); its branch goes too once merged",
  });
  taskId = Option.String({ required: true, name: 'task-id' });
  force = Option.Boolean('--force', false, { description: 'Remove even with uncommitted changes (they are lost)' });
  jsonOutput = Option.Boolean('--json', false, { description: 'Print the outcome as JSON' });

  async run(engine: Engine): Promise<number> {
    const outcome = await service(engine).remove(this.taskId, this.force);
    if (this.json) this.printJson(outcome);
    else {
      const branch = outcome.branchDeleted ? `branch ${outcome.worktree.branch} deleted` : `branch ${outcome.worktree.branch} kept (not merged; delete it with git branch -D)`;
      this.print(`removed ${outcome.worktree.path}; ${branch}`);
    }
    return exitCode.ok;
  }
}
