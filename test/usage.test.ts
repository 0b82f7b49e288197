/**
 * Cost and tokens (issue 12): what each run reports is recorded on its run row and summed on its task over every
 * attempt; `delegate usage` and the engine's UsageService sum runs per day (in a time zone), agent and schedule;
 * migration 4 upgrades a v3 database file and carries its JSON usage into the new columns. Real database files,
 * real runners and the fake claude.
 */
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { SimulatedClock } from 'xstate';
import { systemClock } from '../engine/clock.js';
import { migrations } from '../engine/store/migrations.js';
import { openStore } from '../engine/store/store.js';
import { UsageService, type UsageSummary } from '../engine/usage-service.js';
import { formatTaskDetail } from '../adapters/cli/format.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { cli, removeDir, sqlOn, tempDir, testEnv } from './helpers.js';

let dataDir: string;

beforeEach(() => {
  dataDir = tempDir('delegate-usage-');
});

afterEach(() => {
  removeDir(dataDir);
});

/** Run tasks to their end on `engine`; returns their ids. */
async function runTasks(engine: EngineHarness, prompts: Array<{ prompt: string; agent?: string }>): Promise<string[]> {
  const ids: string[] = [];
  for (const input of prompts) ids.push((await engine.tasks.delegate(input)).taskId);
  await engine.settled(ids);
  return ids;
}

