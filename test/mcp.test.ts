/**
 * The MCP stdio server end to end: `delegate mcp start` as a child process driven by the SDK client, a real
 * database file, runners started on demand, the fake claude. One test drives the server in-process.
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, cliBin, eventually, fakeClaudeEvents, processExists, removeDir, tempDir, testEnv } from './helpers.js';
import { connectedClient } from './mcp-client.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { z } from 'zod';
import { createMcpServer, runnerStarter } from '../adapters/mcp/server.js';
import { defineTool, type ToolDeps } from '../adapters/mcp/tools/tool.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig } from '../engine/config.js';
import { createLogger } from '../engine/logger.js';
import { openStore } from '../engine/store/store.js';
import { ScheduleService } from '../engine/schedule-service.js';
import { TaskService, type TaskView } from '../engine/task-service.js';
import { UsageService } from '../engine/usage-service.js';

const toolNames = [
  'DelegateTask',
  'TaskStatus',
  'TaskLogs',
  'CancelTask',
  'RetryTask',
  'ResumeTask',
  'CreatePipeline',
  'WaitForTask',
  'ScheduleTask',
  'ListSchedules',
  'GetSchedule',
  'CancelSchedule',
  'PauseSchedule',
  'ResumeSchedule',
  'UsageSummary',
];

let dataDir: string;
let projectDir: string;
let env: NodeJS.ProcessEnv;
const clients: Client[] = [];
/** Raw servers of the current test, closed after it. */
const rawServers: Array<{ child: ChildProcessWithoutNullStreams; exited: Promise<unknown> }> = [];

beforeEach(() => {
  dataDir = tempDir();
  projectDir = tempDir('delegate-project-');
  env = testEnv(dataDir);
});

afterEach(async () => {
  await Promise.all(clients.splice(0).map((client) => client.close()));
  await Promise.all(
    rawServers.splice(0).map((server) => {
      server.child.stdin.end();
      const timer = setTimeout(() => server.child.kill(), 5000);
      return server.exited.finally(() => clearTimeout(timer));
    }),
  );
  await cli(['stop'], env);
  removeDir(dataDir);
  removeDir(projectDir);
});

/** A connected client of a fresh `delegate mcp start` (cwd: the project dir); its stderr is collected. */
async function connect(serverEnv: NodeJS.ProcessEnv = env): Promise<{ client: Client; transport: StdioClientTransport; stderr: () => string }> {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [cliBin, 'mcp', 'start'],
    env: serverEnv as Record<string, string>,
    cwd: projectDir,
    stderr: 'pipe',
  });
  let stderr = '';
  // Drained so the server never blocks on a full stderr pipe (tests log at debug).
  transport.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const client = await connectedClient(transport);
  clients.push(client);
  return { client, transport, stderr: () => stderr };
}

async function call(client: Client, name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

function textOf(result: CallToolResult): string {
  return result.content.map((block) => (block.type === 'text' ? block.text : '')).join('');
}

/** The structured result of a call that must have succeeded. */
async function ok<T = Record<string, unknown>>(client: Client, name: string, args: Record<string, unknown>): Promise<T> {
  const result = await call(client, name, args);
  expect(result.isError, textOf(result)).toBeFalsy();
  expect(textOf(result).length).toBeGreaterThan(0);
  return result.structuredContent as T;
}

async function task(client: Client, taskId: string): Promise<TaskView> {
  return (await ok<{ task: TaskView }>(client, 'TaskStatus', { taskId })).task;
}

async function settled(client: Client, taskId: string): Promise<TaskView> {
  return eventually(async () => {
    const view = await task(client, taskId);
    return ['completed', 'failed', 'cancelled'].includes(view.status) ? view : null;
  }, 30_000, 100);
}

describe('tools/list', () => {
  it('lists exactly the task and schedule tools with schemas, descriptions and annotations', async () => {
    const { client, stderr } = await connect();
    const { tools } = await client.listTools();
    expect(tools.map((tool) => tool.name)).toEqual(toolNames);
    for (const tool of tools) {
      expect(tool.title, tool.name).toBeTruthy();
      expect(tool.description, tool.name).toBeTruthy();
      expect(tool.inputSchema.type).toBe('object');
      const properties = Object.entries(tool.inputSchema.properties ?? {}) as Array<[string, { description?: string }]>;
      expect(properties.length, tool.name).toBeGreaterThan(0);
      for (const [name, property] of properties) expect(property.description, `${tool.name}.${name}`).toBeTruthy();
      expect(tool.inputSchema.additionalProperties, tool.name).toBe(false);
      expect(tool.outputSchema?.type, tool.name).toBe('object');
      expect(Object.keys(tool.outputSchema?.properties ?? {}).length, tool.name).toBeGreaterThan(0);
      expect(tool.annotations).toMatchObject({ title: tool.title, openWorldHint: false });
    }
    const byName = new Map(tools.map((tool) => [tool.name, tool]));
    expect(byName.get('TaskStatus')!.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true });
    expect(byName.get('TaskLogs')!.annotations).toMatchObject({ readOnlyHint: true, idempotentHint: true });
    expect(byName.get('CancelTask')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: true });
    expect(byName.get('DelegateTask')!.annotations).toMatchObject({ readOnlyHint: false, destructiveHint: false, idempotentHint: false });

    const delegate = byName.get('DelegateTask')!.inputSchema as { required?: string[]; properties: Record<string, Record<string, unknown>> };
    expect(delegate.required).toEqual(['prompt']);
    expect(delegate.properties.priority).toMatchObject({ type: 'string', enum: ['P0', 'P1', 'P2'] });
    expect(delegate.properties.timeout).toMatchObject({ type: 'integer', minimum: 1000, maximum: 86_400_000 });
    expect(delegate.properties.maxOutputBuffer).toMatchObject({ minimum: 1024, maximum: 1_073_741_824 });
    expect(delegate.properties.dependsOn).toMatchObject({ type: 'array', items: { type: 'string' } });
    expect(delegate.properties.worktree).toMatchObject({ type: 'boolean' });
    expect(Object.keys(delegate.properties)).toEqual(
      expect.arrayContaining(['prompt', 'priority', 'dependsOn', 'continueFrom', 'workingDirectory', 'agent', 'model', 'permissionMode', 'allowedTools', 'disallowedTools']),
    );
    const logs = byName.get('TaskLogs')!.inputSchema as { required?: string[]; properties: Record<string, Record<string, unknown>> };
    expect(logs.required).toEqual(['taskId']);
    expect(logs.properties.stream).toMatchObject({ enum: ['stdout', 'stderr', 'both'] });
    expect((byName.get('TaskStatus')!.inputSchema as { required?: string[] }).required ?? []).toEqual([]);
    expect((byName.get('CancelTask')!.inputSchema as { required?: string[] }).required).toEqual(['taskId']);
    expect((byName.get('RetryTask')!.inputSchema as { required?: string[] }).required).toEqual(['taskId']);
    // Logs go to stderr (stdout is the protocol the client just parsed).
    await eventually(() => stderr().includes('[mcp] serving MCP on stdio'));
  });

  it("publishes each tool's output schema, and the tests' client holds every result to it", async () => {
    // The server does not parse its results against their schemas (that was a third of a TaskStatus page's time):
    // connectedClient is the check, so it must catch a tool whose result drifts from what it published.
    const reply = { count: 3 as unknown as number };
    const counter = defineTool({
      name: 'Count',
      title: 'Count',
      description: 'A count.',
      input: {},
      output: { count: z.number().int().describe('How many.') },
      annotations: { readOnlyHint: true },
      run: async () => ({ text: 'counted', data: reply }),
    });
    const server = new McpServer({ name: 'drift', version: '0' });
    // This tool needs no engine: only the logger of its deps is used.
    counter.register(server, { logger: createLogger('mcp', 'error', () => {}) } as ToolDeps);
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = await connectedClient(clientSide);
    try {
      const { tools } = await client.listTools();
      expect(tools[0]!.outputSchema).toMatchObject({ type: 'object', properties: { count: { type: 'integer', description: 'How many.' } }, required: ['count'] });
      expect((await client.callTool({ name: 'Count', arguments: {} })).structuredContent).toEqual({ count: 3 });
      reply.count = 'three' as unknown as number;
      await expect(client.callTool({ name: 'Count', arguments: {} })).rejects.toThrow(/does not match the tool's output schema/);
    } finally {
      await client.close();
    }
  });
});

