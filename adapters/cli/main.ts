/**
 * The `delegate` command line (clipanion). Each command is a class in commands/, a thin adapter over the
 * engine API. Exit codes: 0 ok, 1 the task or command failed, 2 usage error (one line on stderr).
 */
import { Builtins, Cli, Command } from 'clipanion';
import { delegateVersion } from '../../engine/version.js';
// The composition root: registers the built-in agents, which task validation and runners look up by name.
import '../agents/index.js';
import { exitCode, jsonError, type DelegateContext } from './context.js';
import { printable } from './format.js';
import { nameValues } from './options.js';
import { CancelCommand } from './commands/cancel.js';
import { DelegateTaskCommand } from './commands/delegate.js';
import { DemoCommand } from './commands/demo.js';
import { EventsCommand } from './commands/events.js';
import { InspectCommand } from './commands/inspect.js';
import { LogsCommand } from './commands/logs.js';
import { PipelineCommand } from './commands/pipeline.js';
import { ResumeCommand } from './commands/resume.js';
import { RetryCommand } from './commands/retry.js';
import { McpStartCommand } from './commands/mcp/start.js';
import { ServeCommand } from './commands/serve.js';
import { ServiceInstallCommand } from './commands/service/install.js';
import { ServiceUninstallCommand } from './commands/service/uninstall.js';
import { StatusCommand } from './commands/status.js';
import { StopCommand } from './commands/stop.js';
import { UsageCommand } from './commands/usage.js';
import { WaitCommand } from './commands/wait.js';
import { ScheduleCancelCommand } from './commands/schedule/cancel.js';
import { SchedulePauseCommand } from './commands/schedule/pause.js';
import { ScheduleResumeCommand } from './commands/schedule/resume.js';
import { ScheduleCreateCommand } from './commands/schedule/create.js';
import { ScheduleGetCommand } from './commands/schedule/get.js';
import { ScheduleListCommand } from './commands/schedule/list.js';
import { AttachCommand } from './commands/attach.js';
import { WorktreeListCommand, WorktreeMergeCommand, WorktreeRemoveCommand } from './commands/worktree/index.js';

/** `delegate help` and plain `delegate`: the command list. */
class HelpCommand extends Command<DelegateContext> {
  static override paths = [['help'], Command.Default];
  override async execute(): Promise<number> {
    this.context.stdout.write(this.cli.usage(null));
    return exitCode.ok;
  }
}

/** Clipanion's Cli, drawing option values with the names the commands declared (see options.ts) instead of `#0`. */
class DelegateCli extends Cli<DelegateContext> {
  protected override getUsageByIndex(index: number, opts?: { detailed?: boolean; inlineOptions?: boolean }): ReturnType<Cli<DelegateContext>['getUsageByIndex']> {
    const usage = super.getUsageByIndex(index, opts);
    const specs = [...this.registrations.values()].find((registration) => registration.index === index)?.specs.values();
    if (!specs) return usage;
    const markers = [...specs];
    // Both the one-line usage and each option's definition: the help pads the option list by the named definitions.
    return {
      usage: nameValues(usage.usage, markers),
      options: usage.options.map((option) => ({ ...option, definition: nameValues(option.definition, markers) })),
    };
  }
}

// Help goes first: clipanion shows only the default command's own usage when it is registered last.
const commands = [
  HelpCommand,
  DelegateTaskCommand,
  StatusCommand,
  LogsCommand,
  WaitCommand,
  CancelCommand,
  RetryCommand,
  ResumeCommand,
  PipelineCommand,
  ScheduleCreateCommand,
  ScheduleListCommand,
  ScheduleGetCommand,
  SchedulePauseCommand,
  ScheduleResumeCommand,
  ScheduleCancelCommand,
  AttachCommand,
  WorktreeListCommand,
  WorktreeMergeCommand,
  WorktreeRemoveCommand,
  EventsCommand,
  InspectCommand,
  UsageCommand,
  ServeCommand,
  StopCommand,
  ServiceInstallCommand,
  ServiceUninstallCommand,
  DemoCommand,
  McpStartCommand,
];

/** The first words of every command path (`delegate`, `status`, `mcp`, …). */
const commandWords = new Set(commands.flatMap((command) => command.paths.map((path) => path[0]).filter((word) => word !== undefined)));

/** The CLI with every command registered. */
export function createCli(options: { colors?: boolean } = {}): Cli<DelegateContext> {
  const cli = new DelegateCli({
    binaryLabel: 'delegate',
    binaryName: 'delegate',
    binaryVersion: delegateVersion,
    enableColors: options.colors ?? false,
  });
  for (const command of commands) cli.register(command);
  cli.register(Builtins.HelpCommand);
  cli.register(Builtins.VersionCommand);
  return cli;
}

/** The commands, one a line: name and description. */
function commandList(cli: Cli<DelegateContext>): string {
  const rows = cli.definitions().map((definition) => [definition.path.replace(/^delegate /, ''), (definition.description ?? '').trim()] as const);
  const width = Math.max(...rows.map(([name]) => name.length));
  return `${rows.map(([name, description]) => `  ${name.padEnd(width)}  ${description}`).join('\n')}\n`;
}

/** What the command line needs to know of one command: its words after `delegate`, and its options. */
interface CommandShape {
  words: string[];
  options: Array<{ names: string[]; takesValue: boolean; definition: string }>;
}

