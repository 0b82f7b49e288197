import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, redactDatabaseUrl, redactWebhookUrl } from '../engine/config.js';
import { delegateVersion } from '../engine/version.js';
import { repoRoot } from './helpers.js';

describe('configuration from the environment', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({ HOME: '/home/u' });
    expect(config).toMatchObject({
      taskTimeoutMs: 1_800_000,
      maxOutputBuffer: 10_485_760,
      cpuThreshold: 80,
      memoryReserve: 1_073_741_824,
      maxWorkers: undefined,
      idleExitMs: 600_000,
      leaseMs: 30_000,
      autostart: true,
      permissionMode: 'bypassPermissions',
      logLevel: 'info',
      mcpMaxMessageBytes: 16_777_216,
      notify: { webhookUrl: undefined, command: undefined, desktop: false },
      allowShellAgent: false,
      hostId: undefined,
    });
    expect(config.databaseUrl).toBe(`file:${path.join(config.dataDir, 'delegate.db')}`);
  });

  it('reads every variable', () => {
    const config = loadConfig({
      DELEGATE_DATA_DIR: '/tmp/d',
      DELEGATE_DATABASE_URL: 'libsql://db.example.turso.io',
      DELEGATE_DATABASE_TOKEN: 'secret',
      TASK_TIMEOUT: '1000',
      MAX_OUTPUT_BUFFER: '1024',
      CPU_THRESHOLD: '100',
      MEMORY_RESERVE: '0',
      DELEGATE_MAX_WORKERS: '4',
      DELEGATE_IDLE_EXIT: '0',
      DELEGATE_LEASE_MS: '5000',
      DELEGATE_AUTOSTART: '0',
      DELEGATE_PERMISSION_MODE: 'acceptEdits',
      LOG_LEVEL: 'debug',
      DELEGATE_MCP_MAX_MESSAGE_BYTES: '65536',
      DELEGATE_NOTIFY_WEBHOOK: 'https://hooks.example.com/services/T0/B0/secret',
      DELEGATE_NOTIFY_COMMAND: '["/usr/local/bin/on-task-end", "--quiet"]',
      DELEGATE_NOTIFY_DESKTOP: '1',
      DELEGATE_ACCOUNT: 'team-a',
      DELEGATE_DAILY_BUDGET_USD: '12.5',
      DELEGATE_ALLOW_SHELL_AGENT: '1',
      DELEGATE_HOST_ID: 'build-box-2',
    });
    expect(config).toEqual({
      dataDir: '/tmp/d',
      databaseUrl: 'libsql://db.example.turso.io',
      databaseToken: 'secret',
      taskTimeoutMs: 1000,
      maxOutputBuffer: 1024,
      cpuThreshold: 100,
      memoryReserve: 0,
      maxWorkers: 4,
      idleExitMs: 0,
      leaseMs: 5000,
      autostart: false,
      permissionMode: 'acceptEdits',
      logLevel: 'debug',
      mcpMaxMessageBytes: 65_536,
      notify: { webhookUrl: 'https://hooks.example.com/services/T0/B0/secret', command: ['/usr/local/bin/on-task-end', '--quiet'], desktop: true },
      account: 'team-a',
      dailyBudgetUsd: 12.5,
      allowShellAgent: true,
      hostId: 'build-box-2',
    });
  });

  it('derives the account from the credentials without showing them, else from the login', () => {
    const key = loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-secret' }).account;
    expect(key).toMatch(/^api-key:[0-9a-f]{12}$/);
    expect(key).not.toContain('secret');
    expect(loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-other' }).account).not.toBe(key);
    expect(loadConfig({ CLAUDE_CODE_OAUTH_TOKEN: 'tok' }).account).toMatch(/^oauth:[0-9a-f]{12}$/);
    expect(loadConfig({ USER: 'ada' }).account).toBe('login:ada');
    expect(loadConfig({ USER: 'ada', CLAUDE_CONFIG_DIR: '/cfg' }).account).toBe('login:ada:/cfg');
    expect(loadConfig({ USER: 'ada', DELEGATE_ACCOUNT: ' work ' }).account).toBe('work');
    expect(loadConfig({}).dailyBudgetUsd).toBeUndefined();
  });

  it.each([
    ['TASK_TIMEOUT', '5', 'TASK_TIMEOUT="5": expected an integer from 1000 to 86400000 (milliseconds)'],
    ['TASK_TIMEOUT', '86400001', 'TASK_TIMEOUT="86400001": expected an integer from 1000 to 86400000 (milliseconds)'],
    ['TASK_TIMEOUT', 'soon', 'TASK_TIMEOUT="soon": expected an integer from 1000 to 86400000 (milliseconds)'],
    ['MAX_OUTPUT_BUFFER', '1023', 'MAX_OUTPUT_BUFFER="1023": expected an integer from 1024 to 1073741824 (bytes)'],
    ['CPU_THRESHOLD', '0', 'CPU_THRESHOLD="0": expected an integer from 1 to 100 (percent)'],
    ['CPU_THRESHOLD', '101', 'CPU_THRESHOLD="101": expected an integer from 1 to 100 (percent)'],
    ['MEMORY_RESERVE', '-1', 'MEMORY_RESERVE="-1": expected an integer >= 0 (bytes)'],
    ['DELEGATE_MAX_WORKERS', '0', 'DELEGATE_MAX_WORKERS="0": expected an integer from 1 to 1024 (worker slots)'],
    ['DELEGATE_IDLE_EXIT', '1.5', 'DELEGATE_IDLE_EXIT="1.5": expected an integer >= 0 (milliseconds; 0 = never exit)'],
    ['DELEGATE_LEASE_MS', '999', 'DELEGATE_LEASE_MS="999": expected an integer from 1000 to 600000 (milliseconds)'],
    ['DELEGATE_AUTOSTART', 'yes', 'DELEGATE_AUTOSTART="yes": expected one of 0, 1'],
    ['DELEGATE_ALLOW_SHELL_AGENT', 'true', 'DELEGATE_ALLOW_SHELL_AGENT="true": expected one of 0, 1'],
    ['DELEGATE_HOST_ID', 'two words', 'DELEGATE_HOST_ID="two words": expected a name of 1 to 200 printable characters without spaces'],
    ['DELEGATE_PERMISSION_MODE', 'yolo', 'DELEGATE_PERMISSION_MODE="yolo": expected one of acceptEdits, bypassPermissions, default, plan, dontAsk'],
    ['DELEGATE_MCP_MAX_MESSAGE_BYTES', '65535', 'DELEGATE_MCP_MAX_MESSAGE_BYTES="65535": expected an integer from 65536 to 268435456 (bytes)'],
    ['DELEGATE_MCP_MAX_MESSAGE_BYTES', '16MiB', 'DELEGATE_MCP_MAX_MESSAGE_BYTES="16MiB": expected an integer from 65536 to 268435456 (bytes)'],
    ['DELEGATE_DAILY_BUDGET_USD', '0', 'DELEGATE_DAILY_BUDGET_USD="0": expected a positive number of US dollars, up to 1000000'],
    ['DELEGATE_DAILY_BUDGET_USD', 'ten', 'DELEGATE_DAILY_BUDGET_USD="ten": expected a positive number of US dollars, up to 1000000'],
    ['DELEGATE_DAILY_BUDGET_USD', '2e6', 'DELEGATE_DAILY_BUDGET_USD="2e6": expected a positive number of US dollars, up to 1000000'],
    ['LOG_LEVEL', 'loud', 'LOG_LEVEL="loud": expected one of debug, info, warn, error'],
    ['DELEGATE_NOTIFY_DESKTOP', 'true', 'DELEGATE_NOTIFY_DESKTOP="true": expected one of 0, 1'],
    ['DELEGATE_NOTIFY_COMMAND', 'notify-send done', 'DELEGATE_NOTIFY_COMMAND="notify-send done": expected a JSON array of strings, the program first, e.g. ["/usr/local/bin/on-task-end", "--quiet"]'],
    ['DELEGATE_NOTIFY_COMMAND', '[]', 'DELEGATE_NOTIFY_COMMAND="[]": expected a JSON array of strings, the program first'],
    ['DELEGATE_NOTIFY_COMMAND', '["notify", 3]', 'DELEGATE_NOTIFY_COMMAND="[\\"notify\\", 3]": expected a JSON array of strings'],
    ['DELEGATE_NOTIFY_COMMAND', '[""]', 'expected a JSON array of strings, the program first'],
    ['DELEGATE_NOTIFY_WEBHOOK', 'ftp://files.example.com/drop', 'DELEGATE_NOTIFY_WEBHOOK: expected an http:// or https:// URL, not ftp:'],
    ['DELEGATE_DATABASE_URL', 'postgres://x', 'DELEGATE_DATABASE_URL="postgres://x": expected a file: URL (embedded) or a libsql://, https:// URL (libSQL server)'],
    ['DELEGATE_DATABASE_URL', 'libsql://db.internal?tls=0', 'DELEGATE_DATABASE_URL="libsql://db.internal?tls=0": a libsql:// URL with tls=0 needs its port, e.g. libsql://server:8080?tls=0'],
  ])('rejects %s=%s with a message naming the variable and its range', (name, value, message) => {
    expect(() => loadConfig({ [name]: value })).toThrow(message);
  });

  it('names a DELEGATE_DATA_DIR that is a file', () => {
    const file = path.join(repoRoot, 'package.json');
    expect(() => loadConfig({ DELEGATE_DATA_DIR: file })).toThrow(`DELEGATE_DATA_DIR ${file} is a file, not a directory`);
  });

  it('knows its own version', () => {
    const pkg = JSON.parse(readFileSync(path.join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    expect(delegateVersion).toBe(pkg.version);
  });
});

describe('DELEGATE_NOTIFY_WEBHOOK', () => {
  it('never quotes a value it cannot parse: it may be a secret', () => {
    expect(() => loadConfig({ DELEGATE_NOTIFY_WEBHOOK: 'hooks.example.com/s3cr3t' })).toThrow(
      'DELEGATE_NOTIFY_WEBHOOK: expected an http:// or https:// URL (the value is not shown: it may hold a secret)',
    );
    expect(() => loadConfig({ DELEGATE_NOTIFY_WEBHOOK: 'hooks.example.com/s3cr3t' })).not.toThrow(/s3cr3t/);
  });

  it.each([
    ['https://hooks.slack.com/services/T000/B000/XXXXSECRET', 'https://hooks.slack.com/…'],
    ['http://user:pass@127.0.0.1:8080/hook?token=abc', 'http://127.0.0.1:8080/…'],
    ['https://example.com', 'https://example.com/'],
    ['not a url', '<webhook URL>'],
  ])('is logged as %s → %s', (url, shown) => {
    expect(redactWebhookUrl(url)).toBe(shown);
  });
});

describe('redactDatabaseUrl', () => {
  it.each([
    ['libsql://user:pass@db.example.turso.io', 'libsql://db.example.turso.io'],
    ['libsql://:only-a-token@db.example.turso.io/', 'libsql://db.example.turso.io/'],
    ['libsql://db.example.turso.io?authToken=eyJhbGc', 'libsql://db.example.turso.io'],
    ['https://db.example.com:8080/v2?tls=1&AUTH_TOKEN=t&Password=p&api_key=k&clientSecret=s&token=x', 'https://db.example.com:8080/v2?tls=1'],
    ['wss://admin:hunter2@db.example.com/?authtoken=t#frag', 'wss://db.example.com/#frag'],
  ])('drops the credentials of %s', (url, expected) => {
    expect(redactDatabaseUrl(url)).toBe(expected);
  });

  it.each([
    'libsql://db.example.turso.io',
    'https://db.example.com?tls=0',
    'wss://db.example.com',
    'file:/home/u/.delegate/delegate.db',
    'file:relative/with@sign?mode=ro',
  ])('leaves %s as it is', (url) => {
    expect(redactDatabaseUrl(url)).toBe(url);
  });

  it('strips what could be a secret even from a URL it cannot parse', () => {
    const redacted = redactDatabaseUrl('libsql://user:pa ss@[bad-host/db?authToken=t');
    expect(redacted).not.toMatch(/user|pa ss|authToken/);
  });
});
