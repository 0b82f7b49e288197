/**
 * Control characters in: which text the task input refuses and how the refusal reads. Out: how views escape
 * them and how JSON output keeps them exact without writing them raw.
 */
import { describe, expect, it } from 'vitest';
import { printable, textProblem } from '../engine/control-characters.js';
import { parseInput, delegateTaskSchema } from '../engine/task-input.js';
import { formatJson } from '../adapters/cli/format.js';
import { formatEvent } from '../adapters/cli/commands/events.js';

describe('textProblem', () => {
  it('allows newline, tab and carriage return only in multi-line text', () => {
    expect(textProblem('prompt', 'a\r\n\tb', 'multiline')).toBeNull();
    expect(textProblem('model', 'a\tb', 'line')).toBe('model: contains a control character (U+0009) at index 1; no control characters are allowed');
    expect(textProblem('prompt', 'ok\u000b', 'multiline')).toBe('prompt: contains a control character (U+000B) at index 2; only newline, tab and carriage return are allowed');
  });

  it('refuses NUL, ESC, DEL and C1, and unpaired surrogates, but not paired ones or other Unicode', () => {
    for (const [text, code] of [['\u0000', 'U+0000'], ['\u001b', 'U+001B'], ['\u007f', 'U+007F'], ['\u0080', 'U+0080'], ['\u009f', 'U+009F']] as const) {
      expect(textProblem('prompt', `x${text}`, 'multiline')).toContain(`(${code}) at index 1`);
    }
    expect(textProblem('prompt', 'x\udc00', 'multiline')).toBe('prompt: contains an unpaired surrogate (U+DC00) at index 1; expected well-formed Unicode text');
    expect(textProblem('prompt', 'x\ud83d', 'multiline')).toContain('(U+D83D) at index 1');
    expect(textProblem('prompt', 'héllo 😀 \u00a0 \u2028 日本', 'multiline')).toBeNull();
  });
});

describe('the task input schema', () => {
  it('checks a value as it will be stored: "\\u0000hidden" is refused, not stored as ""', () => {
    expect(() => parseInput(delegateTaskSchema, { prompt: '\u0000hidden' })).toThrow('prompt: contains a control character (U+0000) at index 0');
    expect(() => parseInput(delegateTaskSchema, { prompt: 'x', allowedTools: ['Read', 'Bash\u001b'] })).toThrow(/^allowedTools\[1\]: contains a control character \(U\+001B\) at index 4;/);
    expect(() => parseInput(delegateTaskSchema, { prompt: 'x', priority: 'P1\n\u001b[2J' })).toThrow("priority 'P1\\n\\x1b[2J': expected P0, P1 or P2");
    expect(parseInput(delegateTaskSchema, { prompt: 'two\nlines\twith a tab' }).prompt).toBe('two\nlines\twith a tab');
  });
});

describe('printable', () => {
  it('writes every control character visibly; multi-line text keeps newline and tab', () => {
    expect(printable('a\u001b[2Jb\u0000\u007f\u009b\r')).toBe('a\\x1b[2Jb\\x00\\x7f\\x9b\\r');
    expect(printable('one\ntwo\tthree')).toBe('one\\ntwo\\tthree');
    expect(printable('one\ntwo\tthree\r\u0007', { multiline: true })).toBe('one\ntwo\tthree\\r\\x07');
    expect(printable('plain – ünïcode 😀')).toBe('plain – ünïcode 😀');
  });
});

describe('formatJson', () => {
  it('is exact JSON with DEL, C1 and U+2028/U+2029 escaped as well as C0', () => {
    const value = { text: 'a\u0000\u001b[2J\u007f\u009b\u2028\u2029"\\é' };
    const text = formatJson(value, 2);
    // Only the newlines of the indentation are raw.
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(text).toContain('\\u007f\\u009b\\u2028\\u2029');
    expect(JSON.parse(text)).toEqual(value);
  });
});

describe('formatEvent', () => {
  it('keeps an event on one line and its detail escaped', () => {
    const line = formatEvent({
      id: 1,
      at: 0,
      actorId: 'task-1',
      kind: 'task',
      type: 'task:cancelled',
      from: 'running',
      to: 'cancelled',
      cause: 'CANCEL',
      nodeId: null,
      attempt: 1,
      detail: 'not needed\n\u001b[2Jreally',
    });
    expect(line).toBe('1970-01-01T00:00:00.000Z task:cancelled  task-1 running→cancelled (CANCEL) attempt=1 — not needed\\n\\x1b[2Jreally');
  });
});