function commandShapes(cli: Cli<DelegateContext>): CommandShape[] {
  return cli.definitions().map((definition) => ({
    words: definition.path.split(' ').slice(1),
    // A definition is `-p,--priority P0|P1|P2`, or the names alone for a flag.
    options: definition.options.map((option) => {
      const [names = '', ...value] = option.definition.split(' ');
      return { names: names.split(','), takesValue: value.length > 0, definition: option.definition };
    }),
  }));
}

/** The command a command line names: the longest command path its first words spell. */
function commandOf(shapes: CommandShape[], argv: string[]): CommandShape | undefined {
  let found: CommandShape | undefined;
  for (const shape of shapes) {
    if (shape.words.length === 0 || !shape.words.every((word, i) => argv[i] === word)) continue;
    if (!found || shape.words.length > found.words.length) found = shape;
  }
  return found;
}

const negativeNumber = /^-\.?\d/;

/**
 * `--timeout -5`: clipanion takes `-5` for an option of its own and then finds no command at all. Joined as
 * `--timeout=-5`, the value reaches the command's own check, which names the field and what it allows.
 */
function joinNegativeValues(shape: CommandShape, argv: string[]): string[] {
  const joined: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const next = argv[i + 1];
    if (arg === '--') return [...joined, ...argv.slice(i)];
    const option = shape.options.find((candidate) => candidate.takesValue && candidate.names.includes(arg));
    if (option && next !== undefined && negativeNumber.test(next)) {
      joined.push(`${option.names.find((name) => name.startsWith('--')) ?? arg}=${next}`);
      i++;
    } else {
      joined.push(arg);
    }
  }
  return joined;
}

/**
 * Why a command line of a known command did not parse, when it is an option: one the command does not have, or
 * one without its value. Clipanion reports either as no command found at all, or without naming the command.
 */
function optionMistakeOf(shape: CommandShape, argv: string[]): string | undefined {
  const command = `delegate ${shape.words.join(' ')}`;
  const known = new Set(['-h', '--help', ...shape.options.flatMap((option) => option.names)]);
  const isOption = (arg: string | undefined): boolean => arg !== undefined && arg.startsWith('-') && arg !== '-' && !negativeNumber.test(arg);
  const args = argv.slice(shape.words.length);
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') return undefined;
    if (!isOption(arg)) continue;
    const name = arg.startsWith('--') ? arg.split('=')[0]! : arg;
    const option = shape.options.find((candidate) => candidate.names.includes(name));
    if (option?.takesValue && !arg.includes('=') && (i + 1 === args.length || isOption(args[i + 1]))) {
      return `option '${name}' of \`${command}\` needs a value: ${option.definition}`;
    }
    if (known.has(name)) continue;
    // Short flags bundled together (`-wq`) are each known or not.
    if (!arg.startsWith('--') && [...arg.slice(1)].every((letter) => known.has(`-${letter}`))) continue;
    return `unknown option '${name}' for \`${command}\``;
  }
  return undefined;
}

/** Run one command line; usage errors print one line to stderr and return 2. */
export async function runCli(argv: string[], context: DelegateContext): Promise<number> {
  const cli = createCli({ colors: context.colorDepth > 1 });
  const unknownCommand = (name: string): number => {
    const message = `unknown command '${name}'`;
    if (argv.includes('--json')) context.stdout.write(jsonError('invalid_input', message));
    context.stderr.write(`delegate: ${message}\n${commandList(cli)}  (\`delegate <command> -h\` for one command's options)\n`);
    return exitCode.usage;
  };
  const [word] = argv;
  // Clipanion would take an unknown word for an extra argument of the default (help) command and say
  // "Extraneous positional argument": name the mistake, then the commands there are.
  if (word !== undefined && !word.startsWith('-') && !commandWords.has(word)) return unknownCommand(word);
  const usageError = (message: string, hint: string): number => {
    // The command line did not parse, so no command can say whether it was --json: the word itself decides.
    if (argv.includes('--json')) context.stdout.write(jsonError('invalid_input', message));
    // clipanion quotes the arguments it could not parse: escaped, they cannot drive the terminal.
    context.stderr.write(`delegate: ${printable(message)}\n  ${hint}\n`);
    return exitCode.usage;
  };
  // Drawing every command's definition costs ~4 ms: only a command line with a negative number or one that
  // does not parse needs them.
  let looked: { shape: CommandShape | undefined } | undefined;
  const shapeOf = (): CommandShape | undefined => (looked ??= { shape: commandOf(commandShapes(cli), argv) }).shape;
  const negativeShape = argv.some((arg) => negativeNumber.test(arg)) ? shapeOf() : undefined;
  const args = negativeShape ? joinNegativeValues(negativeShape, argv) : argv;
  let command: Command<DelegateContext>;
  try {
    command = cli.process(args, context);
  } catch (error) {
    const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
    const shape = shapeOf();
    const mistake = shape && optionMistakeOf(shape, args);
    if (shape && mistake) return usageError(mistake, `run \`delegate ${shape.words.join(' ')} -h\` for its options`);
    // A known first word with an unknown rest (`delegate mcp stat`): clipanion's first line would be "Command not found; did you mean:".
    if (message.startsWith('Command not found')) return unknownCommand(argv.filter((arg) => !arg.startsWith('-')).join(' '));
    return usageError(message, 'run `delegate help` for the commands, `delegate <command> -h` for one');
  }
  return cli.run(command, context);
}

/** The process entry (bin/delegate.js). */
export async function main(): Promise<void> {
  process.exitCode = await runCli(process.argv.slice(2), {
    stdin: process.stdin,
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
    colorDepth: process.stdout.isTTY ? 8 : 1,
  });
}
