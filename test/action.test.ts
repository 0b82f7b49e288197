/**
 * The GitHub Action run as GitHub runs it: `node dist/action/main.js` as a child process with INPUT_* variables,
 * GITHUB_OUTPUT and GITHUB_STEP_SUMMARY files, RUNNER_TEMP and a workspace that is a git repository, with the
 * fake claude on PATH.
 */
import { execFileSync, execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually, fakeClaudeDir, removeDir, repoRoot, tempDir } from './helpers.js';
import { openEngine } from './engine-harness.js';

const actionEntry = path.join(repoRoot, 'dist', 'action', 'main.js');

/** One run of the action and everything it left. */
interface ActionRun {
  code: number;
  stdout: string;
  stderr: string;
  outputs: Record<string, string>;
  summary: string;
  runnerTemp: string;
  workspace: string;
}

const dirs: string[] = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) removeDir(dir);
});

/** GITHUB_OUTPUT's `name<<delimiter … delimiter` blocks (what @actions/core writes). */
function parseOutputs(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const match = /^([^<]+)<<(.+)$/.exec(lines[i]!);
    if (!match) continue;
    const value: string[] = [];
    for (i++; i < lines.length && lines[i] !== match[2]; i++) value.push(lines[i]!);
    outputs[match[1]!] = value.join('\n');
  }
  return outputs;
}

/** A workspace that is a git repository with one commit, as actions/checkout leaves it. */
function makeWorkspace(root: string): string {
  const workspace = path.join(root, 'workspace');
  mkdirSync(workspace);
  const git = (...args: string[]) => execFileSync('git', args, { cwd: workspace, stdio: 'ignore' });
  git('init', '-q');
  writeFileSync(path.join(workspace, 'README.md'), '# repo\n');
  git('add', '.');
  git('-c', 'user.name=test', '-c', 'user.email=test@example.com', 'commit', '-q', '-m', 'init');
  return workspace;
}

/** Run the action with `inputs` (by their action.yml names) and extra environment. */
function runAction(inputs: Record<string, string>, options: { env?: Record<string, string>; binDir?: string; root?: string } = {}): Promise<ActionRun> {
  const root = options.root ?? tempDir('delegate-action-');
  if (!options.root) dirs.push(root);
  const runnerTemp = path.join(root, 'runner-temp');
  mkdirSync(runnerTemp, { recursive: true });
  const workspace = existsSync(path.join(root, 'workspace')) ? path.join(root, 'workspace') : makeWorkspace(root);
  const outputFile = path.join(root, 'github-output');
  const summaryFile = path.join(root, 'step-summary');
  writeFileSync(outputFile, '');
  writeFileSync(summaryFile, '');
  const env: NodeJS.ProcessEnv = {
    PATH: [options.binDir, fakeClaudeDir, process.env.PATH].filter(Boolean).join(path.delimiter),
    HOME: process.env.HOME,
    RUNNER_TEMP: runnerTemp,
    GITHUB_WORKSPACE: workspace,
    GITHUB_OUTPUT: outputFile,
    GITHUB_STEP_SUMMARY: summaryFile,
    // This shared 2-core box is busy; the runner's admission must not wait for an idle CPU.
    CPU_THRESHOLD: '100',
    MEMORY_RESERVE: '0',
    FAKE_CLAUDE_LOG: path.join(root, 'fake-claude.jsonl'),
    ...options.env,
  };
  // GitHub's naming: INPUT_ + the name upper-cased, spaces to underscores (hyphens kept).
  for (const [name, value] of Object.entries(inputs)) env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = value;
  return new Promise((resolve) => {
    execFile(process.execPath, [actionEntry], { env, cwd: workspace, timeout: 90_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr, outputs: parseOutputs(readFileSync(outputFile, 'utf8')), summary: readFileSync(summaryFile, 'utf8'), runnerTemp, workspace });
    });
  });
}

/** The `::error::` lines of a run's stdout. */
const errorLines = (run: ActionRun): string[] => run.stdout.split('\n').filter((line) => line.startsWith('::error::'));

interface Result {
  id: string;
  task_id: string;
  schedule_id: string | null;
  status: string;
  fail_reason: string | null;
  cost_usd: number | null;
  depends_on: string[];
  result: string | null;
}

