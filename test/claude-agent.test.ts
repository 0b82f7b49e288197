import { spawnSync } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { claudeAgent, createStreamJsonParser, findOnPath } from '../adapters/agents/claude.js';
import { demoAgent } from '../adapters/agents/demo.js';
import '../adapters/agents/index.js';
import { agentByName, agentNames, registerAgent, type AgentRunSpec } from '../engine/agent.js';

const FAKE = fileURLToPath(new URL('./fixtures/bin/claude', import.meta.url));
const SESSION = '0b6f1c2e-3f4a-4b5c-8d6e-7f8091a2b3c4';
const OTHER = 'f47ac10b-58cc-4372-a567-0e02b2c3d479';

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
  const parser = createStreamJsonParser();
  const text = lines.flatMap((line) => parser.pushLine(line));
  return { text, result: parser.result() };
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'delegate-claude-agent-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('claude command', () => {
  const env = { DELEGATE_CLAUDE_BIN: FAKE, PATH: process.env.PATH };

  it('starts a new session with --session-id and the prompt on stdin', () => {
    const cmd = claudeAgent.buildCommand(spec({ sessionId: SESSION, model: 'opus' }), env);
    expect(cmd.file).toBe(FAKE);
    expect(cmd.stdin).toBe('fix the bug');
    expect(cmd.args).toEqual([
      '-p', '--output-format', 'stream-json', '--verbose',
      '--session-id', SESSION,
      '--model', 'opus',
      '--permission-mode', 'bypassPermissions',
    ]);
  });

  it('resumes with --resume and no --session-id', () => {
    const cmd = claudeAgent.buildCommand(spec({ sessionId: SESSION, resumeSessionId: OTHER }), env);
    expect(cmd.args).toContain('--resume');
    expect(cmd.args[cmd.args.indexOf('--resume') + 1]).toBe(OTHER);
    expect(cmd.args).not.toContain('--session-id');
  });

  it('passes tool lists, permission mode and budget', () => {
    const cmd = claudeAgent.buildCommand(
      spec({
        permissionMode: 'acceptEdits',
        allowedTools: ['Read', 'Bash(git log:*)'],
        disallowedTools: ['WebFetch'],
        maxBudgetUsd: 2.5,
      }),
      env,
    );
    expect(cmd.args.slice(4)).toEqual([
      '--permission-mode', 'acceptEdits',
      '--allowedTools', 'Read', 'Bash(git log:*)',
      '--disallowedTools', 'WebFetch',
      '--max-budget-usd', '2.5',
    ]);
    // The fake CLI parses options like the real one: it must accept exactly these arguments.
    const r = spawnSync(cmd.file, cmd.args, { input: cmd.stdin, encoding: 'utf8' });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const { result } = feed(r.stdout.split('\n'));
    expect(result).toMatchObject({ sawResult: true, isError: false, resultText: 'done: fix the bug' });
  });

  it('resolves claude on PATH to an absolute path, else leaves the bare name', async () => {
    const bin = join(dir, 'bin');
    const notExec = join(dir, 'not-exec');
    await mkdir(bin, { recursive: true });
    await mkdir(notExec, { recursive: true });
    await writeFile(join(bin, 'claude'), '#!/bin/sh\n');
    await chmod(join(bin, 'claude'), 0o755);
    await writeFile(join(notExec, 'claude'), '#!/bin/sh\n');
    const path = `${notExec}:${bin}`;
    expect(findOnPath('claude', path)).toBe(join(bin, 'claude'));
    expect(claudeAgent.buildCommand(spec(), { PATH: path }).file).toBe(join(bin, 'claude'));
    expect(claudeAgent.buildCommand(spec(), { PATH: notExec }).file).toBe('claude');
  });
});

