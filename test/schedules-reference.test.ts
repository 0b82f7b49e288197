/**
 * The schedule examples of the reference product's README, as its users would run them: through a real
 * `delegate mcp start` over stdio and the real CLI, with the runner they start, and the fake claude.
 * - One-time deploy: created for a few seconds ahead, it fires in real time and its task completes.
 * - Daily backup at 2am America/New_York with catchup: a real 2am cannot be waited for, so after the front door
 *   created it, a runner on a simulated clock (same database file) comes up after two missed nights, and the
 *   catchup runs once. (DST in New York is covered on the statechart's own clock in actors-schedule.test.ts.)
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import type { ScheduleDetail, ScheduleView } from '../engine/schedule-service.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { cli, cliBin, eventually, removeDir, tempDir, testEnv } from './helpers.js';
import { connectedClient } from './mcp-client.js';

let dataDir: string;
let env: NodeJS.ProcessEnv;
let client: Client | undefined;
let engine: EngineHarness | undefined;

beforeEach(() => {
  dataDir = tempDir('delegate-sched-ref-');
  env = testEnv(dataDir);
});

afterEach(async () => {
  await client?.close();
  client = undefined;
  await engine?.close();
  engine = undefined;
  await cli(['stop'], env);
  removeDir(dataDir);
});

async function connect(serverEnv: NodeJS.ProcessEnv): Promise<Client> {
  const transport = new StdioClientTransport({ command: process.execPath, args: [cliBin, 'mcp', 'start'], env: serverEnv as Record<string, string>, cwd: dataDir, stderr: 'ignore' });
  client = await connectedClient(transport);
  return client;
}

async function tool<T>(name: string, args: Record<string, unknown>): Promise<T> {
  const result = (await client!.callTool({ name, arguments: args })) as CallToolResult;
  expect(result.isError, JSON.stringify(result.content)).toBeFalsy();
  return result.structuredContent as T;
}

/** A time `ms` from now, whole seconds, as the README writes it. */
const isoIn = (ms: number) => new Date(Math.ceil((Date.now() + ms) / 1000) * 1000).toISOString().replace('.000Z', 'Z');

