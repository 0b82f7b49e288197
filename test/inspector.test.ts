/**
 * The statechart inspector (SPEC §11): its HTTP API and SSE stream, a history of 10,000 tasks paged, and the page
 * itself driven in headless Chromium against a real runner with the fake claude. The inspector reads through its
 * own connection, as `delegate inspect` does in its own process, so it sees the runner's commits the way it
 * would see a detached runner's.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import vm from 'node:vm';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { pageScript } from '../adapters/inspector/page.js';
import { startInspector, tokenHeader, type Inspector } from '../adapters/inspector/server.js';
import { statechartOf } from '../adapters/inspector/statechart.js';
import { taskMachine } from '../actors/task.machine.js';
import { workerSlotMachine } from '../actors/worker-slot.machine.js';
import { systemClock } from '../engine/clock.js';
import { EventBus, type EngineEvent } from '../engine/events.js';
import { createLogger } from '../engine/logger.js';
import { openStore, type NewTaskNode, type Store } from '../engine/store/store.js';
import { decideSubmit } from '../engine/task-steps.js';
import { newTaskId, TaskService } from '../engine/task-service.js';
import { openEngine, type EngineHarness } from './engine-harness.js';
import { cli, cliBin, eventually, removeDir, repoRoot, sqlOn, tempDir, testEnv } from './helpers.js';

const chromiumPath = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const haveChromium = existsSync(chromiumPath);
if (!haveChromium && !process.env.CI) console.warn(`inspector browser tests skipped: no Chromium at ${chromiumPath} (install Debian's chromium or set CHROMIUM_PATH)`);

/** The inspector over its own connection to a database, as `delegate inspect` runs it. */
interface InspectorUnderTest {
  inspector: Inspector;
  store: Store;
  tasks: TaskService;
  close(): Promise<void>;
}

async function openInspector(harnessOrDir: EngineHarness | string): Promise<InspectorUnderTest> {
  const dataDir = typeof harnessOrDir === 'string' ? harnessOrDir : harnessOrDir.config.dataDir;
  const config = typeof harnessOrDir === 'string' ? (await import('../engine/config.js')).loadConfig({ DELEGATE_DATA_DIR: dataDir }) : harnessOrDir.config;
  const store = await openStore(config.databaseUrl);
  const bus = new EventBus();
  const tasks = new TaskService(store, config, systemClock, dataDir, { bus });
  const inspector = await startInspector({ store, tasks, clock: systemClock, log: createLogger('inspector', 'warn'), bus });
  return {
    inspector,
    store,
    tasks,
    async close() {
      await inspector.close();
      await store.close();
    },
  };
}

/** A GET or POST to the inspector, with the token in the header unless `token: null`. */
function request(inspector: Inspector, pathAndQuery: string, options: { token?: string | null; method?: string; body?: string } = {}): Promise<Response> {
  const token = options.token === undefined ? inspector.token : options.token;
  return fetch(`http://127.0.0.1:${inspector.port}${pathAndQuery}`, {
    method: options.method ?? 'GET',
    headers: token === null ? {} : { [tokenHeader]: token },
    ...(options.body !== undefined ? { body: options.body } : {}),
  });
}

describe('statecharts from the machine definitions', () => {
  it('lists the task states and its transitions, guarded variants merged', () => {
    const chart = statechartOf(taskMachine);
    expect(chart.root.children.map((state) => state.key)).toEqual(['queued', 'waiting', 'ready', 'running', 'paused', 'completed', 'failed', 'cancelled']);
    expect(chart.root.initial).toBe('task.queued');
    expect(chart.edges).toContainEqual({ source: 'task.ready', target: 'task.running', event: 'CLAIM' });
    expect(chart.edges.filter((edge) => edge.source === 'task.running' && edge.target === 'task.failed' && edge.event === 'LEASE_LOST')).toHaveLength(1);
  });

  it('keeps nested states, so a slot busy inside active can be highlighted', () => {
    const chart = statechartOf(workerSlotMachine);
    const active = chart.root.children.find((state) => state.key === 'active')!;
    expect(active.children.map((state) => state.id)).toContain('workerSlot.active.busy');
  });

  it('ships a page script that parses', () => {
    expect(() => new vm.Script(pageScript)).not.toThrow();
  });
});

