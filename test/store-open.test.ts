/**
 * Opening the store against a database it cannot simply use: another process holding the write lock, a file
 * that is not SQLite, a schema from a newer delegate, and many processes creating one at once. Real processes
 * and a real database file.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import Database from 'libsql';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMcpServer } from '../adapters/mcp/server.js';
import { systemClock } from '../engine/clock.js';
import { loadConfig } from '../engine/config.js';
import { StoreError } from '../engine/errors.js';
import { createLogger } from '../engine/logger.js';
import { migrations } from '../engine/store/migrations.js';
import { openStore } from '../engine/store/store.js';
import { ScheduleService } from '../engine/schedule-service.js';
import { TaskService } from '../engine/task-service.js';
import { UsageService } from '../engine/usage-service.js';
import { decideSubmit } from '../engine/task-steps.js';
import { cli, removeDir, repoRoot, tempDir, testEnv } from './helpers.js';
import { connectedClient } from './mcp-client.js';
import { newTask } from './store-contract.js';

let dataDir: string;
let file: string;
let env: NodeJS.ProcessEnv;
let holder: ChildProcess | undefined;

beforeEach(() => {
  dataDir = tempDir();
  file = path.join(dataDir, 'delegate.db');
  // Nothing may start a runner: it would be one more writer, and these tests control who writes.
  env = testEnv(dataDir, { DELEGATE_AUTOSTART: '0', LOG_LEVEL: 'info' });
});

afterEach(() => {
  holder?.kill('SIGKILL');
  holder = undefined;
  removeDir(dataDir);
});

/** Another process that takes the database's write lock (BEGIN IMMEDIATE) and keeps it until killed. */
async function holdWriteLock(): Promise<void> {
  const code = `
    const Database = require('libsql');
    const db = new Database(process.argv[1]);
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => process.exit(0), 120000);
  `;
  const child = spawn(process.execPath, ['-e', code, file], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'inherit'] });
  holder = child;
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => {
      if (chunk.toString().includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`the lock holder exited (${code}) before taking the lock`)));
  });
}

/** Run the CLI and time it. */
async function timedCli(args: string[]) {
  const started = Date.now();
  const result = await cli(args, env);
  return { ...result, ms: Date.now() - started };
}

describe('another process holds the write lock', () => {
  it('read-only commands answer without waiting for it', async () => {
    const submitted = await cli(['delegate', 'hi'], env);
    expect(submitted.code, submitted.stderr).toBe(0);
    const taskId = submitted.stdout.trim();
    await holdWriteLock();

    for (const args of [['status'], ['logs', taskId], ['events']]) {
      const result = await timedCli(args);
      expect(result.code, `${args.join(' ')}: ${result.stderr}`).toBe(0);
      // The task never ran, so it has no output lines; the list and the event stream show it.
      if (args[0] !== 'logs') expect(result.stdout, args.join(' ')).toContain(taskId);
      // The busy wait tells after 1 s of waiting and gives up after 15 s; a read must do neither. The time bound
      // is loose (CLI start-up alone takes seconds on a loaded machine) but far below the 15 s it used to take.
      expect(result.stderr, args.join(' ')).not.toMatch(/locked/);
      expect(result.ms, args.join(' ')).toBeLessThan(10_000);
    }
  });

  it('a write says once that it waits, then fails naming the file and how to find the holder', async () => {
    const store = await openStore(`file:${file}`);
    await store.close();
    await holdWriteLock();
    const waits: string[] = [];
    // Opening an up-to-date database is a read, so even the write's own open does not wait.
    const writer = await openStore(`file:${file}`, { busyDeadlineMs: 1500, onWait: (message) => waits.push(message) });
    try {
      const task = newTask({ id: 'task-000000000001' });
      const now = Date.now();
      const failure = await writer.insertTask(task, [], now, (pending, failed) => decideSubmit(task, pending, failed, now)).catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(StoreError);
      expect((failure as StoreError).code).toBe('locked');
      expect((failure as StoreError).message).toBe(
        `database is locked by another writer: ${file} (gave up after 1.5 s); find the process holding it (fuser ${file}) or retry`,
      );
      expect(waits).toEqual([`database is locked by another writer: ${file}, retrying for up to 1.5 s…`]);
    } finally {
      await writer.close();
    }
  });

  it('MCP: reads answer, and a write that gives up is a clean tool error', async () => {
    const config = loadConfig(env);
    await (await openStore(config.databaseUrl)).close();
    await holdWriteLock();
    const store = await openStore(config.databaseUrl, { busyDeadlineMs: 800 });
    const logger = createLogger('mcp', 'error', () => {});
    const tasks = new TaskService(store, config, systemClock, dataDir);
    const schedules = new ScheduleService(store, config, systemClock, dataDir, tasks);
    const server = createMcpServer({ tasks, schedules, usage: new UsageService(store, systemClock), ensureRunner: async () => ({ runner: 'disabled', note: '' }), logger });
    const [clientSide, serverSide] = InMemoryTransport.createLinkedPair();
    await server.connect(serverSide);
    const client = await connectedClient(clientSide);
    try {
      const listed = (await client.callTool({ name: 'TaskStatus', arguments: {} })) as CallToolResult;
      expect(listed.isError).toBeFalsy();
      const queued = (await client.callTool({ name: 'DelegateTask', arguments: { prompt: 'hi' } })) as CallToolResult;
      expect(queued.isError).toBe(true);
      expect(queued.content).toEqual([
        { type: 'text', text: `database is locked by another writer: ${file} (gave up after 0.8 s); find the process holding it (fuser ${file}) or retry` },
      ]);
    } finally {
      await client.close();
      await store.close();
    }
  });

  it.each(['embedded', 'client'] as const)('opening an up-to-date database with the %s driver does not write', async (driver) => {
    await (await openStore(`file:${file}`)).close();
    const other = new Database(file);
    other.exec('BEGIN IMMEDIATE');
    try {
      // A short deadline: a write in the open would fail with `locked` instead of waiting.
      const store = await openStore(`file:${file}`, { driver, busyDeadlineMs: 300 });
      expect(await store.listTasks()).toEqual([]);
      await store.close();
    } finally {
      other.exec('ROLLBACK');
      other.close();
    }
  });
});

