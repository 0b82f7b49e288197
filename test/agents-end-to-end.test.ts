/**
 * The codex and shell agents end to end (issue 13): tasks on a real runner with the fake codex on PATH and real
 * commands, an interrupted codex run resumed with `exec resume`, and the MCP server refusing the shell agent
 * unless DELEGATE_ALLOW_SHELL_AGENT=1.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMcpServer } from '../adapters/mcp/server.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig } from '../engine/config.js';
import { createLogger } from '../engine/logger.js';
import { ScheduleService } from '../engine/schedule-service.js';
import { openStore } from '../engine/store/store.js';
import { TaskService } from '../engine/task-service.js';
import { UsageService } from '../engine/usage-service.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { eventually, removeDir, tempDir, testEnv } from './helpers.js';
import { connectedClient } from './mcp-client.js';

let dataDir: string;

beforeEach(() => {
  dataDir = tempDir('delegate-agents-');
});

afterEach(() => {
  removeDir(dataDir);
});

/** One event the fake codex logged. */
interface FakeCodexEvent {
  event: 'start' | 'end';
  pid: number;
  argv: string[];
  prompt: string;
  threadId: string;
  resumedFrom: string | null;
  history?: string[];
  exitCode?: number;
}

function fakeCodexEvents(): FakeCodexEvent[] {
  const file = path.join(dataDir, 'fake-codex.jsonl');
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line) as FakeCodexEvent);
}

const codexStarts = (): FakeCodexEvent[] => fakeCodexEvents().filter((event) => event.event === 'start');

describe('codex agent on a runner', () => {
  let engine: EngineHarness;
  beforeEach(async () => {
    engine = await openEngine(dataDir);
  });
  afterEach(async () => {
    await engine.close();
  });

  it('completes a task with its thread id, tokens and the last message recorded', async () => {
    const { taskId } = await engine.tasks.delegate({ prompt: 'list the files [command ls -la] [tokens 5000 4000 300]', agent: 'codex', permissionMode: 'acceptEdits' });
    const [view] = await engine.settled([taskId]);
    const [start] = codexStarts();
    expect(start!.argv).toEqual(['exec', '--json', '--sandbox', 'workspace-write', '--skip-git-repo-check', '-']);
    expect(view).toMatchObject({
      status: 'completed',
      agent: 'codex',
      exitCode: 0,
      sessionId: start!.threadId,
      costUsd: null,
      tokens: { input: 1000, output: 300, cacheCreation: 0, cacheRead: 4000 },
      result: 'fake codex received: list the files',
    });
    const { lines } = await engine.tasks.logs(taskId);
    expect(lines).toEqual(['[tool] command ls -la', 'fake codex received: list the files']);
    expect((await engine.store.latestCheckpoint(taskId))?.sessionId).toBe(start!.threadId);
  });

  it('fails a task whose turn failed, with codex\'s message', async () => {
    const { taskId } = await engine.tasks.delegate({ prompt: 'break [fail]', agent: 'codex' });
    const [view] = await engine.settled([taskId]);
    expect(view).toMatchObject({ status: 'failed', exitCode: 1, error: 'agent reported an error: fake failure' });
  });

  it('resumes an interrupted run in the same thread with exec resume', async () => {
    const { taskId } = await engine.tasks.delegate({ prompt: 'long job [sleep_fresh 60000]', agent: 'codex' });
    // Interrupted once codex has reported its thread, so the next run can resume it.
    const threadId = await eventually(async () => (await engine.store.taskRuns(taskId))[0]?.sessionId);
    expect(threadId).toBe(codexStarts()[0]!.threadId);
    await engine.runner!.shutdown('test: interrupt the run');
    expect(await engine.store.getTask(taskId)).toMatchObject({ state: 'ready' });
    await engine.startRunner();
    const [view] = await engine.settled([taskId]);
    const second = codexStarts()[1]!;
    expect(second.argv).toEqual(['exec', '--json', '--dangerously-bypass-approvals-and-sandbox', '--skip-git-repo-check', 'resume', threadId, '-']);
    expect(second.history).toEqual(['long job [sleep_fresh 60000]']);
    expect(second.prompt).toContain('An earlier run of this task was interrupted');
    expect(view).toMatchObject({ status: 'completed', attempt: 2, sessionId: threadId });
  });

  it('refuses claude-only options when the task is submitted, with one line, writing nothing', async () => {
    await expect(engine.tasks.delegate({ prompt: 'x', agent: 'codex', allowedTools: ['Read'] })).rejects.toThrow(
      /^allowedTools\/disallowedTools: claude options that codex has no equivalent of; use permissionMode/,
    );
    await expect(engine.tasks.delegate({ prompt: 'x', agent: 'codex', maxBudgetUsd: 2 })).rejects.toThrow(/^maxBudgetUsd: codex reports no cost/);
    expect(await engine.store.listTasks({ limit: 10 })).toEqual([]);
  });
});