describe('DelegateTask, TaskStatus, TaskLogs', () => {
  it('runs a task to completion in the server cwd and shows its status, cost, session and output', async () => {
    const { client } = await connect();
    const queued = await ok<{ taskId: string; status: string; runner: string; task: TaskView }>(client, 'DelegateTask', { prompt: 'hello [lines 3]', priority: 'P1' });
    expect(queued.taskId).toMatch(/^task-[0-9a-f]{12}$/);
    expect(queued.status).toMatch(/^(queued|ready)$/);
    expect(['started', 'running', 'starting']).toContain(queued.runner);
    expect(queued.task).toMatchObject({ taskId: queued.taskId, priority: 'P1', workingDirectory: projectDir });

    const done = await settled(client, queued.taskId);
    expect(done).toMatchObject({ status: 'completed', exitCode: 0, costUsd: 0.0123, attempt: 1, retryOf: null });
    expect(done.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(done.durationMs).toBeGreaterThanOrEqual(0);
    const statusText = textOf(await call(client, 'TaskStatus', { taskId: queued.taskId }));
    expect(statusText).toContain('completed');
    expect(statusText).toContain(done.sessionId!);
    const [start] = fakeClaudeEvents(dataDir);
    expect(start).toMatchObject({ prompt: 'hello [lines 3]', cwd: projectDir, sessionId: done.sessionId });

    const logs = await ok<{ lines: string[]; status: string; stream: string }>(client, 'TaskLogs', { taskId: queued.taskId });
    expect(logs).toMatchObject({ status: 'completed', stream: 'stdout' });
    expect(logs.lines).toEqual(expect.arrayContaining(['line 1', 'line 2', 'line 3']));
    const logsText = textOf(await call(client, 'TaskLogs', { taskId: queued.taskId }));
    expect(logsText).toContain('line 1\nline 2\nline 3');
    expect(logsText).not.toContain('"type"');
    const tail = await ok<{ lines: string[] }>(client, 'TaskLogs', { taskId: queued.taskId, tail: 1 });
    expect(tail.lines).toEqual([logs.lines.at(-1)]);
  });

  it('TaskLogs text shows the escape sequences an agent wrote visibly; structuredContent keeps them exact', async () => {
    const { client } = await connect();
    const { taskId } = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'shout [say "\\u001b[2Jcleared\\u009b"]' });
    expect((await settled(client, taskId)).status).toBe('completed');
    const logs = await call(client, 'TaskLogs', { taskId });
    expect((logs.structuredContent as { lines: string[] }).lines).toEqual(['\u001b[2Jcleared\u009b', 'done: shout']);
    expect(textOf(logs)).toContain('\n\\x1b[2Jcleared\\x9b\ndone: shout');
    expect(textOf(logs)).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
  });

  it('lists tasks newest first, filtered by status and limit', async () => {
    const { client } = await connect();
    const first = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'first' });
    const second = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'second [exit 3]' });
    const third = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'third' });
    for (const { taskId } of [first, second, third]) await settled(client, taskId);

    const all = await ok<{ tasks: TaskView[] }>(client, 'TaskStatus', {});
    expect(all.tasks.map((view) => view.taskId)).toEqual([third.taskId, second.taskId, first.taskId]);
    const failed = await ok<{ tasks: TaskView[] }>(client, 'TaskStatus', { status: 'failed' });
    expect(failed.tasks.map((view) => view.taskId)).toEqual([second.taskId]);
    expect(failed.tasks[0]).toMatchObject({ failReason: 'exit_code', exitCode: 3 });
    const newest = await ok<{ tasks: TaskView[] }>(client, 'TaskStatus', { status: 'completed', limit: 1 });
    expect(newest.tasks.map((view) => view.taskId)).toEqual([third.taskId]);
    const listText = textOf(await call(client, 'TaskStatus', {}));
    expect(listText).toMatch(/^ID\s+STATUS/);
    expect(textOf(await call(client, 'TaskStatus', { status: 'paused' }))).toBe('no paused tasks');
  });
});