describe('a file that is not a delegate database', () => {
  it.each([
    ['random bytes', () => Buffer.from(Array.from({ length: 8192 }, () => Math.floor(Math.random() * 256)))],
    ['a text file', () => Buffer.from('these are my notes, not a database\n')],
  ])('%s: delegate status exits 1 with one line naming the file, and leaves it alone', async (_kind, content) => {
    const bytes = content();
    writeFileSync(file, bytes);
    const result = await cli(['status'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `delegate: not a delegate database: ${file} (file is not a database); move it aside or set DELEGATE_DATA_DIR to another directory\n`,
    );
    expect(readFileSync(file).equals(bytes)).toBe(true);
  });

  it('delegate mcp start refuses it in one line', async () => {
    writeFileSync(file, 'not a database\n');
    const result = await cli(['mcp', 'start'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `delegate: the MCP server could not start: not a delegate database: ${file} (file is not a database); move it aside or set DELEGATE_DATA_DIR to another directory\n`,
    );
  });

  it('a directory in its place: delegate status exits 1 with one line naming the file', async () => {
    mkdirSync(file);
    const result = await cli(['status'], env);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `delegate: cannot open the database file ${file} (a directory is in its place); check that it is a file this user can read and write, or set DELEGATE_DATA_DIR to another directory\n`,
    );
    const failure = await openStore(`file:${file}`).catch((error: unknown) => error);
    expect((failure as StoreError).code).toBe('cannot_open');
  });

  it('a directory that cannot be made for it: one cannot_open error naming the file', async () => {
    // A regular file where a directory of the path should be.
    writeFileSync(file, '');
    const beyond = path.join(file, 'nested', 'delegate.db');
    const failure = await openStore(`file:${beyond}`).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as StoreError).code).toBe('cannot_open');
    expect((failure as StoreError).message).toMatch(new RegExp(`^cannot open the database file ${beyond.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(not a directory, mkdir .*\\); check that`));
  });

  it('a schema from a newer delegate is refused by name', async () => {
    await (await openStore(`file:${file}`)).close();
    const db = new Database(file);
    db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(migrations.length + 1, Date.now());
    db.close();
    const failure = await openStore(`file:${file}`).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(StoreError);
    expect((failure as StoreError).code).toBe('newer_schema');
    expect((failure as StoreError).message).toContain(`database schema version ${migrations.length + 1} of ${file} is newer than this delegate`);
  });
});

describe('a new database', () => {
  it('names its file, which runners watch for other processes\' commits; a database in memory has none', async () => {
    for (const url of [`file:${file}`, pathToFileURL(file).href]) {
      for (const driver of ['embedded', 'client'] as const) {
        const store = await openStore(url, { driver });
        try {
          expect(store.file).toBe(file);
        } finally {
          await store.close();
        }
      }
    }
    const memory = await openStore(':memory:');
    try {
      expect(memory.file).toBeNull();
    } finally {
      await memory.close();
    }
  });

  it('is created and migrated by the first command', async () => {
    const result = await cli(['status'], env);
    expect(result.code, result.stderr).toBe(0);
    const db = new Database(file);
    try {
      const { version } = db.prepare('SELECT MAX(version) AS version FROM schema_migrations').get() as { version: number };
      expect(version).toBe(migrations.length);
      expect((db.prepare('PRAGMA journal_mode').get() as { journal_mode: string }).journal_mode).toBe('wal');
    } finally {
      db.close();
    }
  });

  it('is migrated once when four processes open it at the same moment', async () => {
    const storeModule = pathToFileURL(path.join(repoRoot, 'dist', 'engine', 'store', 'store.js')).href;
    const startAt = Date.now() + 1500;
    // Each process waits for the same instant, then opens, so their migrations race.
    const code = `
      const [module, url, startAt] = process.argv.slice(1);
      while (Date.now() < Number(startAt));
      import(module).then(async ({ openStore }) => {
        const store = await openStore(url);
        await store.close();
        process.stdout.write('opened');
      }).catch((error) => { process.stderr.write(String(error)); process.exit(1); });
    `;
    const outcomes = await Promise.all(
      Array.from(
        { length: 4 },
        () =>
          new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
            const child = spawn(process.execPath, ['-e', code, storeModule, `file:${file}`, String(startAt)], { cwd: repoRoot });
            let out = '';
            let err = '';
            child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
            child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
            child.once('exit', (exitCode) => resolve({ code: exitCode, out, err }));
          }),
      ),
    );
    for (const outcome of outcomes) expect(outcome, outcome.err).toMatchObject({ code: 0, out: 'opened' });
    const db = new Database(file);
    try {
      const versions = db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as Array<{ version: number }>;
      expect(versions.map((row) => row.version)).toEqual(migrations.map((_statements, index) => index + 1));
    } finally {
      db.close();
    }
  });
});
