/**
 * The `shell` agent: the task's prompt is one command, run in the task's working directory. For demos, tests and
 * cheap steps in a pipeline (`npm test` after an agent's edit). Despite the name no shell runs it: the prompt is
 * split into an argument array with shell-like quoting and started directly, so there is no globbing, no
 * variables, no pipes, redirects or `;` — a prompt that relies on them is refused with a message saying so (run
 * `sh -c '…'` explicitly when a shell is wanted). Its stdout lines are the output (stderr lines go to the log as
 * `[stderr] …`), and its exit code decides success. stdin is empty.
 *
 * The command is the task's own prompt, not the context the engine prepends for continuations and resumes.
 * MCP clients cannot choose this agent unless DELEGATE_ALLOW_SHELL_AGENT=1 (see adapters/mcp/tools/tool.ts).
 */
import type { Agent, AgentCommand, AgentOutputParser, AgentResult, AgentRunSpec } from '../../engine/agent.js';
import { UsageError } from '../../engine/errors.js';

/** The most of a command's stdout kept as its result text (its tail); the whole output is in the task's log. */
const RESULT_MAX_CHARS = 4000;

/** Characters a shell would treat as operators; outside quotes they are refused instead of passed on literally. */
const OPERATORS = new Set(['|', '&', ';', '<', '>', '(', ')', '`']);

function refuse(why: string): never {
  throw new UsageError('invalid_input', `shell agent prompt: ${why} (it is run as one command without a shell; use sh -c '…' for shell features)`);
}

/**
 * Split a command line into words the way a POSIX shell would for a simple command: whitespace separates words,
 * '…' keeps everything literal, "…" keeps everything literal but \" \\ \$ \` and a backslash-newline, a
 * backslash outside quotes escapes the next character. Unquoted operators (| & ; < > ( ) `), `$` outside single
 * quotes and a second line are refused: with no shell behind it they would silently mean something else.
 */
export function splitCommandLine(text: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let i = 0;
  const source = text.trim();
  while (i < source.length) {
    const ch = source[i]!;
    if (ch === '\\') {
      const next = source[i + 1];
      if (next === undefined) refuse('a trailing backslash escapes nothing');
      i += 2;
      // A backslash-newline joins lines, as in a shell.
      if (next === '\n') continue;
      word += next;
      inWord = true;
      continue;
    }
    if (ch === "'") {
      const end = source.indexOf("'", i + 1);
      if (end < 0) refuse("a ' quote is not closed");
      word += source.slice(i + 1, end);
      inWord = true;
      i = end + 1;
      continue;
    }
    if (ch === '"') {
      i++;
      for (;;) {
        const c = source[i];
        if (c === undefined) refuse('a " quote is not closed');
        if (c === '"') break;
        if (c === '$' || c === '`') refuse(`'${c}' inside "…" would be expanded by a shell`);
        if (c === '\\' && source[i + 1] !== undefined && '"\\$`\n'.includes(source[i + 1]!)) {
          if (source[i + 1] !== '\n') word += source[i + 1];
          i += 2;
          continue;
        }
        word += c;
        i++;
      }
      inWord = true;
      i++;
      continue;
    }
    if (ch === '\n') refuse('it has more than one line; give one command');
    if (/\s/.test(ch)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
      i++;
      continue;
    }
    if (OPERATORS.has(ch)) refuse(`'${ch}' is a shell operator`);
    if (ch === '$') refuse("'$' would be expanded by a shell");
    word += ch;
    inWord = true;
    i++;
  }
  if (inWord) words.push(word);
  if (words.length === 0) refuse('expected a command, got nothing');
  return words;
}

/** The argument array of a shell task: its own prompt (not the engine's context around it), split. */
export function buildShellCommand(spec: AgentRunSpec): AgentCommand {
  const [file, ...args] = splitCommandLine(spec.taskPrompt ?? spec.prompt);
  return { file: file!, args, stdin: '', env: {} };
}

/**
 * Every stdout line as it is. A command prints no final record: its exit is its result, and the engine looks at
 * the exit code and signal before `sawResult`, so the result reports one from the start.
 */
export function createPlainOutputParser(): AgentOutputParser {
  let tail = '';
  return {
    pushLine(line: string): string[] {
      tail = `${tail}${tail ? '\n' : ''}${line}`;
      if (tail.length > RESULT_MAX_CHARS * 2) tail = tail.slice(-RESULT_MAX_CHARS);
      return line.trim() === '' ? [] : [line];
    },
    result(): AgentResult {
      const resultText = tail.slice(-RESULT_MAX_CHARS).trim();
      return { sawResult: true, isError: false, ...(resultText ? { resultText } : {}) };
    },
  };
}

/** The `shell` agent (`agent: "shell"`). */
export const shellAgent: Agent = {
  name: 'shell',
  // A prompt that is no command is refused when it is submitted, not when it runs.
  checkTask: (settings) => void splitCommandLine(settings.prompt),
  buildCommand: buildShellCommand,
  createParser: createPlainOutputParser,
  describeSpawnError(error: NodeJS.ErrnoException, file: string): string | undefined {
    switch (error.code) {
      case 'ENOENT':
        return `shell agent: command '${file}' not found${file.includes('/') ? '' : ' on PATH'} (the prompt is run as a command, not through a shell)`;
      case 'EACCES':
        return `shell agent: '${file}' is not executable (EACCES)`;
      default:
        return undefined;
    }
  },
};
