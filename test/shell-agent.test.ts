/** The shell agent: splitting a prompt into an argument array (no shell), and its plain output parser. */
import { describe, expect, it } from 'vitest';
import { createPlainOutputParser, shellAgent, splitCommandLine } from '../adapters/agents/shell.js';
import type { AgentRunSpec } from '../engine/agent.js';

function spec(overrides: Partial<AgentRunSpec> = {}): AgentRunSpec {
  return {
    taskId: 't1',
    attempt: 1,
    prompt: 'echo hi',
    workingDirectory: '/tmp',
    permissionMode: 'bypassPermissions',
    allowedTools: [],
    disallowedTools: [],
    ...overrides,
  };
}

describe('splitCommandLine', () => {
  it.each([
    ['echo hi', ['echo', 'hi']],
    ['  npm   test  ', ['npm', 'test']],
    [`node -e "console.log(1)"`, ['node', '-e', 'console.log(1)']],
    [`node -e 'process.exit(2)'`, ['node', '-e', 'process.exit(2)']],
    [`printf '%s|%s' a b`, ['printf', '%s|%s', 'a', 'b']],
    [`echo "a \\"quoted\\" word" 'it''s'`, ['echo', 'a "quoted" word', 'its']],
    [`echo a\\ b "" x`, ['echo', 'a b', '', 'x']],
    [`echo '$HOME' "\\$PATH"`, ['echo', '$HOME', '$PATH']],
    ['ls *.ts ~', ['ls', '*.ts', '~']],
    ['git commit \\\n -m msg', ['git', 'commit', '-m', 'msg']],
  ])('%s → %j', (line, words) => {
    expect(splitCommandLine(line)).toEqual(words);
  });

  it.each([
    ['echo hi | wc -l', "'|' is a shell operator"],
    ['make && make install', "'&' is a shell operator"],
    ['echo hi > out.txt', "'>' is a shell operator"],
    ['a; b', "';' is a shell operator"],
    ['echo $HOME', "'$' would be expanded by a shell"],
    ['echo "$HOME"', `'$' inside "…" would be expanded by a shell`],
    ['echo `date`', "'`' is a shell operator"],
    ["echo 'open", "a ' quote is not closed"],
    ['echo "open', 'a " quote is not closed'],
    ['echo a\\', 'a trailing backslash escapes nothing'],
    ['echo a\necho b', 'it has more than one line; give one command'],
    ['   ', 'expected a command, got nothing'],
  ])('refuses %j: %s', (line, why) => {
    expect(() => splitCommandLine(line)).toThrow(`shell agent prompt: ${why} (it is run as one command without a shell; use sh -c '…' for shell features)`);
  });
});

describe('shell agent', () => {
  it('runs the task\'s own prompt, not the context the engine prepends, with empty stdin', () => {
    const cmd = shellAgent.buildCommand(spec({ prompt: '=== Note ===\nsomething\n\n=== Your task ===\nnpm test -- --run', taskPrompt: 'npm test -- --run' }), {});
    expect(cmd).toEqual({ file: 'npm', args: ['test', '--', '--run'], stdin: '', env: {} });
  });

  it('names a command that is not on PATH', () => {
    const enoent = Object.assign(new Error('spawn nope ENOENT'), { code: 'ENOENT' });
    expect(shellAgent.describeSpawnError?.(enoent, 'nope')).toBe("shell agent: command 'nope' not found on PATH (the prompt is run as a command, not through a shell)");
  });

  it('passes stdout lines on and keeps the tail as the result', () => {
    const parser = createPlainOutputParser();
    expect(parser.pushLine('first')).toEqual(['first']);
    expect(parser.pushLine('')).toEqual([]);
    expect(parser.pushLine('  last')).toEqual(['  last']);
    expect(parser.result()).toEqual({ sawResult: true, isError: false, resultText: 'first\n\n  last' });
    const quiet = createPlainOutputParser();
    expect(quiet.result()).toEqual({ sawResult: true, isError: false });
  });

  it('bounds the result text of a long output', () => {
    const parser = createPlainOutputParser();
    for (let i = 0; i < 5000; i++) parser.pushLine(`line ${i}`);
    const text = parser.result().resultText ?? '';
    expect(text.length).toBeLessThanOrEqual(4000);
    expect(text.endsWith('line 4999')).toBe(true);
  });
});