describe('recording', () => {
  it('records cost, tokens, turns and model per run and sums them on the task over both attempts', async () => {
    // A simulated clock, so the pause (reset plus a margin) is over when the test says so.
    const clock = new SimulatedClock();
    clock.set(Date.now());
    const engine = await openEngine(dataDir, { clock, env: { DELEGATE_LEASE_MS: '600000' } });
    try {
      // A usage limit ends each run with a result that cost money; the task pauses and runs again (attempt 2).
      const resetSeconds = Math.ceil(clock.now() / 1000) + 1;
      const pausedAt = (attempt: number) => engine.nextEvent((event) => event.type === 'task:paused' && event.attempt === attempt);
      const firstPause = pausedAt(1);
      const { taskId } = await engine.tasks.delegate({
        prompt: `limited [usage_limit ${resetSeconds}] [cost 0.25] [tokens 100 20 300 4000] [model claude-opus-4-1-20250805]`,
        model: 'opus',
      });
      await firstPause;
      let resumed = false;
      const secondPause = pausedAt(2).finally(() => (resumed = true));
      // Time moves on in steps, with real time between them for the runner's I/O, until the second run paused.
      for (let step = 0; step < 60 && !resumed; step++) {
        clock.increment(10_000);
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      await secondPause;
      const runs = await engine.store.taskRuns(taskId);
      expect(runs).toHaveLength(2);
      for (const run of runs) {
        expect(run).toMatchObject({
          costUsd: 0.25,
          numTurns: 1,
          tokens: { input: 100, output: 20, cacheCreation: 300, cacheRead: 4000 },
          model: 'claude-opus-4-1-20250805',
        });
      }
      const view = await engine.tasks.get(taskId);
      expect(view).toMatchObject({
        status: 'paused',
        attempt: 2,
        costUsd: 0.5,
        numTurns: 2,
        tokens: { input: 200, output: 40, cacheCreation: 600, cacheRead: 8000 },
        // What the agent reported, not the alias the task asked for.
        model: 'claude-opus-4-1-20250805',
      });
      const detail = formatTaskDetail(view);
      expect(detail).toContain('cost:        $0.5000');
      expect(detail).toContain('tokens:      200 in, 40 out, 600 cache write, 8,000 cache read');
      expect(detail).toContain('model:       claude-opus-4-1-20250805');
      // The longest label keeps a space before its value too.
      expect(detail).toContain('permissions: bypassPermissions');
      // Cancelling it records no run of its own: the sums stay.
      await engine.tasks.cancel(taskId);
      expect(await engine.tasks.get(taskId)).toMatchObject({ status: 'cancelled', costUsd: 0.5, tokens: { cacheRead: 8000 } });
      const usage = await new UsageService(engine.store, systemClock).summary({});
      expect(usage.total).toEqual({ costUsd: 0.5, turns: 2, runs: 2, tokens: { input: 200, output: 40, cacheCreation: 600, cacheRead: 8000 } });
    } finally {
      await engine.close();
    }
  });

  it('a task with no run yet has no tokens; its model is the one it asked for', async () => {
    const engine = await openEngine(dataDir, { startRunner: false });
    try {
      const view = await engine.tasks.delegate({ prompt: 'later', model: 'sonnet' });
      expect(view).toMatchObject({ costUsd: null, tokens: null, numTurns: null, model: 'sonnet' });
    } finally {
      await engine.close();
    }
  });
});

describe('summaries', () => {
  /**
   * Four finished runs: two of claude (one of them a schedule's task), one of claude on another day, one of the
   * demo agent. Their end times are set so the days differ by time zone: UTC, New York (−5) and Kolkata (+5:30).
   */
  async function fourRuns(): Promise<{ engine: EngineHarness; ids: string[] }> {
    const engine = await openEngine(dataDir);
    const ids = await runTasks(engine, [
      { prompt: 'a [cost 0.1] [tokens 10 1 100 1000]' },
      { prompt: 'b [cost 0.2] [tokens 20 2 200 2000]' },
      { prompt: 'c [cost 0.4] [tokens 40 4 400 4000]' },
      { prompt: 'd', agent: 'demo' },
    ]);
    const endedAt = ['2026-11-29T18:15:00Z', '2026-11-29T18:30:00Z', '2026-11-30T12:00:00Z', '2026-11-30T12:10:00Z'];
    for (const [index, id] of ids.entries()) await sqlOn(dataDir, 'UPDATE task_runs SET ended_at = ? WHERE task_id = ?', Date.parse(endedAt[index]!), id);
    await sqlOn(dataDir, `UPDATE tasks SET schedule_id = 'sched-nightly' WHERE id = ?`, ids[1]!);
    return { engine, ids };
  }

  const tokens = (input: number, output: number, cacheCreation: number, cacheRead: number) => ({ input, output, cacheCreation, cacheRead });

  it('sums per day in the given time zone (half-hour offsets too), per agent and per schedule', async () => {
    const { engine } = await fourRuns();
    try {
      const summary = (timeZone: string, query: Record<string, unknown>): Promise<UsageSummary> => new UsageService(engine.store, systemClock, timeZone).summary(query);
      const days = async (timeZone: string) => (await summary(timeZone, { by: 'day' })).groups.map((group) => [group.key, group.costUsd, group.runs]);
      expect(await days('UTC')).toEqual([
        ['2026-11-29', 0.3, 2],
        ['2026-11-30', 0.4, 2],
      ]);
      expect(await days('America/New_York')).toEqual([
        ['2026-11-29', 0.3, 2],
        ['2026-11-30', 0.4, 2],
      ]);
      // 18:15Z is 23:45 in Kolkata, 18:30Z already the next day.
      expect(await days('Asia/Kolkata')).toEqual([
        ['2026-11-29', 0.1, 1],
        ['2026-11-30', 0.6, 3],
      ]);
      const byDay = await summary('Asia/Kolkata', { by: 'day' });
      expect(byDay).toMatchObject({ by: 'day', since: null, timeZone: 'Asia/Kolkata' });
      expect(byDay.total).toEqual({ costUsd: 0.7, turns: 4, runs: 4, tokens: tokens(70, 7, 700, 7000) });

      const byAgent = await summary('UTC', { by: 'agent' });
      expect(byAgent.groups).toEqual([
        { key: 'claude', costUsd: 0.7, turns: 3, runs: 3, tokens: tokens(70, 7, 700, 7000) },
        { key: 'demo', costUsd: 0, turns: 1, runs: 1, tokens: tokens(0, 0, 0, 0) },
      ]);
      const bySchedule = await summary('UTC', { by: 'schedule' });
      expect(bySchedule.groups.map((group) => [group.key, group.costUsd])).toEqual([
        [null, 0.5],
        ['sched-nightly', 0.2],
      ]);

      const since = await summary('UTC', { since: '2026-11-30T00:00:00Z', by: 'agent' });
      expect(since.since).toBe('2026-11-30T00:00:00.000Z');
      expect(since.total).toMatchObject({ costUsd: 0.4, runs: 2 });
      // A duration counts back from now: these runs ended in the test's future or past, by the clock.
      const recent = await summary('UTC', { since: '1h' });
      expect(Date.parse(recent.since!)).toBeGreaterThan(Date.now() - 3_700_000);
    } finally {
      await engine.close();
    }
  });

  it('refuses a bad by or since with one line naming the field and what is allowed', async () => {
    const store = await openStore(`file:${path.join(dataDir, 'delegate.db')}`);
    try {
      const usage = new UsageService(store, systemClock);
      await expect(usage.summary({ by: 'week' })).rejects.toThrow(/^by 'week': expected day, agent or schedule$/);
      await expect(usage.summary({ since: 'yesterday' })).rejects.toThrow(
        /^since 'yesterday': expected an ISO 8601 time \(2026-11-30T09:00:00Z\) or a duration ago like 90m, 12h or 7d$/,
      );
      await expect(usage.summary({ since: 7 })).rejects.toThrow(/^since 7: expected an ISO 8601 time/);
    } finally {
      await store.close();
    }
  });

  it('delegate usage prints a table or one JSON document; bad --by or --since exits 2 with one line', async () => {
    const { engine } = await fourRuns();
    await engine.close();
    const env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', TZ: 'Asia/Kolkata' });

    const byDay = await cli(['usage', '--by', 'day', '--json'], env);
    expect(byDay.code, byDay.stderr).toBe(0);
    const summary = JSON.parse(byDay.stdout) as UsageSummary;
    // ICU may name the zone by its older alias.
    expect(summary).toMatchObject({ by: 'day', timeZone: expect.stringMatching(/^Asia\/(Kolkata|Calcutta)$/), total: { costUsd: 0.7, runs: 4 } });
    expect(summary.groups.map((group) => group.key)).toEqual(['2026-11-29', '2026-11-30']);

    const bySchedule = await cli(['usage', '--by', 'schedule', '--since', '2026-11-01'], env);
    expect(bySchedule.code, bySchedule.stderr).toBe(0);
    const lines = bySchedule.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('Usage of runs that ended since 2026-11-01T00:00:00.000Z');
    expect(lines[1]).toMatch(/^SCHEDULE\s+COST\s+INPUT\s+OUTPUT\s+CACHE WRITE\s+CACHE READ\s+TURNS\s+RUNS$/);
    expect(lines[2]).toMatch(/^\(no schedule\)\s+\$0\.5000\s+50\s+5\s+500\s+5,000\s+3\s+3$/);
    expect(lines[3]).toMatch(/^sched-nightly\s+\$0\.2000\s+20\s+2\s+200\s+2,000\s+1\s+1$/);
    expect(lines[4]).toMatch(/^total\s+\$0\.7000\s+70\s+7\s+700\s+7,000\s+4\s+4$/);

    const total = await cli(['usage'], env);
    expect(total.stdout).toContain('Usage of all runs on record');

    const week = await cli(['usage', '--by', 'week'], env);
    expect(week).toEqual({ code: 2, stdout: '', stderr: "delegate: --by 'week': expected day, agent or schedule\n" });
    const since = await cli(['usage', '--since', 'last tuesday', '--json'], env);
    expect(since.code).toBe(2);
    expect(since.stderr).toBe("delegate: --since 'last tuesday': expected an ISO 8601 time (2026-11-30T09:00:00Z) or a duration ago like 90m, 12h or 7d\n");
    expect(JSON.parse(since.stdout)).toEqual({ error: { code: 'invalid_input', message: expect.stringContaining("--since 'last tuesday'") } });
  });
});

describe('migration 4', () => {
  it('upgrades a v3 database file: the JSON usage goes to the run it described, the task sums its runs', async () => {
    const file = path.join(dataDir, 'delegate.db');
    const { default: Database } = await import('libsql');
    const db = new Database(file);
    db.exec('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)');
    for (const [index, statements] of migrations.slice(0, 3).entries()) {
      for (const statement of statements) db.exec(statement);
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(index + 1, 0);
    }
    const insertTask = db.prepare(
      `INSERT INTO tasks (id, prompt, priority, state, snapshot, agent, model, working_directory, timeout_ms, max_output_buffer,
                          attempt, cost_usd, num_turns, usage, created_at, updated_at)
       VALUES (?, 'old', 2, 'completed', '{}', 'claude', ?, '/tmp', 1000, 1024, ?, ?, ?, ?, 0, 0)`,
    );
    const insertRun = db.prepare(
      `INSERT INTO task_runs (task_id, attempt, node_id, host, log_path, started_at, ended_at, outcome, cost_usd)
       VALUES (?, ?, 'node-old', 'host', '/dev/null', 0, ?, 'exited', ?)`,
    );
    // Two attempts; the task's cost and usage were its last run's.
    const usage = { input_tokens: 7, output_tokens: 8, cache_creation_input_tokens: 9, cache_read_input_tokens: 10, service_tier: 'standard' };
    insertTask.run('task-0000000000a1', 'opus', 2, 0.2, 4, JSON.stringify(usage));
    insertRun.run('task-0000000000a1', 1, Date.parse('2026-11-28T10:00:00Z'), 0.1);
    insertRun.run('task-0000000000a1', 2, Date.parse('2026-11-29T10:00:00Z'), 0.2);
    // One that never reported usage, and one whose usage is not JSON.
    insertTask.run('task-0000000000a2', null, 1, 0.05, 1, null);
    insertRun.run('task-0000000000a2', 1, Date.parse('2026-11-29T11:00:00Z'), 0.05);
    insertTask.run('task-0000000000a3', null, 0, null, null, 'not json');
    db.close();

    const store = await openStore(`file:${file}`);
    try {
      const upgraded = await store.getTask('task-0000000000a1');
      expect(upgraded!.costUsd).toBeCloseTo(0.3, 9);
      expect(upgraded).toMatchObject({ numTurns: 4, tokens: { input: 7, output: 8, cacheCreation: 9, cacheRead: 10 }, model: 'opus', modelUsed: null });
      const runs = await store.taskRuns('task-0000000000a1');
      expect(runs[0]).toMatchObject({ attempt: 1, costUsd: 0.1, tokens: null, numTurns: null, model: 'opus' });
      expect(runs[1]).toMatchObject({ attempt: 2, costUsd: 0.2, tokens: { input: 7, output: 8, cacheCreation: 9, cacheRead: 10 }, numTurns: 4, model: 'opus' });
      expect(await store.getTask('task-0000000000a2')).toMatchObject({ costUsd: 0.05, numTurns: 1, tokens: null });
      expect(await store.getTask('task-0000000000a3')).toMatchObject({ costUsd: null, numTurns: null, tokens: null });
      const summary = await new UsageService(store, systemClock, 'UTC').summary({ by: 'day' });
      expect(summary.groups.map((group) => [group.key, group.costUsd, group.runs])).toEqual([
        ['2026-11-28', 0.1, 1],
        ['2026-11-29', 0.25, 2],
      ]);
    } finally {
      await store.close();
    }
    const reopened = new Database(file);
    try {
      const columns = (reopened.prepare('PRAGMA table_info(tasks)').all() as Array<{ name: string }>).map((column) => column.name);
      expect(columns).not.toContain('usage');
      expect(columns).toEqual(expect.arrayContaining(['input_tokens', 'output_tokens', 'cache_creation_tokens', 'cache_read_tokens', 'model_used']));
      const plan = reopened.prepare('EXPLAIN QUERY PLAN SELECT COUNT(*) FROM task_runs r WHERE r.ended_at >= ?').all(0) as Array<{ detail: string }>;
      expect(plan.map((step) => step.detail).join(' ')).toContain('task_runs_ended');
    } finally {
      reopened.close();
    }
  });
});
