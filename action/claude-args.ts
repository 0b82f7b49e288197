/**
 * The `claude_args` input: extra claude CLI flags, as the official Claude Code action takes them. delegate builds
 * each agent's command line itself from task fields (so a run can be resumed, fenced and retried), so a flag is
 * accepted only when it maps onto a task field; any other flag is refused by name rather than dropped silently.
 */
import { permissionModes } from '../engine/config.js';
import { ActionInputError } from './action-input-error.js';

/** The task fields `claude_args` can set. */
export interface ClaudeArgsFields {
  model?: string;
  permissionMode?: (typeof permissionModes)[number];
  allowedTools?: string[];
  disallowedTools?: string[];
  maxBudgetUsd?: number;
}

const supported = '--model, --permission-mode, --allowedTools, --disallowedTools, --max-budget-usd, --dangerously-skip-permissions';

/** Flags delegate sets itself on every run: giving them again would break how it reads the run. */
const setByDelegate = new Set(['-p', '--print', '--output-format', '--input-format', '--verbose', '--session-id', '--resume', '-r', '--fork-session', '--continue', '-c']);

/** Why some well-known flags cannot be honoured, so the message says what to do instead. */
const unsupportedHints: Record<string, string> = {
  '--max-turns': 'bound a run with timeout_minutes or --max-budget-usd instead',
};

function fail(problem: string): never {
  throw new ActionInputError('claude_args', problem);
}

/**
 * Split like a POSIX shell without expansions: whitespace separates words, '…' is literal, "…" and a bare
 * backslash escape the next character; lines starting with # are comments (as in the official action).
 */
export function splitShellWords(text: string): string[] {
  const source = text
    .split('\n')
    .filter((line) => !line.trim().startsWith('#'))
    .join('\n');
  const words: string[] = [];
  let word: string | null = null;
  for (let i = 0; i < source.length; i++) {
    const char = source[i]!;
    if (/\s/.test(char)) {
      if (word !== null) words.push(word);
      word = null;
    } else if (char === "'") {
      const end = source.indexOf("'", i + 1);
      if (end === -1) fail('a single quote that does not close');
      word = (word ?? '') + source.slice(i + 1, end);
      i = end;
    } else if (char === '"') {
      let value = '';
      let j = i + 1;
      for (; j < source.length && source[j] !== '"'; j++) {
        if (source[j] === '\\' && j + 1 < source.length && '"\\$`'.includes(source[j + 1]!)) j++;
        value += source[j];
      }
      if (j >= source.length) fail('a double quote that does not close');
      word = (word ?? '') + value;
      i = j;
    } else if (char === '\\' && i + 1 < source.length) {
      word = (word ?? '') + source[++i];
    } else {
      word = (word ?? '') + char;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** Tool names of one flag value: comma-separated, but a comma inside `Bash(…)` belongs to the rule. */
function toolNames(value: string): string[] {
  const names: string[] = [];
  let depth = 0;
  let current = '';
  for (const char of value) {
    if (char === '(') depth++;
    if (char === ')') depth = Math.max(0, depth - 1);
    if (char === ',' && depth === 0) {
      names.push(current);
      current = '';
    } else current += char;
  }
  names.push(current);
  return names.map((name) => name.trim()).filter(Boolean);
}

/** Read `claude_args` into task fields; throws ActionInputError naming `claude_args` and the flag. */
export function parseClaudeArgs(text: string): ClaudeArgsFields {
  const words = splitShellWords(text);
  const fields: ClaudeArgsFields = {};
  for (let i = 0; i < words.length; i++) {
    const word = words[i]!;
    if (!word.startsWith('-')) fail(`'${word}' is not a flag; put instructions in prompt or tasks`);
    const eq = word.startsWith('--') ? word.indexOf('=') : -1;
    const flag = eq === -1 ? word : word.slice(0, eq);
    const inline = eq === -1 ? undefined : word.slice(eq + 1);
    const value = (): string => {
      if (inline !== undefined) return inline;
      const next = words[i + 1];
      if (next === undefined || next.startsWith('-')) fail(`${flag} needs a value`);
      i++;
      return next;
    };
    /** Values of a variadic flag: until the next word that starts with '-', as the claude CLI reads them. */
    const values = (): string[] => {
      const taken = inline !== undefined ? [inline] : [];
      while (words[i + 1] !== undefined && !words[i + 1]!.startsWith('-')) taken.push(words[++i]!);
      if (taken.length === 0) fail(`${flag} needs at least one tool name`);
      return taken.flatMap(toolNames);
    };
    switch (flag) {
      case '--model':
        fields.model = value();
        break;
      case '--permission-mode': {
        const mode = value();
        if (!(permissionModes as readonly string[]).includes(mode)) fail(`--permission-mode '${mode}': expected one of ${permissionModes.join(', ')}`);
        if (fields.permissionMode !== undefined && fields.permissionMode !== mode) fail(`--permission-mode ${mode} contradicts an earlier permission flag`);
        fields.permissionMode = mode as (typeof permissionModes)[number];
        break;
      }
      case '--dangerously-skip-permissions':
        if (inline !== undefined) fail(`${flag} takes no value`);
        if (fields.permissionMode !== undefined && fields.permissionMode !== 'bypassPermissions') fail(`${flag} contradicts --permission-mode ${fields.permissionMode}`);
        fields.permissionMode = 'bypassPermissions';
        break;
      case '--allowedTools':
      case '--allowed-tools':
        fields.allowedTools = [...(fields.allowedTools ?? []), ...values()];
        break;
      case '--disallowedTools':
      case '--disallowed-tools':
        fields.disallowedTools = [...(fields.disallowedTools ?? []), ...values()];
        break;
      case '--max-budget-usd': {
        const raw = value();
        const usd = Number(raw);
        if (raw.trim() === '' || !Number.isFinite(usd) || usd <= 0) fail(`--max-budget-usd '${raw}': expected a positive number of US dollars`);
        fields.maxBudgetUsd = usd;
        break;
      }
      default:
        if (setByDelegate.has(flag)) fail(`${flag} is set by delegate itself on every run; remove it`);
        fail(`${flag} is not supported${unsupportedHints[flag] ? ` (${unsupportedHints[flag]})` : ''}; supported flags: ${supported}`);
    }
  }
  return fields;
}