describe('UsageSummary', () => {
  it('sums what the runs cost per agent and per day, and refuses a bad by or since in one line', async () => {
    const { client } = await connect();
    const { taskId } = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'count me [cost 0.05] [tokens 30 40 500 6000] [model claude-haiku-4-5]' });
    const done = await settled(client, taskId);
    expect(done).toMatchObject({ status: 'completed', costUsd: 0.05, tokens: { input: 30, output: 40, cacheCreation: 500, cacheRead: 6000 }, model: 'claude-haiku-4-5' });
    expect(textOf(await call(client, 'TaskStatus', { taskId }))).toContain('tokens:      30 in, 40 out, 500 cache write, 6,000 cache read');

    const byAgent = await call(client, 'UsageSummary', { since: '1d', by: 'agent' });
    expect(byAgent.isError).toBeFalsy();
    const summary = byAgent.structuredContent as { by: string; since: string; total: Record<string, unknown>; groups: Array<Record<string, unknown>> };
    const tokens = { input: 30, output: 40, cacheCreation: 500, cacheRead: 6000 };
    expect(summary).toMatchObject({ by: 'agent', total: { costUsd: 0.05, turns: 1, runs: 1, tokens } });
    expect(summary.groups).toEqual([{ key: 'claude', costUsd: 0.05, turns: 1, runs: 1, tokens }]);
    expect(textOf(byAgent)).toMatch(/^claude\s+\$0\.0500\s+30\s+40\s+500\s+6,000\s+1\s+1$/m);
    const byDay = await ok<{ groups: Array<{ key: string }>; timeZone: string }>(client, 'UsageSummary', { by: 'day' });
    expect(byDay.groups).toHaveLength(1);
    expect(byDay.groups[0]!.key).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    expect((await ok<{ groups: unknown[]; by: null }>(client, 'UsageSummary', {})).groups).toEqual([]);

    for (const [args, message] of [
      [{ by: 'week' }, "by 'week': expected day, agent or schedule"],
      [{ since: 'last week' }, "since 'last week': expected an ISO 8601 time (2026-11-30T09:00:00Z) or a duration ago like 90m, 12h or 7d"],
      [{ since: 3 }, 'since 3: expected an ISO 8601 time (2026-11-30T09:00:00Z) or a duration ago like 90m, 12h or 7d'],
      [{ until: 'now' }, 'until: unknown field; allowed fields are since, by'],
    ] as const) {
      const refused = await call(client, 'UsageSummary', args);
      expect(refused.isError, JSON.stringify(args)).toBe(true);
      expect(textOf(refused)).toBe(message);
    }
  });
});

describe('CancelTask and RetryTask', () => {
  it('cancels a running task: its agent and the agent’s children are gone, its dependant fails', async () => {
    const { client } = await connect();
    const { taskId } = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'long [child] [sleep 30000]' });
    const dependant = await ok<{ taskId: string; status: string }>(client, 'DelegateTask', { prompt: 'after', dependsOn: [taskId] });
    expect(dependant.status).toBe('waiting');
    const start = await eventually(() => fakeClaudeEvents(dataDir).find((event) => event.event === 'start'));
    const childPid = await eventually(async () => {
      const { lines } = await ok<{ lines: string[] }>(client, 'TaskLogs', { taskId });
      const line = lines.find((text) => text.startsWith('child-pid: '));
      return line ? Number(line.slice('child-pid: '.length)) : null;
    });
    expect((await task(client, taskId)).status).toBe('running');
    expect(processExists(start.pid)).toBe(true);
    expect(processExists(childPid)).toBe(true);

    const cancelled = await ok<{ status: string; failedDependants: string[] }>(client, 'CancelTask', { taskId, reason: 'changed my mind' });
    expect(cancelled).toMatchObject({ status: 'cancelled', failedDependants: [dependant.taskId] });
    await eventually(() => !processExists(start.pid) && !processExists(childPid));
    expect(await task(client, taskId)).toMatchObject({ status: 'cancelled', cancelReason: 'changed my mind' });
    expect(await task(client, dependant.taskId)).toMatchObject({ status: 'failed', failReason: 'dependency_failed', cancelReason: null });
    expect(fakeClaudeEvents(dataDir).filter((event) => event.event === 'start')).toHaveLength(1);
  });

  it('retries a failed task as a new task with retryOf', async () => {
    const { client } = await connect();
    const { taskId } = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'boom [exit 3]', priority: 'P0', timeout: 60_000 });
    expect(await settled(client, taskId)).toMatchObject({ status: 'failed', failReason: 'exit_code', exitCode: 3 });

    const retried = await ok<{ taskId: string; task: TaskView; runner: string }>(client, 'RetryTask', { taskId });
    expect(retried.taskId).not.toBe(taskId);
    expect(retried.task).toMatchObject({ retryOf: taskId, prompt: 'boom [exit 3]', priority: 'P0', workingDirectory: projectDir });
    expect(await settled(client, retried.taskId)).toMatchObject({ status: 'failed', exitCode: 3, retryOf: taskId });
    expect(fakeClaudeEvents(dataDir).filter((event) => event.event === 'start').map((event) => event.prompt)).toEqual(['boom [exit 3]', 'boom [exit 3]']);
  });
});

