import { spawn } from 'node:child_process';
import os from 'node:os';
import { Command, Option } from 'clipanion';
import { resolveClaudeBin } from '../../agents/claude.js';
import { prepareAttach } from '../../../engine/attach.js';
import { EngineCommand, exitCode, type Engine } from '../context.js';

/** `delegate attach <id>`: step into a task's claude session in a terminal. */
export class AttachCommand extends EngineCommand {
  static override paths = [['attach']];
  static override usage = Command.Usage({
    description: "Open a task's claude session interactively (claude --resume) in its directory",
    details:
      'A running or paused task is first stopped and handed over (it ends cancelled, with the hand-over as its reason), so two claude processes never write one session. A queued task has no session yet and is refused. The exit code is claude\'s.',
    examples: [['Step into a task', '$0 attach task-1a2b3c4d5e6f']],
  });

  taskId = Option.String({ required: true, name: 'task-id' });

  async run(engine: Engine): Promise<number> {
    const plan = await prepareAttach(engine.tasks, engine.store, this.taskId);
    if (plan.handedOver) this.note(`${plan.taskId} stopped and handed over to this terminal`);
    this.note(`resuming claude session ${plan.sessionId} in ${plan.workingDirectory}`);
    const bin = resolveClaudeBin(process.env);
    // The store is closed by the caller once run() returns; claude needs nothing from it.
    return new Promise<number>((resolve) => {
      const child = spawn(bin, ['--resume', plan.sessionId], { cwd: plan.workingDirectory, stdio: 'inherit' });
      child.on('error', (error) => {
        this.context.stderr.write(`delegate: could not start ${bin}: ${error.message}\n`);
        resolve(exitCode.failed);
      });
      child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : exitCode.failed)));
    });
  }
}