describe('stream-json parser', () => {
  const init = JSON.stringify({
    type: 'system', subtype: 'init', cwd: '/w', session_id: SESSION, model: 'claude-sonnet-4-5',
    permissionMode: 'bypassPermissions', tools: ['Bash', 'Read'],
  });
  const text = (t: string) =>
    JSON.stringify({
      type: 'assistant',
      message: { id: 'msg_1', type: 'message', role: 'assistant', content: [{ type: 'text', text: t }] },
      parent_tool_use_id: null,
      session_id: SESSION,
    });
  const tool = JSON.stringify({
    type: 'assistant',
    message: {
      role: 'assistant',
      content: [{ type: 'tool_use', id: 'toolu_1', name: 'Bash', input: { command: 'npm test', description: 'Run tests' } }],
    },
    session_id: SESSION,
  });
  const toolResult = JSON.stringify({
    type: 'user',
    message: { role: 'user', content: [{ tool_use_id: 'toolu_1', type: 'tool_result', content: 'ok' }] },
    session_id: SESSION,
  });
  const result = (extra: Record<string, unknown>) =>
    JSON.stringify({
      type: 'result', subtype: 'success', is_error: false, duration_ms: 1200, num_turns: 3, result: 'All done.',
      session_id: SESSION, total_cost_usd: 0.042, usage: { input_tokens: 10, output_tokens: 20 }, ...extra,
    });

  it('turns a successful run into readable lines and a result', () => {
    const out = feed([init, text('Looking at it.\nFound it.'), tool, toolResult, result({})]);
    expect(out.text).toEqual(['Looking at it.', 'Found it.', '[tool] Bash npm test', 'All done.']);
    expect(out.result).toEqual({
      sawResult: true,
      isError: false,
      sessionId: SESSION,
      costUsd: 0.042,
      numTurns: 3,
      tokens: { input: 10, output: 20, cacheCreation: 0, cacheRead: 0 },
      model: 'claude-sonnet-4-5',
      resultText: 'All done.',
    });
  });

  it('reads the four token counts of usage, and falls back to modelUsage for tokens and model', () => {
    const usage = { input_tokens: 3, output_tokens: 250, cache_creation_input_tokens: 4100, cache_read_input_tokens: 90_000, service_tier: 'standard' };
    expect(feed([init, result({ usage })]).result.tokens).toEqual({ input: 3, output: 250, cacheCreation: 4100, cacheRead: 90_000 });
    const modelUsage = {
      'claude-haiku-4-5': { inputTokens: 500, outputTokens: 20, cacheReadInputTokens: 0, cacheCreationInputTokens: 0, costUSD: 0.001 },
      'claude-opus-4-1': { inputTokens: 7, outputTokens: 900, cacheReadInputTokens: 30_000, cacheCreationInputTokens: 2000, costUSD: 0.5 },
    };
    const noInit = feed([result({ usage: undefined, modelUsage })]).result;
    expect(noInit.tokens).toEqual({ input: 507, output: 920, cacheCreation: 2000, cacheRead: 30_000 });
    // No init event named the model: the one that cost the most ran the session.
    expect(noInit.model).toBe('claude-opus-4-1');
    // The init event's model wins over modelUsage, which also lists helper models.
    expect(feed([init, result({ modelUsage })]).result.model).toBe('claude-sonnet-4-5');
    expect(feed([init, result({ usage: { service_tier: 'standard' } })]).result.tokens).toBeUndefined();
  });

  it('reports is_error results even though the CLI exits 0', () => {
    const out = feed([init, result({ subtype: 'error_during_execution', is_error: true, result: undefined })]);
    expect(out.result).toMatchObject({ sawResult: true, isError: true, sessionId: SESSION });
    expect(out.result.resultText).toBeUndefined();
    expect(out.text).toEqual(['[error] error_during_execution']);
  });

  it('reads the usage-limit reset time (epoch seconds → ms)', () => {
    const out = feed([init, result({ is_error: true, result: 'Claude AI usage limit reached|1760000000' })]);
    expect(out.result.isError).toBe(true);
    expect(out.result.usageLimit).toEqual({ source: 'text', resetAt: 1_760_000_000_000 });
  });

  it('passes non-JSON lines through and skips blank ones', () => {
    const out = feed(['Warning: something odd', '', '   ', '42', text('hi'), '{"type":"mystery"}']);
    expect(out.text).toEqual(['Warning: something odd', '42', 'hi']);
    expect(out.result).toMatchObject({ sawResult: false, isError: false, sessionId: SESSION });
  });

  it('shortens long tool inputs to one line', () => {
    const long = JSON.stringify({
      type: 'assistant',
      message: { content: [{ type: 'tool_use', name: 'Write', input: { content: 'x\n'.repeat(500) } }] },
    });
    const [line] = feed([long]).text;
    expect(line?.startsWith('[tool] Write {')).toBe(true);
    expect(line?.length).toBeLessThan(140);
    expect(line).not.toContain('\n');
  });
});

describe('agent registry and demo agent', () => {
  it('knows claude, demo, codex and shell, and names them for unknown agents', () => {
    expect(agentNames()).toEqual(['claude', 'demo', 'codex', 'shell']);
    expect(agentByName('claude')).toBe(claudeAgent);
    expect(() => agentByName('gpt')).toThrow(/unknown agent 'gpt': expected one of claude, demo, codex, shell/);
  });

  it('ignores a second registration of the same agent and refuses another agent under a taken name', () => {
    registerAgent(claudeAgent);
    expect(() => registerAgent({ ...demoAgent, name: 'claude' })).toThrow(/agent 'claude' is already registered/);
    expect(agentNames()).toEqual(['claude', 'demo', 'codex', 'shell']);
    expect(agentByName('claude')).toBe(claudeAgent);
  });

  it('demo agent says it is not Claude and ends with a zero-cost result', () => {
    const cmd = demoAgent.buildCommand(spec({ prompt: 'rm -rf / ; echo pwned', sessionId: SESSION }), {});
    expect(cmd.file).toBe(process.execPath);
    const r = spawnSync(cmd.file, cmd.args, { input: cmd.stdin, encoding: 'utf8', env: { ...process.env, ...cmd.env } });
    expect(r.status).toBe(0);
    const out = feed(r.stdout.split('\n'));
    expect(out.text[0]).toContain('not Claude');
    expect(out.text).toContain('prompt: rm -rf / ; echo pwned');
    expect(out.result).toMatchObject({ sawResult: true, isError: false, costUsd: 0, sessionId: SESSION });
  });
});