describe('the reference README examples over MCP', () => {
  it('lint + format → commit, continueFrom build → test, resume with context, and a pipeline', async () => {
    const { client } = await connect();
    const lint = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'npm run lint' });
    const format = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'npm run format' });
    const commit = await ok<{ taskId: string; status: string }>(client, 'DelegateTask', {
      prompt: "git commit -m 'Formatted and linted'",
      dependsOn: [lint.taskId, format.taskId],
    });
    const build = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'npm run build [lines 2]' });
    const test = await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'npm test [exit 1]', dependsOn: [build.taskId], continueFrom: build.taskId });
    for (const id of [lint.taskId, format.taskId, commit.taskId, build.taskId]) expect((await settled(client, id)).status).toBe('completed');
    expect((await settled(client, test.taskId)).status).toBe('failed');
    const starts = () => fakeClaudeEvents(dataDir).filter((event) => event.event === 'start');
    const at = (prompt: string, kind: 'start' | 'end') => fakeClaudeEvents(dataDir).find((event) => event.event === kind && event.prompt.endsWith(prompt))!.at;
    expect(at("git commit -m 'Formatted and linted'", 'start')).toBeGreaterThanOrEqual(Math.max(at('npm run lint', 'end'), at('npm run format', 'end')));
    expect(starts().find((event) => event.prompt.endsWith('npm test [exit 1]'))!.prompt).toContain(`Context from the task this one continues, ${build.taskId}`);

    const resumed = await ok<{ taskId: string; task: TaskView }>(client, 'ResumeTask', { taskId: test.taskId, additionalContext: 'Focus on the database migration step' });
    expect(resumed.task).toMatchObject({ parentTaskId: test.taskId });
    await settled(client, resumed.taskId);
    const resumedStart = starts().find((event) => event.prompt.includes('Focus on the database migration step'))!;
    expect(resumedStart.argv).toEqual(expect.arrayContaining(['--resume', '--fork-session']));

    const pipeline = await ok<{ taskIds: string[] }>(client, 'CreatePipeline', { steps: [{ prompt: 'first step' }, { prompt: 'second step', delay: '1s' }] });
    const [first, second] = pipeline.taskIds as [string, string];
    expect(await task(client, second)).toMatchObject({ dependsOn: [first], continueFrom: first });
    expect((await settled(client, second)).status).toBe('completed');
    expect(at('second step', 'start') - at('first step', 'end')).toBeGreaterThanOrEqual(1000);
  });
});

/**
 * NUL, ESC (a screen clear), DEL and C1 CSI in every text field of the task tools: each refused with one line that
 * names the field, the character, where it is and what the field allows.
 */
function controlCases(open: string, gone: string): Array<[string, Record<string, unknown>, string]> {
  const multi = 'only newline, tab and carriage return are allowed';
  const single = 'no control characters are allowed';
  const fields: Array<[string, (value: string) => Record<string, unknown>, string, string]> = [
    ['DelegateTask', (v) => ({ prompt: v }), 'prompt', multi],
    ['DelegateTask', (v) => ({ prompt: 'x', model: v }), 'model', single],
    ['DelegateTask', (v) => ({ prompt: 'x', agent: v }), 'agent', single],
    ['DelegateTask', (v) => ({ prompt: 'x', workingDirectory: `/tmp/${v}` }), 'workingDirectory', single],
    ['DelegateTask', (v) => ({ prompt: 'x', allowedTools: ['Read', v] }), 'allowedTools[1]', single],
    ['DelegateTask', (v) => ({ prompt: 'x', disallowedTools: [v] }), 'disallowedTools[0]', single],
    ['DelegateTask', (v) => ({ prompt: 'x', dependsOn: [open, v] }), 'dependsOn[1]', single],
    ['DelegateTask', (v) => ({ prompt: 'x', continueFrom: v }), 'continueFrom', single],
    ['TaskStatus', (v) => ({ taskId: v }), 'taskId', single],
    ['CancelTask', (v) => ({ taskId: open, reason: v }), 'reason', multi],
    ['ResumeTask', (v) => ({ taskId: gone, additionalContext: v }), 'additionalContext', multi],
    ['CreatePipeline', (v) => ({ steps: [{ prompt: 'a' }, { prompt: v }] }), 'steps[1].prompt', multi],
    ['CreatePipeline', (v) => ({ prompts: ['a', v] }), 'prompts[1]', multi],
    ['CreatePipeline', (v) => ({ prompts: ['a'], model: v }), 'model', single],
  ];
  const controls = [
    ['a\u0000b', 'U+0000'],
    ['a\u001b[2J', 'U+001B'],
    ['a\u007f', 'U+007F'],
    ['a\u009b31m', 'U+009B'],
  ] as const;
  return fields.flatMap(([tool, args, field, allowed]) =>
    controls.map(([value, code]): [string, Record<string, unknown>, string] => {
      // workingDirectory's value starts with /tmp/, so its control character sits further in.
      const index = field === 'workingDirectory' ? 6 : 1;
      return [tool, args(value), `${field}: contains a control character (${code}) at index ${index}; ${allowed}`];
    }),
  );
}

