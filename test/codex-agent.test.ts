/**
 * The codex agent: its command line per permission mode and session, its JSONL parser, and the fake codex run
 * with that command line (so the fixture and the agent agree on what the real CLI accepts).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { codexAgent, createCodexJsonParser } from '../adapters/agents/codex.js';
import type { AgentRunSpec } from '../engine/agent.js';

const FAKE = fileURLToPath(new URL('./fixtures/bin/codex', import.meta.url));
const FIXTURES = fileURLToPath(new URL('./fixtures/bin', import.meta.url));
const THREAD = '0199a213-81c0-7800-8aa1-bbab2a035a53';
const PRE_ASSIGNED = '0b6f1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4';

function spec(overrides: Partial<AgentRunSpec> = {}): AgentRunSpec {
  return {
    taskId: 't1',
    attempt: 1,
    prompt: 'fix the bug',
    workingDirectory: '/tmp',
    permissionMode: 'bypassPermissions',
    allowedTools: [],
    disallowedTools: [],
    ...overrides,
  };
}

function feed(lines: string[]) {
  const parser = createCodexJsonParser();
  const text = lines.flatMap((line) => parser.pushLine(line));
  return { text, result: parser.result() };
}

const event = (value: unknown): string => JSON.stringify(value);

const dir = mkdtempSync(join(tmpdir(), 'delegate-codex-agent-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('codex command', () => {
  const env = { PATH: `${FIXTURES}:/usr/bin:/bin` };

  it('runs codex exec --json from PATH with the prompt on stdin and ignores the pre-assigned session id', () => {
    const cmd = codexAgent.buildCommand(spec({ sessionId: PRE_ASSIGNED, model: 'gpt-5-codex' }), env);
    expect(cmd.file).toBe(FAKE);
    expect(cmd.stdin).toBe('fix the bug');
    expect(cmd.args).toEqual(['exec', '--json', '--dangerously-bypass-approvals-and-sandbox', '--skip-git-repo-check', '--model', 'gpt-5-codex', '-']);
  });

  it.each([
    ['bypassPermissions', ['--dangerously-bypass-approvals-and-sandbox']],
    ['acceptEdits', ['--sandbox', 'workspace-write']],
    ['default', ['--sandbox', 'read-only']],
    ['dontAsk', ['--sandbox', 'read-only']],
    ['plan', ['--sandbox', 'read-only']],
  ])('maps permissionMode %s to %j and never passes a claude flag', (permissionMode, flags) => {
    const args = codexAgent.buildCommand(spec({ permissionMode }), env).args;
    expect(args.slice(2, 2 + flags.length)).toEqual(flags);
    expect(args.join(' ')).not.toMatch(/--permission-mode|--output-format|--session-id|--resume|--verbose|-p\b/);
  });

  it('resumes an interrupted run with exec … resume <id> -, options before the subcommand', () => {
    const cmd = codexAgent.buildCommand(spec({ sessionId: PRE_ASSIGNED, resumeSessionId: THREAD, permissionMode: 'plan' }), env);
    expect(cmd.args).toEqual(['exec', '--json', '--sandbox', 'read-only', '--skip-git-repo-check', 'resume', THREAD, '-']);
  });

  it('resumes the old thread for a resumed task (codex cannot fork)', () => {
    const cmd = codexAgent.buildCommand(spec({ sessionId: PRE_ASSIGNED, forkFromSessionId: THREAD }), env);
    expect(cmd.args.slice(-3)).toEqual(['resume', THREAD, '-']);
  });

  it('takes DELEGATE_CODEX_BIN and passes codex credentials on, nothing else', () => {
    const cmd = codexAgent.buildCommand(spec(), { DELEGATE_CODEX_BIN: '/opt/codex', OPENAI_API_KEY: 'sk-x', CODEX_HOME: '/h/.codex', GITHUB_TOKEN: 'gh', PATH: '/bin' });
    expect(cmd.file).toBe('/opt/codex');
    expect(cmd.env).toEqual({ OPENAI_API_KEY: 'sk-x', CODEX_HOME: '/h/.codex' });
  });

  it.each([
    [{ allowedTools: ['Read'] }, /^allowedTools\/disallowedTools: claude options that codex has no equivalent of/],
    [{ disallowedTools: ['Bash'] }, /^allowedTools\/disallowedTools: claude options/],
    [{ maxBudgetUsd: 1 }, /^maxBudgetUsd: codex reports no cost/],
    [{ permissionMode: 'yolo' }, /^permissionMode 'yolo' for codex: expected bypassPermissions, acceptEdits, default, dontAsk or plan$/],
  ])('refuses %j with one line rather than run less restricted', (overrides, message) => {
    expect(() => codexAgent.buildCommand(spec(overrides), env)).toThrow(message);
  });

  it('explains a missing binary with an install hint', () => {
    const enoent = Object.assign(new Error('spawn codex ENOENT'), { code: 'ENOENT' });
    expect(codexAgent.describeSpawnError?.(enoent, 'codex')).toBe('codex not found on PATH: install the Codex CLI (npm i -g @openai/codex) or set DELEGATE_CODEX_BIN');
    expect(codexAgent.describeSpawnError?.(enoent, '/opt/codex')).toMatch(/^codex binary \/opt\/codex not found: install/);
  });

  it('is accepted by the fake codex, whose events the parser reads', () => {
    const cmd = codexAgent.buildCommand(spec({ prompt: 'list files [command ls] [tokens 1000 600 50]', permissionMode: 'acceptEdits' }), env);
    const run = spawnSync(cmd.file, cmd.args, { input: cmd.stdin, cwd: dir, encoding: 'utf8', env: { PATH: env.PATH } });
    expect(run.stderr).toBe('Reading prompt from stdin...\n');
    expect(run.status).toBe(0);
    const { text, result } = feed(run.stdout.split('\n'));
    expect(text).toEqual(['[tool] command ls', 'fake codex received: list files']);
    expect(result).toEqual({
      sawResult: true,
      isError: false,
      sessionId: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-7/),
      tokens: { input: 400, output: 50, cacheCreation: 0, cacheRead: 600 },
      resultText: 'fake codex received: list files',
    });
  });
});

describe('codex --json parser', () => {
  it('maps the documented sample run: thread id, tool lines, the last message and usage', () => {
    const { text, result } = feed([
      event({ type: 'thread.started', thread_id: THREAD }),
      event({ type: 'turn.started' }),
      event({ type: 'item.completed', item: { id: 'item_0', type: 'reasoning', text: '**Searching for README files**' } }),
      event({ type: 'item.started', item: { id: 'item_1', type: 'command_execution', command: 'bash -lc ls', aggregated_output: '', status: 'in_progress' } }),
      event({ type: 'item.completed', item: { id: 'item_1', type: 'command_execution', command: 'bash -lc ls', aggregated_output: 'README.md\n', exit_code: 0, status: 'completed' } }),
      event({ type: 'item.completed', item: { id: 'item_2', type: 'file_change', changes: [{ path: 'a.ts', kind: 'update' }, { path: 'b.ts', kind: 'add' }], status: 'completed' } }),
      event({ type: 'item.started', item: { id: 'item_3', type: 'mcp_tool_call', server: 'docs', tool: 'search', status: 'in_progress' } }),
      event({ type: 'item.completed', item: { id: 'item_3', type: 'mcp_tool_call', server: 'docs', tool: 'search', status: 'completed' } }),
      event({ type: 'item.completed', item: { id: 'item_4', type: 'web_search', query: 'vitest docs' } }),
      event({ type: 'item.updated', item: { id: 'item_5', type: 'todo_list', items: [{ text: 'x', completed: false }] } }),
      event({ type: 'item.completed', item: { id: 'item_6', type: 'agent_message', text: 'Yep — there is a README.md.\n\nDone.' } }),
      event({ type: 'turn.completed', usage: { input_tokens: 24763, cached_input_tokens: 24448, output_tokens: 122 } }),
    ]);
    expect(text).toEqual([
      '[tool] command bash -lc ls',
      '[tool] file_change update a.ts, add b.ts',
      '[tool] mcp docs.search',
      '[tool] web_search vitest docs',
      'Yep — there is a README.md.',
      'Done.',
    ]);
    expect(result).toEqual({
      sawResult: true,
      isError: false,
      sessionId: THREAD,
      tokens: { input: 315, output: 122, cacheCreation: 0, cacheRead: 24448 },
      resultText: 'Yep — there is a README.md.\n\nDone.',
    });
    expect(result.costUsd).toBeUndefined();
  });

  it('says when a command failed or was declined', () => {
    const { text } = feed([
      event({ type: 'item.completed', item: { id: 'c1', type: 'command_execution', command: 'npm test', aggregated_output: 'boom', exit_code: 1, status: 'failed' } }),
      event({ type: 'item.completed', item: { id: 'c2', type: 'command_execution', command: 'rm -rf build', aggregated_output: '', exit_code: null, status: 'declined' } }),
    ]);
    expect(text).toEqual(['[tool] command npm test', '[tool] command failed (exit 1)', '[tool] command rm -rf build', '[tool] command declined']);
  });

  it('reports a failed turn as an error with its message', () => {
    const { text, result } = feed([
      event({ type: 'thread.started', thread_id: THREAD }),
      event({ type: 'turn.started' }),
      event({ type: 'turn.failed', error: { message: 'stream error: unexpected status 401 Unauthorized' } }),
    ]);
    expect(text).toEqual(['[error] stream error: unexpected status 401 Unauthorized']);
    expect(result).toEqual({ sawResult: true, isError: true, sessionId: THREAD, resultText: 'stream error: unexpected status 401 Unauthorized' });
  });

  it('treats a reconnect notice as no failure, and a fatal stream error without a turn outcome as one', () => {
    const recovered = feed([
      event({ type: 'thread.started', thread_id: THREAD }),
      event({ type: 'error', message: 'Reconnecting... 1/5 (stream disconnected before completion)' }),
      event({ type: 'item.completed', item: { id: 'm', type: 'agent_message', text: 'ok' } }),
      event({ type: 'turn.completed', usage: { input_tokens: 10, cached_input_tokens: 0, output_tokens: 2 } }),
    ]);
    expect(recovered.text).toEqual(['[error] Reconnecting... 1/5 (stream disconnected before completion)', 'ok']);
    expect(recovered.result).toMatchObject({ sawResult: true, isError: false, resultText: 'ok' });

    const fatal = feed([event({ type: 'thread.started', thread_id: THREAD }), event({ type: 'error', message: 'quota exceeded' })]);
    expect(fatal.result).toEqual({ sawResult: true, isError: true, sessionId: THREAD, resultText: 'quota exceeded' });

    const onlyRetrying = feed([event({ type: 'error', message: 'Reconnecting... 5/5' })]);
    expect(onlyRetrying.result).toEqual({ sawResult: false, isError: false });
  });

  it('keeps non-JSON lines, skips blank ones and reports no result before a turn ends', () => {
    const { text, result } = feed(['', 'plain text', '[1,2]', event({ type: 'thread.started', thread_id: THREAD }), event({ type: 'future.event', x: 1 })]);
    expect(text).toEqual(['plain text', '[1,2]']);
    expect(result).toEqual({ sawResult: false, isError: false, sessionId: THREAD });
  });

  it('sums the usage of several turns', () => {
    const usage = { input_tokens: 100, cached_input_tokens: 40, output_tokens: 10 };
    const { result } = feed([event({ type: 'turn.completed', usage }), event({ type: 'turn.completed', usage })]);
    expect(result.tokens).toEqual({ input: 120, output: 20, cacheCreation: 0, cacheRead: 80 });
  });
});

describe('fake codex', () => {
  const run = (args: string[], input: string, cwd = dir) => spawnSync(FAKE, args, { input, cwd, encoding: 'utf8', env: { PATH: process.env.PATH } });

  it('refuses unknown options and bad sandbox values like clap', () => {
    expect(run(['exec', '--permission-mode', 'plan', '-'], 'x')).toMatchObject({ status: 2, stderr: expect.stringContaining("unexpected argument '--permission-mode' found") });
    expect(run(['exec', '-s', 'everything', '-'], 'x')).toMatchObject({ status: 2, stderr: expect.stringContaining("invalid value 'everything'") });
  });

  it('refuses to run outside a git repository without --skip-git-repo-check', () => {
    const r = run(['exec', '--json', '-'], 'x');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('--skip-git-repo-check was not specified');
  });

  it('takes the prompt as an argument and ends with turn.failed and exit 1 on [fail]', () => {
    const r = run(['exec', '--json', '--skip-git-repo-check', 'do it [fail]'], '');
    expect(r.status).toBe(1);
    const events = r.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string });
    expect(events.map((e) => e.type)).toEqual(['thread.started', 'turn.started', 'item.completed', 'turn.failed']);
  });
});