describe('inspector HTTP API', () => {
  let dataDir: string;
  let engine: EngineHarness;
  let under: InspectorUnderTest;

  beforeEach(async () => {
    dataDir = tempDir();
    engine = await openEngine(dataDir, { env: { DELEGATE_MAX_WORKERS: '2' } });
    under = await openInspector(engine);
  });

  afterEach(async () => {
    await under.close();
    await engine.close();
    removeDir(dataDir);
  });

  it('refuses requests without the token, and a cancel with the token only in the URL', async () => {
    const { inspector } = under;
    expect(inspector.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[0-9a-f]{48}$/);
    for (const url of ['/', '/app.js', '/api/live', '/api/stream', '/api/history']) {
      const response = await request(inspector, url, { token: null });
      expect(response.status, url).toBe(401);
      expect(((await response.json()) as { error: { code: string } }).error.code).toBe('unauthorized');
    }
    expect((await request(inspector, '/api/live', { token: 'f'.repeat(48) })).status).toBe(401);
    expect((await request(inspector, `/?token=${inspector.token}`, { token: null })).status).toBe(200);
    const task = await engine.tasks.delegate({ prompt: '[sleep 20000] stays running' });
    const viaQuery = await request(inspector, `/api/tasks/${task.taskId}/cancel?token=${inspector.token}`, { token: null, method: 'POST' });
    expect(viaQuery.status).toBe(403);
    expect((await request(inspector, `/api/tasks/${task.taskId}/cancel`, { method: 'GET' })).status).toBe(405);
    expect((await engine.tasks.get(task.taskId)).status).not.toBe('cancelled');
    const cancelled = await request(inspector, `/api/tasks/${task.taskId}/cancel`, { method: 'POST', body: '{"reason":"test"}' });
    expect(cancelled.status).toBe(200);
    expect((await engine.tasks.get(task.taskId)).status).toBe('cancelled');
    const again = await request(inspector, `/api/tasks/${task.taskId}/cancel`, { method: 'POST' });
    expect(again.status).toBe(409);
  });

  it('streams every committed step as Server-Sent Events, runner and front door alike', async () => {
    const { inspector } = under;
    const response = await request(inspector, '/api/stream');
    expect(response.headers.get('content-type')).toContain('text/event-stream');
    const reader = response.body!.getReader();
    const decoder = new TextDecoder();
    const seen: EngineEvent[] = [];
    let buffered = '';
    const task = await engine.tasks.delegate({ prompt: '[sleep 200] streamed' });
    try {
      while (!seen.some((event) => event.actorId === task.taskId && event.type === 'task:completed')) {
        const { value, done } = await reader.read();
        if (done) throw new Error('the stream ended');
        buffered += decoder.decode(value, { stream: true });
        const frames = buffered.split('\n\n');
        buffered = frames.pop()!;
        for (const frame of frames) {
          const data = frame.split('\n').find((line) => line.startsWith('data: '));
          if (frame.includes('event: events') && data) seen.push(...(JSON.parse(data.slice('data: '.length)) as EngineEvent[]));
        }
      }
    } finally {
      await reader.cancel();
    }
    const ofTask = seen.filter((event) => event.actorId === task.taskId).map((event) => event.type);
    expect(ofTask).toEqual(['task:ready', 'task:running', 'task:completed']);
    // The runner's slots are node-local actors: their events come through the same table.
    expect(seen.some((event) => event.kind === 'slot' && event.detail === task.taskId)).toBe(true);
    const live = (await (await request(inspector, '/api/live')).json()) as { nodes: Array<{ id: string }>; actors: Array<{ kind: string; id: string }> };
    expect(live.nodes.map((node) => node.id)).toEqual([engine.runner!.nodeId]);
    expect(live.actors.some((actor) => actor.kind === 'supervisor')).toBe(true);
    expect(live.actors.some((actor) => actor.kind === 'slot')).toBe(true);
  });
});