describe('bad input', () => {
  it('answers every bad call with isError and one line naming the field, writes nothing and keeps serving', async () => {
    // No runner: the tasks made for the table stay where they are.
    env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0' });
    const { client } = await connect(env);
    const queued = await call(client, 'DelegateTask', { prompt: 'stays queued' });
    expect(queued.isError).toBeFalsy();
    expect(queued.structuredContent).toMatchObject({ runner: 'disabled' });
    expect(textOf(queued)).toContain('DELEGATE_AUTOSTART=0');
    expect(textOf(queued)).toContain('`delegate serve`');
    const open = (queued.structuredContent as { taskId: string }).taskId;
    const gone = (await ok<{ taskId: string }>(client, 'DelegateTask', { prompt: 'to cancel' })).taskId;
    await ok(client, 'CancelTask', { taskId: gone });
    // Multi-line text keeps newline, tab and carriage return, stored exactly as given.
    const multiLine = 'first line\r\n\tsecond line\n';
    const kept = await ok<{ task: TaskView }>(client, 'DelegateTask', { prompt: multiLine });
    expect((await task(client, kept.task.taskId)).prompt).toBe(multiLine);
    const before = await ok<{ tasks: TaskView[] }>(client, 'TaskStatus', {});

    const idHint = 'expected a task id like task-1a2b3c4d5e6f';
    const multi = 'only newline, tab and carriage return are allowed';
    const noSuchTask = 'taskId task-doesnotexist: no such task (see delegate status for the list)';
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['DelegateTask', {}, 'prompt: missing; expected a non-empty string'],
      ['DelegateTask', { prompt: '' }, 'prompt: expected a non-empty string (got an empty one)'],
      ['DelegateTask', { prompt: '   ' }, 'prompt: expected a non-empty string (got an empty one)'],
      ['DelegateTask', { prompt: 42 }, 'prompt 42: expected a non-empty string'],
      ['DelegateTask', { prompt: 'x', priority: 'P9' }, "priority 'P9': expected P0, P1 or P2"],
      ['DelegateTask', { prompt: 'x', timeout: 5 }, 'timeout 5: expected a whole number of milliseconds from 1000 to 86400000'],
      ['DelegateTask', { prompt: 'x', timeout: 90_000_000 }, 'timeout 90000000: expected a whole number of milliseconds from 1000 to 86400000'],
      ['DelegateTask', { prompt: 'x', timeout: 1500.5 }, 'timeout 1500.5: expected a whole number of milliseconds from 1000 to 86400000'],
      ['DelegateTask', { prompt: 'x', timeout: '5s' }, "timeout '5s': expected a whole number of milliseconds from 1000 to 86400000"],
      ['DelegateTask', { prompt: 'x', maxOutputBuffer: 10 }, 'maxOutputBuffer 10: expected a whole number of bytes from 1024 to 1073741824'],
      ['DelegateTask', { prompt: 'x', workingDirectory: 'rel/dir' }, "workingDirectory 'rel/dir': expected an absolute path of an existing directory"],
      [
        'DelegateTask',
        { prompt: 'x', workingDirectory: '/does/not/exist' },
        "workingDirectory '/does/not/exist': no such directory; expected an absolute path of an existing directory",
      ],
      ['DelegateTask', { prompt: 'x', dependsOn: 'task-abc' }, "dependsOn 'task-abc': expected an array of task ids"],
      ['DelegateTask', { prompt: 'x', dependsOn: ['nope'] }, `dependsOn 'nope': ${idHint}`],
      ['DelegateTask', { prompt: 'x', dependsOn: ['task-doesnotexist'] }, 'dependsOn: task task-doesnotexist does not exist'],
      ['DelegateTask', { prompt: 'x', continueFrom: open }, `continueFrom ${open}: expected one of the dependsOn ids (add it to dependsOn)`],
      [
        'DelegateTask',
        { prompt: 'x', permissionMode: 'yolo' },
        "permissionMode 'yolo': expected one of acceptEdits, bypassPermissions, default, plan, dontAsk",
      ],
      ['DelegateTask', { prompt: 'x', maxBudgetUsd: -1 }, 'maxBudgetUsd -1: expected a positive number of US dollars'],
      ['DelegateTask', { prompt: 'x', worktree: 'yes' }, "worktree 'yes': expected true or false"],
      ['DelegateTask', { prompt: 'x', worktree: true }, `worktree true: ${projectDir} is not in a git repository; run git init there, or leave worktree unset`],
      ['DelegateTask', { prompt: 'x', allowedTools: 'Bash' }, "allowedTools 'Bash': expected an array of tool names"],
      [
        'DelegateTask',
        { prompt: 'x', priorty: 'P1' },
        'priorty: unknown field; allowed fields are prompt, priority, dependsOn, continueFrom, timeout, maxOutputBuffer, workingDirectory, agent, model, permissionMode, allowedTools, disallowedTools, maxBudgetUsd, worktree',
      ],
      ['TaskStatus', { taskId: 'task-doesnotexist' }, noSuchTask],
      ['TaskStatus', { taskId: 'abc' }, `taskId 'abc': ${idHint}`],
      ['TaskStatus', { status: 'done' }, "status 'done': expected queued, waiting, ready, running, paused, completed, failed or cancelled"],
      ['TaskStatus', { limit: 0 }, 'limit 0: expected a whole number of tasks from 1 to 10000'],
      ['TaskStatus', { limit: 'ten' }, "limit 'ten': expected a whole number of tasks from 1 to 10000"],
      ['TaskStatus', { id: open }, 'id: unknown field; allowed fields are taskId, status, limit'],
      ['TaskLogs', {}, `taskId: missing; ${idHint}`],
      ['TaskLogs', { taskId: 'task-doesnotexist' }, noSuchTask],
      ['TaskLogs', { taskId: open, tail: 0 }, 'tail 0: expected a whole number of lines from 1 to 100000'],
      ['TaskLogs', { taskId: open, stream: 'all' }, "stream 'all': expected stdout, stderr or both"],
      ['CancelTask', {}, `taskId: missing; ${idHint}`],
      ['CancelTask', { taskId: 'task-doesnotexist' }, noSuchTask],
      ['CancelTask', { taskId: open, reason: 5 }, 'reason 5: expected a string'],
      ['CancelTask', { taskId: gone }, `task ${gone} is already cancelled; only unfinished tasks can be cancelled`],
      ['RetryTask', {}, `taskId: missing; ${idHint}`],
      ['RetryTask', { taskId: 'task-doesnotexist' }, noSuchTask],
      ['RetryTask', { taskId: open }, `task ${open} is ready; only failed, completed or cancelled tasks can be retried`],
      ['RetryTask', { taskId: open, reason: 'x' }, 'reason: unknown field; allowed fields are taskId'],
      ['ResumeTask', {}, `taskId: missing; ${idHint}`],
      ['ResumeTask', { taskId: 'task-doesnotexist' }, noSuchTask],
      ['ResumeTask', { taskId: open }, `task ${open} is ready; only failed, completed or cancelled tasks can be resumed`],
      ['ResumeTask', { taskId: gone, additionalContext: 7 }, 'additionalContext 7: expected a string'],
      ['CreatePipeline', {}, 'steps, prompts: expected exactly one of them'],
      ['CreatePipeline', { prompts: [] }, 'steps: expected at least one step'],
      ['CreatePipeline', { prompts: ['a', ''] }, 'steps[1].prompt: expected a non-empty string (got an empty one)'],
      ['CreatePipeline', { steps: [{ prompt: 'a' }, { prompt: 'b', delay: 'soon' }] }, "steps[1].delay 'soon': expected a duration such as 30s, 5m or 2h (or milliseconds), at most 24h"],
      ['CreatePipeline', { steps: [{ prompt: 'a', wait: 1 }] }, 'steps[0].wait: unknown field'],
      ['CreatePipeline', { steps: [{ prompt: 3 }] }, 'steps[0].prompt 3: expected a non-empty string'],
      ['CreatePipeline', { prompts: ['a'], priority: 'P7' }, "priority 'P7': expected P0, P1 or P2"],
      // What the store would have kept differently: NUL cut the string there, an unpaired surrogate became U+FFFD.
      ['DelegateTask', { prompt: 'a\u0000b' }, `prompt: contains a control character (U+0000) at index 1; ${multi}`],
      ['DelegateTask', { prompt: '\u0000hidden' }, `prompt: contains a control character (U+0000) at index 0; ${multi}`],
      ['DelegateTask', { prompt: 'a\ud800b' }, 'prompt: contains an unpaired surrogate (U+D800) at index 1; expected well-formed Unicode text'],
      ['DelegateTask', { prompt: 'x', permissionMode: 'a\u001b[2J' }, "permissionMode 'a\\x1b[2J': expected one of acceptEdits, bypassPermissions, default, plan, dontAsk"],
      ['DelegateTask', { prompt: 'x', priority: 'P\u0000' }, "priority 'P\\x00': expected P0, P1 or P2"],
      ...controlCases(open, gone),
    ];
    for (const [tool, args, message] of cases) {
      const result = await call(client, tool, args);
      expect({ tool, args, isError: result.isError, text: textOf(result) }).toEqual({ tool, args, isError: true, text: message });
    }

    const after = await ok<{ tasks: TaskView[] }>(client, 'TaskStatus', {});
    expect(after.tasks.map((view) => [view.taskId, view.status])).toEqual(before.tasks.map((view) => [view.taskId, view.status]));
    expect((await client.listTools()).tools).toHaveLength(toolNames.length);
    const unknownTool = await call(client, 'NoSuchTool', { prompt: 'x' });
    expect(unknownTool.isError).toBe(true);
    expect(textOf(unknownTool)).toContain('Tool NoSuchTool not found');
  });

  it('exits 2 with a one-line message before serving when the configuration is bad', async () => {
    const result = await cli(['mcp', 'start'], testEnv(dataDir, { TASK_TIMEOUT: '5' }));
    expect(result).toEqual({ code: 2, stdout: '', stderr: 'delegate: TASK_TIMEOUT="5": expected an integer from 1000 to 86400000 (milliseconds)\n' });
  });

  it('reports a runner that could not be started and keeps the task (in-process, no child server)', async () => {
    // The data dir sits under a regular file, so starting a runner there fails; the database lives elsewhere.
    const blocker = path.join(dataDir, 'a-file');
    writeFileSync(blocker, '');
    const badEnv = testEnv(path.join(blocker, 'data'), { DELEGATE_DATABASE_URL: `file:${path.join(dataDir, 'delegate.db')}` });
    const config = loadConfig(badEnv);
    const store = await openStore(config.databaseUrl, { authToken: config.databaseToken });
    const logger = createLogger('mcp', 'error', () => {});
    const tasks = new TaskService(store, config, systemClock, projectDir);
    const schedules = new ScheduleService(store, config, systemClock, projectDir, tasks);
    const server = createMcpServer({ tasks, schedules, usage: new UsageService(store, systemClock), ensureRunner: runnerStarter(store, config, badEnv, logger), logger });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = await connectedClient(clientSide);
    try {
      const queued = await ok<{ taskId: string; runner: string }>(client, 'DelegateTask', { prompt: 'kept' });
      expect(queued.runner).toBe('failed');
      const text = textOf(await call(client, 'TaskStatus', { taskId: queued.taskId }));
      expect(text).toContain('ready');
      const again = await call(client, 'RetryTask', { taskId: queued.taskId });
      expect(textOf(again)).toMatch(/is ready; only failed, completed or cancelled tasks can be retried$/);
      const retryText = textOf(await call(client, 'DelegateTask', { prompt: 'kept too' }));
      expect(retryText).toMatch(/Could not start a runner \(.+\); the task is saved and waits in the queue until you start one with `delegate serve`/);
      expect((await ok<{ tasks: TaskView[] }>(client, 'TaskStatus', {})).tasks).toHaveLength(2);
    } finally {
      await client.close();
      await store.close();
    }
  });
});