describe('the reference README schedule examples', () => {
  it('one-time deploy via MCP: the runner the server starts fires it and its task completes', async () => {
    await connect(env);
    const scheduledAt = isoIn(2000);
    const created = await tool<{ scheduleId: string; nextRunAt: string; runner: string }>('ScheduleTask', {
      prompt: 'Deploy to production',
      scheduleType: 'one_time',
      scheduledAt,
    });
    expect(created.runner).toMatch(/^(started|running|starting)$/);
    const done = await eventually(async () => {
      const { schedule } = await tool<{ schedule: ScheduleDetail }>('GetSchedule', { scheduleId: created.scheduleId });
      return schedule.status === 'completed' && schedule.history[0]?.taskStatus === 'completed' ? schedule : null;
    }, 30_000);
    expect(done.history).toEqual([expect.objectContaining({ scheduledFor: new Date(scheduledAt).toISOString(), outcome: 'started' })]);
    expect(Date.parse(done.history[0]!.firedAt)).toBeGreaterThanOrEqual(Date.parse(scheduledAt));
    const status = await tool<{ task: { prompt: string; status: string } }>('TaskStatus', { taskId: done.history[0]!.taskId });
    expect(status.task).toMatchObject({ prompt: 'Deploy to production', status: 'completed' });
  });

  it('one-time deploy via the CLI, then a chained report via --after: both fire in order', async () => {
    // Both are created before a runner is up, so the deploy cannot fire before the report follows it.
    const noRunner = { ...env, DELEGATE_AUTOSTART: '0' };
    const created = await cli(['schedule', 'create', 'Deploy', 'to', 'production', '--at', isoIn(1000), '--json'], noRunner, dataDir);
    expect(created.code, created.stderr).toBe(0);
    const deploy = JSON.parse(created.stdout) as ScheduleView;
    const chained = await cli(['schedule', 'create', 'Report', 'on', 'the', 'deploy', '--after', deploy.scheduleId], noRunner, dataDir);
    expect(chained.code, chained.stderr).toBe(0);
    expect((await cli(['serve', '--detach'], env, dataDir)).code).toBe(0);
    const reportId = chained.stdout.split('\n')[0]!;
    expect(chained.stdout).toContain(`once after ${deploy.scheduleId}'s next run`);
    const report = await eventually(async () => {
      const got = await cli(['schedule', 'get', reportId, '--json'], env, dataDir);
      const detail = JSON.parse(got.stdout) as ScheduleDetail;
      return detail.history[0]?.taskStatus === 'completed' ? detail : null;
    }, 30_000);
    const deployed = JSON.parse((await cli(['schedule', 'get', deploy.scheduleId, '--json'], env, dataDir)).stdout) as ScheduleDetail;
    expect(deployed).toMatchObject({ status: 'completed', history: [expect.objectContaining({ taskStatus: 'completed' })] });
    expect(report.status).toBe('completed');
    const text = await cli(['schedule', 'get', reportId], env, dataDir);
    expect(text.stdout).toContain(`started ${deployed.history[0]!.taskId}; ${report.history[0]!.taskId} runs after it`);
  });

  for (const door of ['MCP', 'CLI'] as const) {
    it(`daily backup at 2am America/New_York with catchup, created via ${door}: two missed nights run once`, async () => {
      const args = { prompt: 'Backup database to S3', scheduleType: 'cron', cronExpression: '0 2 * * *', timezone: 'America/New_York', missedRunPolicy: 'catchup' };
      const noRunner = { ...env, DELEGATE_AUTOSTART: '0' };
      let detail: ScheduleDetail;
      if (door === 'MCP') {
        await connect(noRunner);
        const { scheduleId } = await tool<{ scheduleId: string }>('ScheduleTask', args);
        detail = (await tool<{ schedule: ScheduleDetail }>('GetSchedule', { scheduleId })).schedule;
        await client!.close();
        client = undefined;
      } else {
        const created = await cli(
          ['schedule', 'create', args.prompt, '--cron', args.cronExpression, '--timezone', args.timezone, '--missed-run-policy', args.missedRunPolicy, '--json'],
          noRunner,
          dataDir,
        );
        expect(created.code, created.stderr).toBe(0);
        const { scheduleId } = JSON.parse(created.stdout) as ScheduleView;
        detail = JSON.parse((await cli(['schedule', 'get', scheduleId, '--json'], noRunner, dataDir)).stdout) as ScheduleDetail;
      }
      const slots = detail.nextRuns;
      // 2am in New York, whichever side of DST each night is on.
      for (const slot of slots) expect(new Date(slot).toLocaleString('en-US', { timeZone: 'America/New_York', hour: 'numeric', hour12: false })).toBe('02');
      // No runner was up for the next two nights: a runner comes up on a clock five hours after the second.
      const clock = new SimulatedClock();
      clock.set(Date.parse(slots[1]!) + 5 * 3_600_000);
      engine = await openEngine(dataDir, { clock, env: { DELEGATE_LEASE_MS: '600000', TASK_TIMEOUT: '86400000' } });
      const fired = await eventually(async () => {
        const now = await engine!.schedules.get(detail.scheduleId);
        return now.history[0]?.taskStatus === 'completed' ? now : null;
      });
      expect(fired.history).toEqual([expect.objectContaining({ scheduledFor: slots[1], outcome: 'catchup' })]);
      expect(fired.history[0]!.detail).toBe(`one catch-up run for 2 slot(s) from ${slots[0]}`);
      expect(fired.nextRunAt).toBe(slots[2]);
      expect((await engine.tasks.get(fired.history[0]!.taskId!)).prompt).toBe('Backup database to S3');
    });
  }
});
