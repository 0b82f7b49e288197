/**
 * The schedule front doors: the six MCP tools in-process (InMemoryTransport) and `delegate schedule …` as a real
 * CLI process. Bad input is one line naming the field, `isError: true` / exit 2, and nothing is written.
 */
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMcpServer } from '../adapters/mcp/server.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig } from '../engine/config.js';
import { createLogger } from '../engine/logger.js';
import { ScheduleService, type ScheduleDetail, type ScheduleView } from '../engine/schedule-service.js';
import { openStore, type Store } from '../engine/store/store.js';
import { TaskService } from '../engine/task-service.js';
import { UsageService } from '../engine/usage-service.js';
import { cli, removeDir, tempDir, testEnv } from './helpers.js';
import { connectedClient } from './mcp-client.js';

let dataDir: string;
let store: Store;
let client: Client;

beforeEach(async () => {
  dataDir = tempDir('delegate-sched-doors-');
  const config = loadConfig(testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
  store = await openStore(config.databaseUrl);
  const tasks = new TaskService(store, config, systemClock, dataDir);
  const server = createMcpServer({
    tasks,
    schedules: new ScheduleService(store, config, systemClock, dataDir, tasks),
    usage: new UsageService(store, systemClock),
    ensureRunner: async () => ({ runner: 'disabled', note: 'No runner is up.' }),
    logger: createLogger('mcp', 'error', () => {}),
  });
  const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
  await server.connect(serverSide);
  client = await connectedClient(clientSide);
});

afterEach(async () => {
  await client.close();
  await store.close();
  removeDir(dataDir);
});

async function call(name: string, args: Record<string, unknown>): Promise<CallToolResult> {
  return (await client.callTool({ name, arguments: args })) as CallToolResult;
}

const textOf = (result: CallToolResult) => (result.content[0] as { text: string }).text;

async function ok<T>(name: string, args: Record<string, unknown>): Promise<T> {
  const result = await call(name, args);
  expect(result.isError, textOf(result)).toBeFalsy();
  return result.structuredContent as T;
}

describe('schedule MCP tools', () => {
  it('create, list, get (next 5 runs), pause, resume, cancel', async () => {
    const created = await ok<{ scheduleId: string; nextRunAt: string; runner: string }>('ScheduleTask', {
      prompt: 'Backup database to S3',
      scheduleType: 'cron',
      cronExpression: '0 2 * * *',
      timezone: 'America/New_York',
      missedRunPolicy: 'catchup',
    });
    expect(created.scheduleId).toMatch(/^sched-[0-9a-f]{12}$/);
    expect(created.runner).toBe('disabled');
    // 2am in New York is 06:00 or 07:00 UTC, depending on DST.
    expect(created.nextRunAt).toMatch(/T0[67]:00:00\.000Z$/);
    const listed = await ok<{ schedules: ScheduleView[] }>('ListSchedules', { status: 'active' });
    expect(listed.schedules.map((schedule) => schedule.scheduleId)).toEqual([created.scheduleId]);
    const { schedule } = await ok<{ schedule: ScheduleDetail }>('GetSchedule', { scheduleId: created.scheduleId });
    expect(schedule.nextRuns).toHaveLength(5);
    expect(schedule.history).toEqual([]);
    expect((await ok<{ schedule: ScheduleView }>('PauseSchedule', { scheduleId: created.scheduleId })).schedule.status).toBe('paused');
    expect((await ok<{ schedules: ScheduleView[] }>('ListSchedules', { status: 'active' })).schedules).toEqual([]);
    expect((await ok<{ schedule: ScheduleView }>('ResumeSchedule', { scheduleId: created.scheduleId })).schedule.status).toBe('active');
    const cancelled = await ok<{ schedule: ScheduleView }>('CancelSchedule', { scheduleId: created.scheduleId, reason: 'moved to CI', cancelTasks: true });
    expect(cancelled.schedule).toMatchObject({ status: 'cancelled', cancelReason: 'moved to CI', nextRunAt: null });
    expect(await store.nextTimerDueAt()).toBeNull();
  });

  it('creates the one-time deploy of the reference README', async () => {
    const at = new Date(Date.now() + 86_400_000).toISOString().replace(/\.\d+Z$/, 'Z');
    const created = await ok<{ scheduleId: string; nextRunAt: string }>('ScheduleTask', { prompt: 'Deploy to production', scheduleType: 'one_time', scheduledAt: at });
    expect(Date.parse(created.nextRunAt)).toBe(Date.parse(at));
  });

  it('answers bad input with isError and one line naming the field, writing nothing', async () => {
    const cases: Array<[string, Record<string, unknown>, string]> = [
      ['ScheduleTask', { prompt: 'x', cronExpression: '61 * * * *' }, "cronExpression '61 * * * *': Invalid value for minute: 61"],
      ['ScheduleTask', { prompt: 'x', cronExpression: '0 2 * * *', timezone: 'Mars/Olympus' }, "timezone 'Mars/Olympus': expected an IANA time zone such as UTC or America/New_York"],
      ['ScheduleTask', { prompt: 'x', scheduledAt: '2020-01-01T00:00:00Z' }, 'expected a time in the future'],
      ['ScheduleTask', { prompt: 'x' }, 'cronExpression / scheduledAt: expected exactly one of them (cronExpression for cron, scheduledAt for one_time)'],
      ['ScheduleTask', { prompt: 'x', cronExpression: '0 2 * * *', missedRunPolicy: 'never' }, "missedRunPolicy 'never': expected skip, catchup or fail"],
      ['ScheduleTask', { prompt: 'x', cronExpression: '0 2 * * *', maxRuns: -1 }, 'maxRuns -1: expected a whole number of runs from 1 to 1000000'],
      ['ScheduleTask', { prompt: 'x', scheduleType: 'weekly', cronExpression: '0 2 * * *' }, "scheduleType 'weekly': expected cron or one_time"],
      ['GetSchedule', { scheduleId: 'sched-missing' }, "scheduleId 'sched-missing': no such schedule"],
      ['GetSchedule', { scheduleId: 'task-1' }, "scheduleId 'task-1': expected a schedule id like sched-1a2b3c4d5e6f"],
      ['ListSchedules', { status: 'sleeping' }, "status 'sleeping': expected active, paused, completed, cancelled or expired"],
      ['PauseSchedule', { scheduleId: 'sched-missing' }, "scheduleId 'sched-missing': no such schedule"],
    ];
    for (const [tool, args, message] of cases) {
      const result = await call(tool, args);
      expect({ tool, isError: result.isError }).toEqual({ tool, isError: true });
      expect(textOf(result)).toContain(message);
      expect(textOf(result)).not.toContain('\n');
    }
    expect(await store.listSchedules()).toEqual([]);
    expect(await store.nextTimerDueAt()).toBeNull();
  });
});

describe('delegate schedule (CLI)', () => {
  it('creates, shows and cancels a schedule; bad input exits 2 with one line and writes nothing', async () => {
    const env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', LOG_LEVEL: 'error' });
    const bad = await cli(['schedule', 'create', 'x', '--cron', '0 2 * *'], env, dataDir);
    expect(bad).toMatchObject({ code: 2, stdout: '' });
    expect(bad.stderr).toBe("delegate: cronExpression '0 2 * *': expected 5 fields (minute hour day-of-month month day-of-week), got 4\n");
    const badZone = await cli(['schedule', 'create', 'x', '--cron', '0 2 * * *', '--timezone', 'Nowhere/City', '--json'], env, dataDir);
    expect(badZone.code).toBe(2);
    expect(JSON.parse(badZone.stdout)).toEqual({ error: { code: 'invalid_input', message: "timezone 'Nowhere/City': expected an IANA time zone such as UTC or America/New_York" } });
    expect(await store.listSchedules()).toEqual([]);

    const created = await cli(['schedule', 'create', 'nightly', 'report', '--cron', '30 1 * * *', '--timezone', 'America/New_York', '--max-runs', '3', '--json'], env, dataDir);
    expect(created.code, created.stderr).toBe(0);
    const view = JSON.parse(created.stdout) as ScheduleView;
    expect(view).toMatchObject({ prompt: 'nightly report', maxRuns: 3, status: 'active', workingDirectory: dataDir });
    const got = await cli(['schedule', 'get', view.scheduleId], env, dataDir);
    expect(got.stdout).toContain('next runs: ');
    expect((await cli(['schedule', 'list'], env, dataDir)).stdout).toContain(view.scheduleId);
    expect((await cli(['schedule', 'pause', view.scheduleId], env, dataDir)).code).toBe(0);
    const again = await cli(['schedule', 'pause', view.scheduleId], env, dataDir);
    expect(again).toMatchObject({ code: 1, stderr: `delegate: schedule ${view.scheduleId} is paused; only an active schedule can be paused\n` });
    expect((await cli(['schedule', 'cancel', view.scheduleId, '--reason', 'done'], env, dataDir)).stdout).toContain('cancelled');
  });
});