describe('GitHub Action', () => {
  it('runs a single prompt: outputs, summary table, execution file', async () => {
    const run = await runAction({ prompt: 'Say hello [lines 3]', timeout_minutes: '5', max_concurrency: '2' });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    expect(run.outputs.conclusion).toBe('success');
    expect(run.outputs.failed_count).toBe('0');
    expect(run.outputs.total_cost_usd).toBe('0.0123');
    const results = JSON.parse(run.outputs.results!) as Result[];
    expect(results).toHaveLength(1);
    expect(results[0]).toMatchObject({ id: 'prompt', status: 'completed', fail_reason: null, cost_usd: 0.0123, result: 'done: Say hello' });
    expect(results[0]!.task_id).toMatch(/^task-[a-f0-9]+$/);
    // The summary: a table with the task's status, duration, cost and last lines.
    expect(run.summary).toContain('<table>');
    expect(run.summary).toMatch(/<th>Status<\/th><th>Duration<\/th><th>Cost<\/th><th>Last lines<\/th>/);
    expect(run.summary).toMatch(/<td><code>prompt<\/code><\/td><td>✅ completed<\/td><td>[\d.]+ s<\/td><td>\$0\.0123<\/td><td>line 1<br>line 2<br>line 3/);
    // The task's output is in a log group.
    expect(run.stdout).toMatch(/::group::prompt: completed/);
    expect(run.stdout).toContain('line 3');
    const execution = JSON.parse(readFileSync(run.outputs.execution_file!, 'utf8')) as { conclusion: string; tasks: Array<Result & { last_lines: string[] }> };
    expect(path.dirname(run.outputs.execution_file!)).toBe(run.runnerTemp);
    expect(execution.conclusion).toBe('success');
    expect(execution.tasks[0]!.last_lines).toEqual(['line 1', 'line 2', 'line 3', 'done: Say hello']);
    // The agent ran in the workspace, and the embedded database lives in RUNNER_TEMP.
    const started = readFileSync(path.join(path.dirname(run.runnerTemp), 'fake-claude.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { event: string; cwd: string; argv: string[] });
    expect(started.find((event) => event.event === 'start')!.cwd).toBe(run.workspace);
    expect(existsSync(path.join(run.runnerTemp, 'delegate', 'delegate.db'))).toBe(true);
  }, 60_000);

  it('runs a 3-task DAG with one failure: the step fails, the dependant fails with dependency_failed', async () => {
    const tasks = [
      '# lint runs alone; build fails; deploy waits for build',
      '- id: lint',
      '  prompt: Lint the code [lines 1]',
      '- id: build',
      '  prompt: |',
      '    Build it',
      '    [exit 1]',
      '  priority: P1',
      '- id: deploy',
      '  needs: [build]',
      "  prompt: 'Deploy it'",
    ].join('\n');
    const run = await runAction({ tasks, claude_args: '--model sonnet --allowedTools "Bash(git:*),Read" Edit --max-budget-usd 2' });
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(errorLines(run)).toEqual([expect.stringMatching(/^::error::2 of 3 tasks did not complete: build \(exit_code\), deploy \(dependency_failed\)$/)]);
    expect(run.outputs.conclusion).toBe('failure');
    expect(run.outputs.failed_count).toBe('1');
    const results = JSON.parse(run.outputs.results!) as Result[];
    expect(results.map((result) => [result.id, result.status, result.fail_reason])).toEqual([
      ['lint', 'completed', null],
      ['build', 'failed', 'exit_code'],
      ['deploy', 'failed', 'dependency_failed'],
    ]);
    expect(results[2]!.depends_on).toEqual(['build']);
    expect(run.outputs.total_cost_usd).toBe('0.0246');
    expect(run.summary).toMatch(/<code>build<\/code><\/td><td>❌ failed \(exit_code\)<\/td>/);
    expect(run.summary).toMatch(/<code>deploy<\/code><\/td><td>❌ failed \(dependency_failed\)<\/td>/);
    expect(run.summary).toContain('3 tasks: 1 completed, 1 failed, 1 not run (a dependency failed)');
    // claude_args reached every agent's command line.
    const argvs = readFileSync(path.join(path.dirname(run.runnerTemp), 'fake-claude.jsonl'), 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as { event: string; argv: string[] }).filter((event) => event.event === 'start').map((event) => event.argv.join(' '));
    expect(argvs).toHaveLength(2);
    for (const argv of argvs) expect(argv).toContain('--model sonnet --permission-mode bypassPermissions --allowedTools Bash(git:*) Read Edit --max-budget-usd 2');
  }, 60_000);

  it.each([
    ['unknown priority', { tasks: '- id: a\n  prompt: hi\n  priority: P9' }, "::error::tasks[0].priority 'P9': expected P0, P1 or P2"],
    ['a cycle', { tasks: '- id: a\n  prompt: one\n  needs: [c]\n- id: b\n  prompt: two\n  needs: a\n- id: c\n  prompt: three\n  depends_on: [b]' }, '::error::tasks: depends_on/needs form a cycle: a → c → b → a'],
    ['malformed YAML', { tasks: '- id: a\n  prompt: "never closed' }, /^::error::tasks: not a YAML list of tasks: line 2, column \d+: Missing closing "quote/],
    // JSON is YAML: an empty value there is null, which the task check names.
    ['malformed JSON', { tasks: '[{"id": "a", "prompt": }]' }, '::error::tasks[0].prompt null: expected a non-empty string'],
    ['unclosed JSON', { tasks: '[{"id": "a", "prompt": "p"}' }, /^::error::tasks: not a YAML list of tasks: line 1, column \d+: /],
    ['an unknown need', { tasks: '- id: a\n  prompt: one\n  needs: [b]' }, "::error::tasks[0]: depends on 'b', which is not the id of a task in tasks (ids: a)"],
    ['an unknown field', { tasks: '- id: a\n  prompt: one\n  model: opus' }, "::error::tasks[0]: unknown field 'model'; allowed fields are id, prompt, depends_on, needs, continue_from, priority, agent"],
    ['neither prompt nor tasks', {}, '::error::prompt or tasks: one is required (or database_url alone, to run the due schedules stored there)'],
    ['an unsupported claude flag', { prompt: 'hi', claude_args: '--max-turns 5' }, /^::error::claude_args: --max-turns is not supported \(bound a run with timeout_minutes or --max-budget-usd instead\); supported flags: --model/],
    ['a bad timeout', { prompt: 'hi', timeout_minutes: '0' }, "::error::timeout_minutes '0': expected a whole number of minutes from 1 to 1440"],
    ['a bad permission mode', { prompt: 'hi', claude_args: '--permission-mode yolo' }, /^::error::claude_args: --permission-mode 'yolo': expected one of acceptEdits/],
  ])('refuses %s with one line naming the input, and writes nothing', async (_name, inputs, message) => {
    const run = await runAction(inputs as Record<string, string>);
    expect(run.code).toBe(1);
    const errors = errorLines(run);
    expect(errors).toHaveLength(1);
    if (typeof message === 'string') expect(errors[0]).toBe(message);
    else expect(errors[0]).toMatch(message);
    expect(run.outputs).toEqual({});
    expect(run.summary).toBe('');
    expect(readdirSync(run.runnerTemp)).toEqual([]);
  }, 30_000);

  it('masks secrets: the agents get them, and no log, output, summary or file of the Action shows them', async () => {
    const root = tempDir('delegate-action-');
    dirs.push(root);
    const apiKey = 'sk-ant-test-SECRET123';
    const oauthToken = 'oauth-test-TOKEN456';
    // A claude that records the credentials it got and makes the agent print the key, as a careless tool call could.
    const binDir = path.join(root, 'bin');
    mkdirSync(binDir);
    const seen = path.join(root, 'agent-env.json');
    writeFileSync(
      path.join(binDir, 'claude'),
      `#!/usr/bin/env node
const { spawn } = require('node:child_process');
const fs = require('node:fs');
fs.writeFileSync(${JSON.stringify(seen)}, JSON.stringify({ key: process.env.ANTHROPIC_API_KEY, token: process.env.CLAUDE_CODE_OAUTH_TOKEN, input: process.env.INPUT_ANTHROPIC_API_KEY ?? null }));
let prompt = '';
process.stdin.on('data', (chunk) => (prompt += chunk));
process.stdin.on('end', () => {
  const child = spawn(${JSON.stringify(path.join(fakeClaudeDir, 'claude'))}, process.argv.slice(2), { stdio: ['pipe', 'inherit', 'inherit'] });
  child.stdin.end(prompt + ' [say ' + JSON.stringify('my key is ' + process.env.ANTHROPIC_API_KEY) + '] [exit 3]');
  child.on('exit', (code) => process.exit(code ?? 1));
});
`,
    );
    chmodSync(path.join(binDir, 'claude'), 0o755);
    const run = await runAction({ prompt: 'Leak it', anthropic_api_key: apiKey, claude_code_oauth_token: oauthToken }, { binDir, root });
    expect(run.code, run.stdout + run.stderr).toBe(1);
    expect(JSON.parse(readFileSync(seen, 'utf8'))).toEqual({ key: apiKey, token: oauthToken, input: null });
    // The agent's own output did carry the key: the Action must not republish it.
    const taskLogs = path.join(run.runnerTemp, 'delegate', 'logs');
    expect(existsSync(taskLogs)).toBe(true);
    const everything = [
      // `::add-mask::` is how the secret is handed to GitHub's log masking; every other line must be clean.
      run.stdout.split('\n').filter((line) => !line.startsWith('::add-mask::')).join('\n'),
      run.stderr,
      JSON.stringify(run.outputs),
      run.summary,
      readFileSync(run.outputs.execution_file!, 'utf8'),
    ].join('\n');
    expect(run.stdout).toContain(`::add-mask::${apiKey}`);
    expect(run.stdout).toContain(`::add-mask::${oauthToken}`);
    expect(everything).toContain('my key is ***');
    expect(everything).not.toContain(apiKey);
    expect(everything).not.toContain(oauthToken);
    expect(everything).not.toContain('SECRET123');
  }, 60_000);

  it('tick mode: with database_url, fires the due schedules stored there and waits for their tasks', async () => {
    const root = tempDir('delegate-action-');
    dirs.push(root);
    const workspace = makeWorkspace(root);
    const dataDir = path.join(root, 'shared-db');
    mkdirSync(dataDir);
    // The schedule is made by another front door on the shared database, for this workspace.
    const engine = await openEngine(dataDir, { startRunner: false, cwd: workspace });
    const scheduledAt = Date.now() + 1500;
    let scheduleId: string;
    try {
      const schedule = await engine.schedules.create({ prompt: 'Nightly chores [lines 2]', scheduledAt: new Date(scheduledAt).toISOString(), workingDirectory: workspace });
      scheduleId = schedule.scheduleId;
      const later = await engine.schedules.create({ prompt: 'Not yet', cronExpression: '0 0 1 1 *', workingDirectory: workspace });
      expect(later.status).toBe('active');
    } finally {
      await engine.close();
    }
    await eventually(() => Date.now() > scheduledAt + 50);
    const run = await runAction({ prompt: 'And this too', database_url: `file:${path.join(dataDir, 'delegate.db')}` }, { root });
    expect(run.code, run.stdout + run.stderr).toBe(0);
    const results = JSON.parse(run.outputs.results!) as Result[];
    expect(results.map((result) => [result.id === result.task_id ? 'fired' : result.id, result.schedule_id, result.status])).toEqual([
      ['prompt', null, 'completed'],
      ['fired', scheduleId, 'completed'],
    ]);
    expect(results[1]!.result).toBe('done: Nightly chores');
    expect(run.summary).toContain(scheduleId);
    // The schedule ran once and is done; its run is in the shared database's history.
    const after = await openEngine(dataDir, { startRunner: false, cwd: workspace });
    try {
      const schedule = await after.schedules.get(scheduleId);
      expect(schedule.status).toBe('completed');
      expect(schedule.history.map((entry) => [entry.taskId, entry.taskStatus])).toEqual([[results[1]!.task_id, 'completed']]);
    } finally {
      await after.close();
    }
  }, 60_000);
});

describe('tasks input', () => {
  it('reads the YAML a task list is written in, and JSON', async () => {
    const { readTasks } = await import('../action/tasks-input.js');
    const yaml = [
      '# comment',
      '- id: a',
      '  prompt: "Fix it # not a comment" # a comment',
      '  needs:',
      '    - b',
      '- id: b',
      '  prompt: >-',
      '    folded',
      '    text',
      '  priority: P0',
      '- id: c',
      '  prompt: |',
      '    line one',
      '      indented',
      '  depends_on: [a, b]',
    ].join('\n');
    const tasks = readTasks(yaml);
    expect(tasks.map((task) => [task.id, task.prompt, task.dependsOn])).toEqual([
      ['b', 'folded text', []],
      ['a', 'Fix it # not a comment', ['b']],
      ['c', 'line one\n  indented\n', ['a', 'b']],
    ]);
    expect(readTasks('[{"id":"a","prompt":"p"}]').map((task) => task.id)).toEqual(['a']);
    expect(() => readTasks('- id: a\n  prompt: x\n  prompt: y')).toThrow(/tasks: not a YAML list of tasks: line 3, column 3: Map keys must be unique/);
    expect(() => readTasks('id: a')).toThrow('tasks: expected a YAML list of tasks');
  });

  it('maps claude_args onto task fields', async () => {
    const { parseClaudeArgs } = await import('../action/claude-args.js');
    expect(parseClaudeArgs(`# comment line\n--model=opus --allowed-tools 'Bash(git diff:*)' "Read,Write" --disallowedTools WebFetch\n--dangerously-skip-permissions`)).toEqual({
      model: 'opus',
      allowedTools: ['Bash(git diff:*)', 'Read', 'Write'],
      disallowedTools: ['WebFetch'],
      permissionMode: 'bypassPermissions',
    });
    expect(() => parseClaudeArgs('--output-format json')).toThrow('claude_args: --output-format is set by delegate itself on every run; remove it');
    expect(() => parseClaudeArgs('fix the bug')).toThrow("claude_args: 'fix' is not a flag; put instructions in prompt or tasks");
    expect(() => parseClaudeArgs('--permission-mode plan --dangerously-skip-permissions')).toThrow('contradicts --permission-mode plan');
    expect(() => parseClaudeArgs('--max-budget-usd -1')).toThrow('claude_args: --max-budget-usd needs a value');
  });
});