/** A message the server wrote to stdout. */
interface RawMessage {
  jsonrpc?: string;
  id?: number | string | null;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** A server child spoken to in raw JSON-RPC lines, to see its stdout and how it exits. */
function rawServer(serverEnv: NodeJS.ProcessEnv) {
  const child = spawn(process.execPath, [cliBin, 'mcp', 'start'], { env: serverEnv, cwd: projectDir, stdio: ['pipe', 'pipe', 'pipe'] });
  const stdoutLines: string[] = [];
  const messages: RawMessage[] = [];
  const waiting = new Map<number, (message: RawMessage) => void>();
  createInterface({ input: child.stdout }).on('line', (line) => {
    stdoutLines.push(line);
    try {
      const message = JSON.parse(line) as RawMessage;
      messages.push(message);
      if (typeof message.id === 'number') waiting.get(message.id)?.(message);
    } catch {
      // Not JSON: the test's check of stdoutLines reports it.
    }
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A server that exits early breaks the pipe under a pending write; the test reports the missing answer instead.
  child.stdin.on('error', () => {});
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  let nextId = 1;
  const request = (method: string, params: unknown) =>
    Promise.race([
      new Promise<RawMessage>((resolve) => {
        const id = nextId++;
        waiting.set(id, resolve);
        child.stdin.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
      }),
      exited.then((exit) => {
        throw new Error(`the server exited (${JSON.stringify(exit)}) before answering ${method}: ${stderr}${stdoutLines.join('\n')}`);
      }),
    ]);
  /** Write raw bytes to the server's stdin (no newline added). */
  const write = (data: string) => child.stdin.write(data);
  /** Wait for a message on stdout, counted from `since` (an index into messages). */
  const reply = (match: (message: RawMessage) => boolean, since = 0) =>
    eventually(() => messages.slice(since).find(match), 10_000, 20).catch((error: unknown) => {
      throw new Error(`${String(error)}; stdout: ${stdoutLines.join('\n').slice(0, 2000)}; stderr: ${stderr.slice(-2000)}`);
    });
  /** An initialized session, as a client starts one. */
  const initialize = async () => {
    const init = await request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } });
    expect(init.result).toMatchObject({ serverInfo: { name: 'delegate' } });
    write(`${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })}\n`);
  };
  const server = { child, stdoutLines, messages, request, write, reply, initialize, exited, stderr: () => stderr };
  rawServers.push(server);
  return server;
}

