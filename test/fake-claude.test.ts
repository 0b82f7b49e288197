import { spawn, spawnSync } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const FAKE = fileURLToPath(new URL('./fixtures/bin/claude', import.meta.url));
const SESSION = '123e4567-e89b-42d3-a456-426614174000';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'delegate-fake-claude-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function run(args: string[], prompt: string, env: Record<string, string> = {}) {
  const r = spawnSync(FAKE, args, { input: prompt, encoding: 'utf8', env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function events(stdout: string): Array<Record<string, unknown>> {
  return stdout
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}

const STREAM = ['-p', '--output-format', 'stream-json', '--verbose'];

describe('fake claude', () => {
  it('rejects unknown options like the real CLI', () => {
    const r = run(['-p', '--bogus'], 'hi');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("error: unknown option '--bogus'");
    expect(run(['-p', '--session-id=1', 'x'], 'hi').code).toBe(1);
  });

  it('accepts the real options, variadic tool lists included', async () => {
    const log = join(dir, 'accept.jsonl');
    const args = [
      ...STREAM,
      '--session-id', SESSION,
      '--model', 'claude-opus-4-1',
      '--permission-mode', 'acceptEdits',
      '--allowedTools', 'Read', 'Bash(git log:*)',
      '--disallowed-tools', 'WebFetch',
      '--max-budget-usd', '1.5',
      '--append-system-prompt', 'be brief',
      '--add-dir', dir,
      '--input-format', 'text',
    ];
    const r = run(args, 'hello there', { FAKE_CLAUDE_LOG: log });
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = events(r.stdout);
    const init = out[0];
    expect(init).toMatchObject({ type: 'system', subtype: 'init', session_id: SESSION, model: 'claude-opus-4-1' });
    expect(init?.permissionMode).toBe('acceptEdits');
    expect(out.at(-1)).toMatchObject({ type: 'result', subtype: 'success', is_error: false, session_id: SESSION });
    const logged = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.map((e) => e.event)).toEqual(['start', 'end']);
    expect(logged[0]).toMatchObject({ prompt: 'hello there', sessionId: SESSION, argv: args });
    expect(logged[1]).toMatchObject({ exitCode: 0 });
    // Its own CPU, which the throughput bench compares between direct spawns and runs through delegate.
    expect(logged[1]!.cpuMs).toBeGreaterThan(0);
  });

  it('validates values as the real CLI does', () => {
    expect(run([...STREAM, '--session-id', 'not-a-uuid'], 'hi').stderr).toContain('Invalid session ID');
    const mode = run([...STREAM, '--permission-mode', 'yolo'], 'hi');
    expect(mode.code).toBe(1);
    expect(mode.stderr).toContain('Allowed choices are');
    expect(run(['-p', '--output-format', 'stream-json'], 'hi').stderr).toContain('requires --verbose');
    expect(run(['-p', '--model'], 'hi').code).toBe(1);
  });

  it('uses the --resume id as the session id', () => {
    const out = events(run([...STREAM, '--resume', SESSION], 'again').stdout);
    expect(out.at(-1)).toMatchObject({ type: 'result', session_id: SESSION });
  });

  it('takes the prompt as a positional argument too', () => {
    const r = run(['-p', 'say hi'], '');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe('done: say hi\n');
  });

  it('follows the directives', () => {
    const lines = events(run(STREAM, 'x [lines 3] [cost 0.5] [exit 3] [stderr boom]').stdout);
    const texts = lines.filter((e) => e.type === 'assistant').map((e) => JSON.stringify(e.message));
    expect(texts).toHaveLength(3);
    expect(texts[2]).toContain('line 3');
    expect(lines.at(-1)).toMatchObject({ total_cost_usd: 0.5, result: 'done: x' });
    const failing = run(STREAM, 'x [exit 3] [stderr boom]');
    expect(failing.code).toBe(3);
    expect(failing.stderr).toBe('boom\n');

    const isError = run(STREAM, '[is_error]');
    expect(isError.code).toBe(0);
    expect(events(isError.stdout).at(-1)).toMatchObject({ subtype: 'error_during_execution', is_error: true });

    expect(events(run(STREAM, '[no_result]').stdout).some((e) => e.type === 'result')).toBe(false);
    expect(events(run(STREAM, '[usage_limit 1760000000]').stdout).at(-1)).toMatchObject({
      is_error: true,
      result: 'Claude AI usage limit reached|1760000000',
    });
    const bytes = run(STREAM, '[bytes 5000]').stdout;
    expect(bytes.length).toBeGreaterThan(5000);
  });

  it('reports realistic token counts and its model, and takes [tokens …] and [model …]', () => {
    const plain = events(run(STREAM, 'hi').stdout);
    expect(plain.at(-1)?.usage).toMatchObject({ input_tokens: 12, output_tokens: 42, cache_creation_input_tokens: 1536, cache_read_input_tokens: 14208 });
    const out = events(run([...STREAM, '--model', 'sonnet'], 'hi [tokens 1 2 3 4] [model claude-opus-4-1]').stdout);
    expect(out[0]).toMatchObject({ type: 'system', subtype: 'init', model: 'claude-opus-4-1' });
    const result = out.at(-1)!;
    expect(result).toMatchObject({ result: 'done: hi', usage: { input_tokens: 1, output_tokens: 2, cache_creation_input_tokens: 3, cache_read_input_tokens: 4 } });
    expect(result.modelUsage).toEqual({
      'claude-opus-4-1': { inputTokens: 1, outputTokens: 2, cacheCreationInputTokens: 3, cacheReadInputTokens: 4, webSearchRequests: 0, costUSD: 0.0123, contextWindow: 200000 },
    });
  });

  it('speaks every usage-limit form and the budget stop, and gets past a limit once when resumed', () => {
    const limited = events(run(STREAM, '[rate_limit 1767225600 seven_day] [api_429]').stdout);
    expect(limited.find((e) => e.type === 'rate_limit_event')).toMatchObject({ rate_limit_info: { status: 'rejected', resetsAt: 1767225600, rateLimitType: 'seven_day' } });
    expect(limited.at(-1)).toMatchObject({ type: 'result', is_error: true, api_error_status: 429 });
    expect(events(run(STREAM, '[rate_limit 1767225600]').stdout).at(-1)).toMatchObject({ is_error: true, result: "You've hit your limit" });
    const warned = events(run(STREAM, 'go [rate_limit_warning 1767225600]').stdout);
    expect(warned.find((e) => e.type === 'rate_limit_event')).toMatchObject({ rate_limit_info: { status: 'allowed_warning' } });
    expect(warned.at(-1)).toMatchObject({ is_error: false });
    expect(events(run(STREAM, '[limit_text "5-hour limit reached ∙ resets 9pm"]').stdout).at(-1)).toMatchObject({ is_error: true, result: '5-hour limit reached ∙ resets 9pm' });
    expect(events(run(STREAM, '[max_budget]').stdout).at(-1)).toMatchObject({ subtype: 'error_max_budget_usd', is_error: true });
    expect(events(run([...STREAM, '--resume', SESSION], 'again [api_429] [limit_once]').stdout).at(-1)).toMatchObject({ is_error: false });
    expect(events(run(STREAM, 'first [api_429] [limit_once]').stdout).at(-1)).toMatchObject({ is_error: true });
  });

  it('prints a single JSON result with --output-format json', () => {
    const r = run(['-p', '--output-format', 'json'], 'hi [cost 0.1]');
    expect(JSON.parse(r.stdout)).toMatchObject({ type: 'result', result: 'done: hi', total_cost_usd: 0.1 });
  });

  it('exits 143 on SIGTERM and logs it', async () => {
    const log = join(dir, 'term.jsonl');
    const child = spawn(FAKE, STREAM, { env: { ...process.env, FAKE_CLAUDE_LOG: log }, stdio: ['pipe', 'pipe', 'inherit'] });
    child.stdin.end('[sleep 30000]');
    // The init line is printed once the prompt is read, so the SIGTERM handler is installed by then.
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    child.kill('SIGTERM');
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    expect(code).toBe(143);
    const logged = (await readFile(log, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(logged.at(-1)).toMatchObject({ event: 'end', exitCode: 143, signal: 'SIGTERM' });
  });
});