describe('delegate inspect', () => {
  let dataDir: string;
  beforeEach(() => {
    dataDir = tempDir();
  });
  afterEach(() => removeDir(dataDir));

  it('prints its URL, serves it with the token only, and stops on SIGINT', async () => {
    const child = spawn(process.execPath, [cliBin, 'inspect', '--json'], { env: testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }), stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    const shown = await eventually(() => (stdout.includes('}') ? (JSON.parse(stdout) as { url: string; port: number; token: string }) : null));
    expect(shown.url).toBe(`http://127.0.0.1:${shown.port}/?token=${shown.token}`);
    expect((await fetch(shown.url)).status).toBe(200);
    expect((await fetch(`http://127.0.0.1:${shown.port}/api/live`)).status).toBe(401);
    child.kill('SIGINT');
    expect(await exited).toBe(0);
  });

  it('says how to get @statelyai/inspect when --stately cannot load it', async () => {
    const result = await cli(['inspect', '--stately'], testEnv(dataDir, { DELEGATE_AUTOSTART: '0' }));
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--stately: the @statelyai/inspect package is not installed');
  });
});

describe('inspector on 10,000 tasks', () => {
  let dataDir: string;
  let under: InspectorUnderTest;

  beforeAll(async () => {
    dataDir = tempDir();
    // No runner: the tasks stay where the test puts them.
    const store = await openStore(`file:${path.join(dataDir, 'delegate.db')}`);
    const nodes: NewTaskNode[] = [];
    for (let i = 0; i < 10_000; i++) {
      nodes.push({
        dependsOn: [],
        task: {
          id: newTaskId(), prompt: `bulk task ${i}`, priority: 'P2', agent: 'claude', model: null, permissionMode: null, allowedTools: [], disallowedTools: [],
          workingDirectory: dataDir, timeoutMs: 60_000, maxOutputBuffer: 1_000_000, maxBudgetUsd: null, worktree: false, continueFrom: null,
          parentTaskId: null, retryOf: null, startDelayMs: 0, additionalContext: null, forkSessionId: null,
        },
      });
    }
    await store.insertTaskGraph(nodes, 1_000_000, (task, pending, failed) => decideSubmit(task, pending, failed, 1_000_000));
    await store.close();
    under = await openInspector(dataDir);
  });

  afterAll(async () => {
    await under?.close();
    removeDir(dataDir);
  });

  it('lists a bounded number of live tasks and counts the rest', async () => {
    const live = (await (await request(under.inspector, '/api/live')).json()) as { unfinishedTasks: number; actors: Array<{ kind: string }> };
    expect(live.unfinishedTasks).toBe(10_000);
    expect(live.actors.filter((actor) => actor.kind === 'task').length).toBe(300);
  });

  it('pages the finished tasks by cursor, without gaps or repeats', async () => {
    await sqlOn(dataDir, `UPDATE tasks SET state = 'completed', started_at = created_at, ended_at = created_at + 1500, cost_usd = 0.01`);
    type Page = { rows: Array<{ id: string; state: string; durationMs: number; costUsd: number }>; next: string | null };
    const first = (await (await request(under.inspector, '/api/history?limit=50')).json()) as Page;
    expect(first.rows).toHaveLength(50);
    expect(first.rows[0]).toMatchObject({ state: 'completed', durationMs: 1500, costUsd: 0.01 });
    const second = (await (await request(under.inspector, `/api/history?limit=50&after=${encodeURIComponent(first.next!)}`)).json()) as Page;
    expect(second.rows).toHaveLength(50);
    const ids = new Set([...first.rows, ...second.rows].map((row) => row.id));
    expect(ids.size).toBe(100);
    const live = (await (await request(under.inspector, '/api/live')).json()) as { unfinishedTasks: number };
    expect(live.unfinishedTasks).toBe(0);
    expect((await request(under.inspector, '/api/history?after=bogus')).status).toBe(400);
  });
});