describe('messages that are too big, not JSON or not JSON-RPC', () => {
  const mib = 1024 * 1024;
  /** A call every test makes after the bad message: the server must still answer it. */
  const stillServing = async (server: ReturnType<typeof rawServer>) => {
    const answered = await server.request('tools/call', { name: 'TaskStatus', arguments: {} });
    expect(answered.result).toMatchObject({ structuredContent: { tasks: [] } });
  };
  /** Every stdout line is one JSON-RPC message (nothing else ever reaches stdout). */
  const protocolOnly = (server: ReturnType<typeof rawServer>) => {
    for (const line of server.stdoutLines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });
  };

  it('answers a 12 MiB message (under the default limit) and the call after it', async () => {
    const server = rawServer(testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
    await server.initialize();
    const big = await server.request('ping', { _meta: { padding: 'x'.repeat(12 * mib) } });
    expect(big).toMatchObject({ result: {} });
    await stillServing(server);
    protocolOnly(server);
  });

  it('answers a message over DELEGATE_MCP_MAX_MESSAGE_BYTES with -32600 (id null), drops it to its newline and serves the next', async () => {
    const server = rawServer(testEnv(dataDir, { DELEGATE_AUTOSTART: '0', DELEGATE_MCP_MAX_MESSAGE_BYTES: String(mib) }));
    await server.initialize();
    const since = server.messages.length;
    // The message after the big one arrives in the same write, right behind its newline.
    const big = JSON.stringify({ jsonrpc: '2.0', id: 'big', method: 'tools/call', params: { name: 'DelegateTask', arguments: { prompt: 'x'.repeat(12 * mib) } } });
    server.write(`${big}\n${JSON.stringify({ jsonrpc: '2.0', id: 'after', method: 'ping' })}\n`);
    const refused = await server.reply((message) => message.id === null, since);
    expect(refused).toEqual({
      jsonrpc: '2.0',
      id: null,
      error: { code: -32600, message: 'Invalid Request: message over 1048576 bytes (DELEGATE_MCP_MAX_MESSAGE_BYTES); dropped up to its newline' },
    });
    expect(await server.reply((message) => message.id === 'after', since)).toMatchObject({ result: {} });
    await stillServing(server);
    expect(server.messages.filter((message) => message.id === 'big')).toEqual([]);
    expect(server.messages.filter((message) => message.id === null)).toHaveLength(1);
    expect(server.stderr()).toMatch(/warn  \[mcp\] protocol error error=Invalid Request: message over 1048576 bytes .*\n/);
    protocolOnly(server);
  });

  it('answers a line that is not JSON with -32700 (id null) and serves the next', async () => {
    const server = rawServer(testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
    await server.initialize();
    const since = server.messages.length;
    server.write('{"jsonrpc":"2.0","id":9,"method":"ping"\n');
    const refused = await server.reply((message) => message.id === null, since);
    expect(refused).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: -32700 } });
    expect(refused.error!.message).toMatch(/^Parse error: [^\n]+$/);
    await stillServing(server);
    protocolOnly(server);
  });

  it('answers each JSON line that is no JSON-RPC request with -32600 and one line, and serves on', async () => {
    const server = rawServer(testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
    await server.initialize();
    const cases: Array<[string, string | number | null, string]> = [
      ['{"foo":1}', null, 'Invalid Request: jsonrpc: missing; expected "2.0"'],
      ['[1,2]', null, 'Invalid Request: expected one JSON-RPC object per line (got an array; batches are not supported)'],
      ['42', null, 'Invalid Request: expected one JSON-RPC object per line (got 42)'],
      ['{"jsonrpc":"2.0","id":7,"method":5}', 7, 'Invalid Request: method 5: expected a string'],
      ['{"jsonrpc":"2.0","id":8,"method":"tools/call","params":7}', 8, 'Invalid Request: params 7: expected an object'],
      ['{"jsonrpc":"1.0","id":"v1","method":"ping"}', 'v1', "Invalid Request: jsonrpc '1.0': expected \"2.0\""],
      ['{"jsonrpc":"2.0","id":null,"method":"ping"}', null, 'Invalid Request: id null: expected a string or an integer'],
      ['{"jsonrpc":"2.0","id":9,"method":"ping","extra":true}', 9, 'Invalid Request: extra: unknown field; a request has jsonrpc, id, method and params'],
    ];
    for (const [line, id, message] of cases) {
      const since = server.messages.length;
      server.write(`${line}\n`);
      const refused = await server.reply((reply) => reply.error !== undefined, since);
      expect({ line, refused }).toEqual({ line, refused: { jsonrpc: '2.0', id, error: { code: -32600, message } } });
      await stillServing(server);
    }
    protocolOnly(server);
  });

  it('answers tools/call whose params do not fit with -32602 and one line naming the field, and serves on', async () => {
    const server = rawServer(testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
    await server.initialize();
    const cases: Array<[unknown, string]> = [
      [{ name: 'TaskStatus', arguments: 42 }, 'Invalid params: tools/call params.arguments 42: expected an object'],
      [{ name: 'TaskStatus', arguments: ['a'] }, 'Invalid params: tools/call params.arguments ["a"]: expected an object'],
      [{ name: 'TaskStatus', arguments: 'x'.repeat(1000) }, `Invalid params: tools/call params.arguments '${'x'.repeat(56)}...: expected an object`],
      [{ arguments: {} }, 'Invalid params: tools/call params.name: missing; expected a string'],
      [undefined, 'Invalid params: tools/call params: missing; expected an object'],
    ];
    for (const [params, message] of cases) {
      const answer = await server.request('tools/call', params);
      expect({ params, error: answer.error }).toEqual({ params, error: { code: -32602, message } });
    }
    await stillServing(server);
    protocolOnly(server);
  });

  it('answers a last request that has no newline before it exits', async () => {
    const server = rawServer(testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
    await server.initialize();
    server.child.stdin.end(JSON.stringify({ jsonrpc: '2.0', id: 'last', method: 'tools/call', params: { name: 'TaskStatus', arguments: {} } }));
    expect(await server.reply((message) => message.id === 'last')).toMatchObject({ result: { structuredContent: { tasks: [] } } });
    expect(await server.exited).toEqual({ code: 0, signal: null });
  });
});

describe('lifetime', () => {
  it('answers a client that says everything and goes at once, and its log does not say it serves after it closed', async () => {
    const server = rawServer(testEnv(dataDir, { DELEGATE_AUTOSTART: '0', LOG_LEVEL: 'info' }));
    const initialize = { jsonrpc: '2.0', id: 'init', method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '0' } } };
    const call = { jsonrpc: '2.0', id: 'call', method: 'tools/call', params: { name: 'TaskStatus', arguments: {} } };
    server.child.stdin.end([initialize, { jsonrpc: '2.0', method: 'notifications/initialized' }, call].map((message) => JSON.stringify(message)).join('\n') + '\n');
    expect(await server.reply((message) => message.id === 'call')).toMatchObject({ result: { structuredContent: { tasks: [] } } });
    expect(await server.exited).toEqual({ code: 0, signal: null });
    const log = server.stderr();
    expect(log).toContain('closing why=stdin closed');
    expect(log.slice(log.indexOf('closing why='))).not.toContain('serving MCP on stdio');
  });

  it('exits promptly when stdin closes, after the call in flight; the task it queued runs to completion', async () => {
    const server = rawServer(env);
    await server.initialize();
    const answered = await server.request('tools/call', { name: 'TaskStatus', arguments: {} });
    expect(answered.result).toMatchObject({ structuredContent: { tasks: [] } });

    // The client goes away right after asking: the call in flight still queues the task, starts a runner and answers.
    const responding = server.request('tools/call', { name: 'DelegateTask', arguments: { prompt: 'outlive [sleep 1500] [lines 2]' } });
    const closedAt = Date.now();
    server.child.stdin.end();
    const { taskId } = ((await responding).result as { structuredContent: { taskId: string } }).structuredContent;
    const exit = await Promise.race([server.exited, new Promise((resolve) => setTimeout(() => resolve('still running'), 8000))]);
    expect(exit, server.stderr()).toEqual({ code: 0, signal: null });
    expect(Date.now() - closedAt).toBeLessThan(5000);
    expect(server.stderr()).toContain('closing why=stdin closed unanswered=1');
    // stdout carried protocol messages only.
    for (const line of server.stdoutLines) expect(JSON.parse(line)).toMatchObject({ jsonrpc: '2.0' });

    const done = await eventually(async () => {
      const result = await cli(['status', taskId, '--json'], env);
      const view = JSON.parse(result.stdout) as TaskView;
      return view.status === 'completed' ? view : null;
    }, 30_000, 200);
    expect(done.exitCode).toBe(0);
    const { client } = await connect();
    expect((await ok<{ lines: string[] }>(client, 'TaskLogs', { taskId })).lines).toEqual(expect.arrayContaining(['line 1', 'line 2']));
  });

  it('answers initialize without waiting for the database; one it cannot open then ends the server with one line', async () => {
    // The database file is a directory: opening it fails. The client's first message is in the pipe from the start.
    const badDir = tempDir();
    mkdirSync(path.join(badDir, 'delegate.db'));
    const server = rawServer(testEnv(badDir, { DELEGATE_AUTOSTART: '0', LOG_LEVEL: 'info' }));
    const init = await server.request('initialize', { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '0' } });
    expect(init.result).toMatchObject({ serverInfo: { name: 'delegate' } });
    expect(await server.exited).toEqual({ code: 1, signal: null });
    expect(server.stderr()).toContain(`delegate: the MCP server could not start: cannot open the database file ${path.join(badDir, 'delegate.db')} (a directory is in its place); check`);
    expect(server.stderr()).not.toMatch(/^\s+at /m);
    removeDir(badDir);
  });

  it('two servers on one data dir: every task runs exactly once', async () => {
    // Started one after the other, so the first creates the database: concurrent first opens are the store's concern.
    const one = await connect();
    const two = await connect();
    const prompts = Array.from({ length: 8 }, (_, index) => `job ${index} [lines 1]`);
    const submitted = await Promise.all(
      prompts.map((prompt, index) => ok<{ taskId: string }>((index % 2 ? two : one).client, 'DelegateTask', { prompt })),
    );
    for (const [index, { taskId }] of submitted.entries()) {
      expect(await settled((index % 2 ? one : two).client, taskId)).toMatchObject({ status: 'completed' });
    }
    const starts = fakeClaudeEvents(dataDir).filter((event) => event.event === 'start');
    expect(starts.map((event) => event.prompt).sort()).toEqual([...prompts].sort());
    const listed = await ok<{ tasks: TaskView[] }>(one.client, 'TaskStatus', {});
    expect(listed.tasks).toHaveLength(prompts.length);
  });
});