describe('shell agent on a runner', () => {
  let engine: EngineHarness;
  beforeEach(async () => {
    engine = await openEngine(dataDir);
  });
  afterEach(async () => {
    await engine.close();
  });

  it('runs the prompt as a command: stdout is the output, exit 0 completes', async () => {
    const { taskId } = await engine.tasks.delegate({ prompt: `node -e "console.log('one'); console.error('warn'); console.log(process.cwd())"`, agent: 'shell' });
    const [view] = await engine.settled([taskId]);
    expect(view).toMatchObject({ status: 'completed', exitCode: 0, result: `one\n${dataDir}` });
    const { lines } = await engine.tasks.logs(taskId, { stream: 'both' });
    expect(lines).toEqual(expect.arrayContaining(['one', dataDir, '[stderr] warn']));
  });

  it('fails with the exit code of a failing command', async () => {
    const { taskId } = await engine.tasks.delegate({ prompt: `node -e 'process.exit(3)'`, agent: 'shell' });
    const [view] = await engine.settled([taskId]);
    expect(view).toMatchObject({ status: 'failed', exitCode: 3 });
    expect(view!.error).toMatch(/exited with code 3/);
  });

  it('refuses a prompt that needs a shell when it is submitted, and fails a command that does not exist', async () => {
    await expect(engine.tasks.delegate({ prompt: 'echo hi | wc -l', agent: 'shell' })).rejects.toThrow("shell agent prompt: '|' is a shell operator");
    await expect(engine.schedules.create({ prompt: 'date > now.txt', agent: 'shell', cronExpression: '0 9 * * *' })).rejects.toThrow(
      "shell agent prompt: '>' is a shell operator",
    );
    const missing = await engine.tasks.delegate({ prompt: 'no-such-command-xyz --flag', agent: 'shell' });
    const [missingView] = await engine.settled([missing.taskId]);
    expect(missingView).toMatchObject({ status: 'failed', error: expect.stringContaining("shell agent: command 'no-such-command-xyz' not found on PATH") });
  });
});

describe('shell agent over MCP', () => {
  async function connect(extraEnv: Record<string, string>) {
    const config = loadConfig(testEnv(dataDir, { DELEGATE_AUTOSTART: '0', ...extraEnv }));
    const store = await openStore(config.databaseUrl);
    const tasks = new TaskService(store, config, systemClock, dataDir);
    const server = createMcpServer({
      tasks,
      schedules: new ScheduleService(store, config, systemClock, dataDir, tasks),
      usage: new UsageService(store, systemClock),
      ensureRunner: async () => ({ runner: 'disabled', note: 'No runner is up.' }),
      logger: createLogger('mcp', 'error', () => {}),
      allowShellAgent: config.allowShellAgent,
    });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = await connectedClient(clientSide);
    const call = async (name: string, args: Record<string, unknown>) => (await client.callTool({ name, arguments: args })) as CallToolResult;
    const close = async () => {
      await client.close();
      await store.close();
    };
    return { call, store, close };
  }

  const textOf = (result: CallToolResult) => (result.content[0] as { text: string }).text;
  const refusal = "agent 'shell': not allowed for MCP clients unless DELEGATE_ALLOW_SHELL_AGENT=1 is set in the server's environment";

  it('is refused without DELEGATE_ALLOW_SHELL_AGENT=1, in every tool that takes an agent, and nothing is written', async () => {
    const mcp = await connect({});
    try {
      for (const [tool, args] of [
        ['DelegateTask', { prompt: 'echo hi', agent: 'shell' }],
        ['CreatePipeline', { prompts: ['echo a', 'echo b'], agent: 'shell' }],
        ['ScheduleTask', { prompt: 'echo hi', agent: 'shell', cronExpression: '0 9 * * *' }],
      ] as const) {
        const result = await mcp.call(tool, args);
        expect(result.isError, tool).toBe(true);
        expect(textOf(result)).toBe(refusal);
      }
      expect(await mcp.store.listTasks({ limit: 10 })).toEqual([]);
      // Other agents are not affected.
      expect((await mcp.call('DelegateTask', { prompt: 'x', agent: 'codex' })).isError).toBeFalsy();
    } finally {
      await mcp.close();
    }
  });

  it('is accepted with DELEGATE_ALLOW_SHELL_AGENT=1', async () => {
    const mcp = await connect({ DELEGATE_ALLOW_SHELL_AGENT: '1' });
    try {
      const result = await mcp.call('DelegateTask', { prompt: 'echo hi', agent: 'shell' });
      expect(result.isError, textOf(result)).toBeFalsy();
      expect(result.structuredContent).toMatchObject({ status: 'ready', task: { agent: 'shell', prompt: 'echo hi' } });
    } finally {
      await mcp.close();
    }
  });
});
