/**
 * Notifications end to end (SPEC §12): a runner started on demand announces task ends and usage-limit pauses to a
 * webhook (a local HTTP server, failing twice before it accepts) and to a command (which writes its stdin to a
 * file); a front door that commits a cancel announces it itself. Real processes, the fake claude, no network.
 */
import { existsSync, readFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { cli, deferred, eventually, removeDir, stopRunners, tempDir, testEnv } from './helpers.js';
import type { TaskNotice } from '../engine/notifier.js';

let dataDir: string;
const servers: http.Server[] = [];
const envs: NodeJS.ProcessEnv[] = [];

beforeEach(() => {
  dataDir = tempDir();
});

afterEach(async () => {
  await Promise.all(envs.splice(0).map((env) => stopRunners(env)));
  await Promise.all(servers.splice(0).map((server) => new Promise((resolve) => server.close(resolve))));
  removeDir(dataDir);
});

function envWith(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = testEnv(dataDir, extra);
  envs.push(env);
  return env;
}

/** One request the webhook received. */
interface Received {
  url: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: TaskNotice;
}

/** A local webhook answering each request with the next status of `statuses` (the last one repeats). */
async function webhook(statuses: number[]): Promise<{ port: number; received: Received[]; accepted: Promise<Received> }> {
  const received: Received[] = [];
  const accepted = deferred<Received>();
  const server = http.createServer((request, response) => {
    let body = '';
    request.on('data', (chunk: Buffer) => (body += chunk.toString()));
    request.on('end', () => {
      const status = statuses[Math.min(received.length, statuses.length - 1)]!;
      const entry = { url: request.url ?? '', authorization: request.headers.authorization, contentType: request.headers['content-type'], body: JSON.parse(body) as TaskNotice };
      received.push(entry);
      response.statusCode = status;
      response.end();
      if (status === 200) accepted.resolve(entry);
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { port: (server.address() as AddressInfo).port, received, accepted: accepted.promise };
}

/** A DELEGATE_NOTIFY_COMMAND that writes its stdin to `file` and its DELEGATE_* variables to `file.env`. */
function recordingCommand(file: string): string {
  return JSON.stringify(['sh', '-c', 'cat > "$1.tmp"; echo "$DELEGATE_EVENT $DELEGATE_TASK_ID $DELEGATE_TASK_STATUS" > "$1.env"; mv "$1.tmp" "$1"', 'notify', file]);
}

async function submit(env: NodeJS.ProcessEnv, prompt: string): Promise<string> {
  const result = await cli(['delegate', prompt], env);
  expect(result.code, result.stderr).toBe(0);
  return result.stdout.trim();
}

describe('DELEGATE_NOTIFY_WEBHOOK', () => {
  it('POSTs a failed task as JSON, retries a failing endpoint with backoff, and never logs the URL’s secrets', async () => {
    const hook = await webhook([500, 500, 200]);
    const url = `http://hookuser:hunter2@127.0.0.1:${hook.port}/hooks/PATHSECRET?token=QUERYSECRET`;
    const env = envWith({ DELEGATE_NOTIFY_WEBHOOK: url });
    const taskId = await submit(env, 'build the thing [exit 2]\nand a second line');

    const delivered = await hook.accepted;
    expect(hook.received).toHaveLength(3);
    for (const request of hook.received) {
      expect(request.url).toBe('/hooks/PATHSECRET?token=QUERYSECRET');
      expect(request.contentType).toBe('application/json');
      // Credentials in the URL are sent as Basic authorization (fetch refuses them in the URL).
      expect(request.authorization).toBe(`Basic ${Buffer.from('hookuser:hunter2').toString('base64')}`);
      expect(request.body).toEqual(delivered.body);
    }
    expect(delivered.body).toMatchObject({
      type: 'task:failed',
      taskId,
      status: 'failed',
      reason: 'exit_code',
      error: 'exited with code 2',
      prompt: 'build the thing [exit 2]',
      agent: 'claude',
      costUsd: 0.0123,
      exitCode: 2,
      attempt: 1,
      resumeAt: null,
    });
    expect(delivered.body.durationMs).toBeGreaterThanOrEqual(0);
    expect(delivered.body.nodeId).toMatch(/^node-/);
    for (const time of [delivered.body.createdAt, delivered.body.startedAt, delivered.body.completedAt, delivered.body.at]) expect(time).toMatch(/^\d{4}-\d\d-\d\dT.*Z$/);

    const log = readFileSync(path.join(dataDir, 'runner.log'), 'utf8');
    expect(log).toContain('webhook failed; retrying');
    expect(log).toContain(`http://127.0.0.1:${hook.port}/…`);
    for (const secret of ['hunter2', 'hookuser', 'PATHSECRET', 'QUERYSECRET']) expect(log).not.toContain(secret);
  });
});

describe('DELEGATE_NOTIFY_COMMAND', () => {
  it('runs the command with the notice on stdin and DELEGATE_* variables when a task completes', async () => {
    const completedFile = path.join(dataDir, 'completed.json');
    const env = envWith({ DELEGATE_NOTIFY_COMMAND: recordingCommand(completedFile) });
    const taskId = await submit(env, 'summarise [lines 2]');
    await eventually(() => existsSync(completedFile));
    const notice = JSON.parse(readFileSync(completedFile, 'utf8')) as TaskNotice;
    expect(notice).toMatchObject({ type: 'task:completed', taskId, status: 'completed', reason: null, error: null, prompt: 'summarise [lines 2]' });
    expect(readFileSync(`${completedFile}.env`, 'utf8').trim()).toBe(`task:completed ${taskId} completed`);
  });

  it('announces a usage-limit pause with its reset time', async () => {
    const pausedFile = path.join(dataDir, 'paused.json');
    const env = envWith({ DELEGATE_NOTIFY_COMMAND: recordingCommand(pausedFile) });
    const resetsAt = Math.floor(Date.now() / 1000) + 3600;
    const taskId = await submit(env, `limited [usage_limit ${resetsAt}]`);
    await eventually(() => existsSync(pausedFile));
    const notice = JSON.parse(readFileSync(pausedFile, 'utf8')) as TaskNotice;
    expect(notice).toMatchObject({ type: 'task:paused', taskId, status: 'paused', reason: 'usage_limit' });
    expect(Date.parse(notice.resumeAt!)).toBeGreaterThanOrEqual(resetsAt * 1000);
  });

  it('is announced by the front door that commits a cancel, before it exits', async () => {
    const cancelledFile = path.join(dataDir, 'cancelled.json');
    // No runner: only the CLI that cancels commits anything.
    const env = envWith({ DELEGATE_NOTIFY_COMMAND: recordingCommand(cancelledFile), DELEGATE_AUTOSTART: '0' });
    const taskId = await submit(env, 'never runs');
    const cancel = await cli(['cancel', taskId, '--reason', 'not needed'], env);
    expect(cancel.code, cancel.stderr).toBe(0);
    // The command ran before `delegate cancel` returned.
    const notice = JSON.parse(readFileSync(cancelledFile, 'utf8')) as TaskNotice;
    expect(notice).toMatchObject({ type: 'task:cancelled', taskId, status: 'cancelled', reason: 'not needed', nodeId: null });
  });

  it('refuses a shell string at start, naming the variable', async () => {
    // Not in envs: stopping runners would load the same bad configuration.
    const env = testEnv(dataDir, { DELEGATE_NOTIFY_COMMAND: 'notify-send "task done"' });
    const result = await cli(['status'], env);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('DELEGATE_NOTIFY_COMMAND="notify-send \\"task done\\"": expected a JSON array of strings, the program first');
  });
});