describe('limits and budgets over MCP', () => {
  it('TaskStatus shows the budgets, and ScheduleTask takes a daily budget and refuses a bad one in one line', async () => {
    const { client } = await connect({ ...env, DELEGATE_AUTOSTART: '0', DELEGATE_DAILY_BUDGET_USD: '5' });
    const listed = await ok<{ tasks: TaskView[]; limits: { budgets: unknown[]; holds: unknown[] } }>(client, 'TaskStatus', {});
    expect(listed.limits).toMatchObject({ holds: [], budgets: [{ scope: 'daily', scheduleId: null, spentUsd: 0, budgetUsd: 5, level: 'ok' }] });
    expect(textOf(await call(client, 'TaskStatus', {}))).toContain('daily budget: $0.00 of $5.00 (0 %) spent today');
    const created = await ok<{ schedule: { dailyBudgetUsd: number } }>(client, 'ScheduleTask', { prompt: 'nightly', cronExpression: '0 2 * * *', dailyBudgetUsd: 1.5 });
    expect(created.schedule.dailyBudgetUsd).toBe(1.5);
    const refused = await call(client, 'ScheduleTask', { prompt: 'nightly', cronExpression: '0 2 * * *', dailyBudgetUsd: 0 });
    expect(refused.isError).toBe(true);
    expect(textOf(refused)).toBe('dailyBudgetUsd 0: expected a positive number of US dollars, up to 1000000');
  });
});