describe.skipIf(!haveChromium && !process.env.CI)('inspector page in headless Chromium', () => {
  let dataDir: string;
  let engine: EngineHarness;
  let under: InspectorUnderTest;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    if (!haveChromium) throw new Error(`no Chromium at ${chromiumPath}: CI must install Debian's chromium (or set CHROMIUM_PATH)`);
    const { chromium } = await import('playwright-core');
    // CI runs as root, where Chromium's sandbox cannot start.
    browser = await chromium.launch({ executablePath: chromiumPath, args: ['--no-sandbox'] });
  });

  afterAll(async () => {
    await browser?.close();
  });

  beforeEach(async () => {
    dataDir = tempDir();
    engine = await openEngine(dataDir, { env: { DELEGATE_MAX_WORKERS: '3' } });
    under = await openInspector(engine);
    page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  });

  afterEach(async () => {
    await page?.close();
    await under.close();
    await engine.close();
    removeDir(dataDir);
  });

  it('shows a task appear, run and complete live, with its statechart, its graph and its history row', async () => {
    const pageErrors: string[] = [];
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(under.inspector.url);
    await page.waitForSelector('#connection[data-connected="true"]');
    // Set once: still there at the end means the page never reloaded.
    await page.evaluate(() => ((globalThis as unknown as { loadedOnce: boolean }).loadedOnce = true));

    const first = await engine.tasks.delegate({ prompt: '[sleep 1500] first step' });
    const second = await engine.tasks.delegate({ prompt: '[sleep 200] second step', dependsOn: [first.taskId] });
    const row = page.locator(`li.actor[data-actor-id="${first.taskId}"]`);
    await row.waitFor();
    await page.locator(`li.actor[data-actor-id="${first.taskId}"][data-state="running"]`).waitFor();
    await row.click();
    await page.locator('#detail [data-field="state"]', { hasText: 'running' }).first().waitFor();
    await page.locator('#statechart g.state.current[data-state-id="task.running"]').waitFor();
    // A straight edge has an empty bounding box, which Playwright calls hidden: attached is what counts.
    await page.locator(`path.dag-edge[data-from="${first.taskId}"][data-to="${second.taskId}"]`).waitFor({ state: 'attached' });
    await page.locator('#events td', { hasText: 'task:running' }).first().waitFor();

    await page.locator('#detail h2 [data-field="state"]', { hasText: 'completed' }).waitFor({ timeout: 20_000 });
    await page.locator('#statechart g.state.current[data-state-id="task.completed"]').waitFor();
    expect(await page.locator('#statechart g.state.current').count()).toBe(1);
    await page.locator(`#history-table tr[data-task-id="${first.taskId}"][data-state="completed"]`).waitFor();
    // The dependency's edge turns from waiting to done as it completes.
    await page.locator(`path.dag-edge[data-from="${first.taskId}"][data-state="completed"]`).waitFor({ state: 'attached' });
    await page.locator(`li.actor[data-kind="slot"]`).first().waitFor();
    expect(await page.evaluate(() => (globalThis as unknown as { loadedOnce?: boolean }).loadedOnce)).toBe(true);

    await engine.settled([second.taskId]);
    mkdirSync(path.join(repoRoot, 'test-artifacts'), { recursive: true });
    await page.locator(`#history-table tr[data-task-id="${second.taskId}"]`).waitFor();
    await page.screenshot({ path: path.join(repoRoot, 'test-artifacts', 'inspector.png'), fullPage: true });
    // A node-local actor of the runner: its statechart comes from its snapshot, its events from the same table.
    await page.locator('li.actor[data-kind="supervisor"]').click();
    await page.locator('#statechart svg[data-machine="supervisor"] g.state.current[data-state-id="supervisor.running"]').waitFor();
    await page.locator('li.actor[data-kind="slot"]').first().click();
    await page.locator('#statechart svg[data-machine="workerSlot"] g.state.current').first().waitFor();
    await page.locator('#events td', { hasText: 'slot:busy' }).first().waitFor();
    await page.screenshot({ path: path.join(repoRoot, 'test-artifacts', 'inspector-slot.png'), fullPage: true });
    expect(pageErrors).toEqual([]);
  });

  it('cancels a running task with its Cancel button, and retries it with Retry', async () => {
    const task = await engine.tasks.delegate({ prompt: '[sleep 30000] long task' });
    await eventually(async () => (await engine.tasks.get(task.taskId)).status === 'running');
    await page.goto(`${under.inspector.url}#task/${task.taskId}`);
    await page.locator('#statechart g.state.current[data-state-id="task.running"]').waitFor();
    await page.locator('#cancel:not([disabled])').click();
    await page.locator('#detail h2 [data-field="state"]', { hasText: 'cancelled' }).waitFor();
    const cancelled = await engine.tasks.get(task.taskId);
    expect(cancelled).toMatchObject({ status: 'cancelled', cancelReason: 'cancelled from the inspector' });
    await page.locator('#retry:not([disabled])').click();
    await eventually(async () => (await engine.store.listTasks({ limit: 5 })).find((other) => other.retryOf === task.taskId));
  });

  it('answers a page request without the token with 401', async () => {
    const response = await page.goto(`http://127.0.0.1:${under.inspector.port}/`);
    expect(response?.status()).toBe(401);
  });
});
