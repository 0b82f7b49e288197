/**
 * The two libSQL drivers behind one small executor. Embedded `file:` databases use the synchronous `libsql`
 * driver (measured 4× faster for writes and 8× for small reads than @libsql/client on this machine, see
 * shared/research/stack.md §3); remote `libsql://` / `https://` URLs use @libsql/client, which is async and
 * does not block the event loop on the network. Only engine/store uses this module.
 */
import { mkdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type Database from 'libsql';
import type { Client, InValue, Transaction } from '@libsql/client';
import { redactDatabaseUrl } from '../config.js';
import { isStoreError, StoreError } from '../errors.js';

/** A value SQLite stores. */
export type SqlValue = string | number | bigint | null | Uint8Array;
/** A result row, by column name. */
export type SqlRow = Record<string, SqlValue>;

/**
 * Runs statements; inside `write`, on the open transaction. Outside `write`, a statement must be a read or an
 * update that sets fixed values (a run's pid, its session): on a server, one whose connection was lost may
 * have been applied and is sent again (see ServerWait).
 */
export interface SqlExecutor {
  all(sql: string, args?: readonly SqlValue[]): Promise<SqlRow[]>;
  run(sql: string, args?: readonly SqlValue[]): Promise<{ changes: number }>;
}

/**
 * Statements of one transaction that need none of each other's results, sent together. On a database server
 * each statement is a round trip made while the transaction holds the write lock that every other runner waits
 * for; sent at once, they travel in one go (hrana pipelines requests on a stream and runs them in the order sent).
 * The embedded driver runs each at its call, in the same order. Every chain is waited for before the first
 * failure is thrown, so none runs on after the caller's rollback.
 */
export async function together<T extends readonly unknown[]>(chains: { readonly [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const settled = await Promise.allSettled(chains);
  const failed = settled.find((result) => result.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}

/** A connection: statements, write transactions and the cross-process change counter. */
export interface SqlDriver extends SqlExecutor {
  readonly kind: 'embedded' | 'client';
  /** The database as messages name it: a file's path, or the URL without its secrets. */
  readonly label: string;
  /** The database's local file; null in memory and on a server. */
  readonly file: string | null;
  /** Per-connection setup (busy timeout; WAL on a new file), writing nothing to an existing database; retried while another process is creating the same file. */
  open(): Promise<void>;
  /**
   * Run `fn` in one write transaction (BEGIN IMMEDIATE): all of it commits, or none of it. `fn` may run more
   * than once (the write lock was taken, the server was unreachable), so it must do nothing but its statements.
   */
  write<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T>;
  /** `PRAGMA data_version`: changes only when another connection commits. Null where it means nothing (remote). */
  dataVersion(): Promise<number | null>;
  close(): Promise<void>;
}

/** Serialises work on one connection: a second write transaction on a connection fails or blocks (stack.md §3). */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn, fn);
    this.tail = result.catch(() => undefined);
    return result;
  }
}

/**
 * Waiting for another writer happens here, asynchronously, not in SQLite's busy handler: that handler blocks
 * the event loop (stack.md §3), which would stall heartbeats and, with two connections in one process,
 * deadlock until it times out. BEGIN IMMEDIATE fails fast before any work, so retrying the whole
 * transaction is safe. About 15 s in all before giving up.
 */
const busyTimeoutMs = 50;
const busyBackoffMs = [5, 10, 20, 40, 80, 120, 160, 200, 250, 300];
const busyDeadlineMs = 15_000;
/** Brief waits are normal between a runner and a front door; only a longer one is worth telling the user. */
const busyNoticeMs = 1_000;

/** SQLITE_BUSY / LOCKED: another connection holds the write lock. */
export function isBusyError(error: unknown): boolean {
  const text = String((error as { code?: unknown })?.code ?? '') + ' ' + String((error as Error)?.message ?? '');
  return /SQLITE_BUSY|SQLITE_LOCKED|database is locked/i.test(text);
}

/** SQLITE_NOTADB / CORRUPT: the file is not SQLite, or not intact. By code only, so no message of ours is mistaken for it. */
function isNotADatabaseError(error: unknown): boolean {
  return /^SQLITE_(NOTADB|CORRUPT)/.test(String((error as { code?: unknown })?.code ?? ''));
}

/** How a connection waits for other writers and names its database in errors. */
export interface DriverOptions {
  /** The token of a remote database. */
  authToken?: string | undefined;
  /** Which driver (default: by URL). */
  driver?: DriverChoice;
  /**
   * Told once per statement that has waited over a second for another writer, and once when a database server
   * became unreachable and again when it is back (the CLI prints the first, a runner logs them).
   */
  onWait?: ((message: string) => void) | undefined;
  /** How long a statement waits for another writer before failing with StoreError `locked` (tests shorten it). */
  busyDeadlineMs?: number | undefined;
  /**
   * How long a statement keeps retrying a database server it cannot reach before failing with StoreError
   * `unreachable` (default 10 s, what a front door waits; a runner waits longer).
   */
  unreachableDeadlineMs?: number | undefined;
  /** Once aborted, statements stop waiting for an unreachable server: each is tried once and fails (a stopping runner). */
  stopWaiting?: AbortSignal | undefined;
  /**
   * How long one request to a database server may go unanswered before its connection is given up and a new one
   * made (default 30 s; tests shorten it). Without it an answer lost on the way would hold the connection, and
   * every statement queued behind it, for ever.
   */
  requestTimeoutMs?: number | undefined;
}

/** See DriverOptions.requestTimeoutMs. */
const defaultRequestTimeoutMs = 30_000;

/** Retries statements that found the write lock taken, and turns SQLite's faults into StoreErrors naming the database. */
class BusyWait {
  private readonly deadlineMs: number;

  constructor(
    private readonly label: string,
    /** The local file, for the hint that finds its holder; null for a remote database. */
    private readonly file: string | null,
    private readonly options: DriverOptions,
  ) {
    this.deadlineMs = options.busyDeadlineMs ?? busyDeadlineMs;
  }

  async run<T>(fn: () => Promise<T>): Promise<T> {
    const started = Date.now();
    let told = false;
    for (let attempt = 0; ; attempt++) {
      try {
        return await fn();
      } catch (error) {
        if (!isBusyError(error)) throw this.storeError(error);
        const waited = Date.now() - started;
        if (waited > this.deadlineMs) throw this.lockedError(error);
        if (!told && waited >= Math.min(busyNoticeMs, this.deadlineMs / 2)) {
          told = true;
          this.options.onWait?.(`database is locked by another writer: ${this.label}, retrying for up to ${seconds(this.deadlineMs)}…`);
        }
        const base = busyBackoffMs[Math.min(attempt, busyBackoffMs.length - 1)]!;
        await new Promise((resolve) => setTimeout(resolve, base * (0.5 + Math.random())));
      }
    }
  }

  /** A fault of the file itself becomes a StoreError; anything else (constraints, the caller's own errors) passes unchanged. */
  storeError(error: unknown): unknown {
    if (!isNotADatabaseError(error)) return error;
    const reason = String((error as Error)?.message ?? error).replace(/^SQLITE_[A-Z_]+: /, '');
    return new StoreError(
      'not_a_database',
      this.file
        ? `not a delegate database: ${this.label} (${reason}); move it aside or set DELEGATE_DATA_DIR to another directory`
        : `not a delegate database: ${this.label} (${reason}); check DELEGATE_DATABASE_URL`,
      { cause: error },
    );
  }

  private lockedError(error: unknown): StoreError {
    const hint = this.file ? `find the process holding it (fuser ${this.file}) or retry` : 'retry once the other writer is done';
    return new StoreError('locked', `database is locked by another writer: ${this.label} (gave up after ${seconds(this.deadlineMs)}); ${hint}`, { cause: error });
  }
}

function seconds(ms: number): string {
  return `${Number((ms / 1000).toFixed(1))} s`;
}

/** How long a front door (CLI, MCP) waits for an unreachable database server before it says so and gives up. */
export const frontDoorUnreachableMs = 10_000;
/** Between tries while a server is unreachable: 100 ms doubling to 1 s, short enough that a restart of a second or two costs a runner no lease. */
const unreachableBackoffMs = [100, 200, 400, 800, 1000];

/** The error and its causes, outermost first (@libsql/client wraps the socket's error once or twice). */
function causes(error: unknown): unknown[] {
  const chain: unknown[] = [];
  for (let current = error; current !== undefined && current !== null && chain.length < 6; current = (current as { cause?: unknown }).cause) {
    chain.push(current);
  }
  return chain;
}

/** The code and message of one error of the chain, which the patterns below are matched against. */
function causeText(cause: unknown): string {
  return `${String((cause as { code?: unknown })?.code ?? '')} ${String((cause as Error)?.message ?? '')}`;
}

/**
 * Errors that say the connection failed before it got anywhere: refused, no route, unknown host. Nothing of the
 * request reached a server. Over HTTP the socket's error is a cause with its code; over WebSockets only its
 * message carries it (`connect ECONNREFUSED 127.0.0.1:8080`).
 */
const connectFailure = /\b(ECONNREFUSED|EHOSTUNREACH|ENETUNREACH|ENETDOWN|ENOTFOUND|EAI_AGAIN|UND_ERR_CONNECT_TIMEOUT)\b/;
/** Errors of a connection that broke, or a request that got no answer: the request may have reached the server. */
const connectionLost = /\b(ECONNRESET|EPIPE|ETIMEDOUT|UND_ERR_SOCKET)\b|socket hang up|other side closed|WebSocket was closed/;

/**
 * The database server could not be reached or the connection to it broke (measured against sqld: a stopped
 * server gives `connect ECONNREFUSED` over WebSockets and HTTP, a connection it dropped `WebSocket was closed
 * with code 1006`). By code and message of the socket's error, so a refused token or TLS certificate, which also
 * fail the connection, is not waited for.
 */
function isUnreachableError(error: unknown): boolean {
  return causes(error).some((cause) => connectFailure.test(causeText(cause)) || connectionLost.test(causeText(cause)));
}

/**
 * A COMMIT that provably did not leave this process: the connection could not be made, or the WebSocket client
 * refused to send on a connection it already knew was closed (hrana's ClosedError "Client is closed" / "Stream
 * is closed"; a request in flight when the socket closes gets the socket's error instead).
 */
function commitNotSent(error: unknown): boolean {
  return causes(error).some(
    (cause) => connectFailure.test(causeText(cause)) || ((cause as Error)?.name === 'ClosedError' && /^(Client|Stream) is closed/.test((cause as Error).message)),
  );
}

/** The innermost message of an error: the socket's own words (`connect ECONNREFUSED 127.0.0.1:8080`), not the wrappers'. */
function reasonOf(error: unknown): string {
  const chain = causes(error);
  const message = String((chain[chain.length - 1] as Error)?.message ?? error);
  return message.replace(/^[A-Z_]+: /, '').split('\n')[0]!;
}

/** Why a database file did not open, in words: the driver says only `ConnectionFailed("…: 14")` (SQLITE_CANTOPEN). */
function openFailure(file: string, error: unknown): string {
  try {
    if (statSync(file).isDirectory()) return 'a directory is in its place';
  } catch {
    // Not there, or not reachable (its directory could not be made): the driver's own words say which.
  }
  return reasonOf(error).replace(/^ConnectionFailed\("(.*)"\)$/, '$1').replace(/: 14$/, ': SQLITE_CANTOPEN');
}

/** Marks a write whose COMMIT may have reached the server: never retried. */
class CommitUnknown extends Error {}

/**
 * Waiting for a database server that cannot be reached (stopped, restarting, the network down): a statement is
 * tried again, with backoff, until the server answers or `unreachableDeadlineMs` has passed; then it fails with
 * a StoreError `unreachable` that names the database and says what to do. The connection is told once when the
 * server became unreachable and once when it is back (the clients reconnect by themselves, measured with ws and
 * http against a restarted sqld). Trying again is safe because:
 * - a write transaction that failed before its COMMIT was sent did not commit: only its COMMIT commits it, and
 *   nobody will send that any more. The server rolls back a transaction whose stream is lost (when its WebSocket
 *   closes, or when an HTTP stream nobody continues expires), and a server that stopped never committed it
 *   (measured: an insert whose server stopped before COMMIT is not there after the restart). So the whole
 *   `write(fn)` runs again, as it does after a locked BEGIN;
 * - a COMMIT is sent again only when it provably never left (commitNotSent). One that may have reached the
 *   server fails with StoreError `commit_unknown` instead: running the transaction again could apply it twice.
 *   Unless the transaction changed nothing (a claim that found no task): its COMMIT had nothing to save, and its
 *   result stands whatever became of it (changeTracker);
 * - outside a transaction there are only reads and updates that set fixed values (SqlExecutor), which mean the
 *   same when applied twice.
 * A runner's lease fencing does not wait for this: it runs on its own timer (NodeLease).
 */
class ServerWait {
  private readonly deadlineMs: number;
  /** When the current outage began; null while the server answers. */
  private outageSince: number | null = null;

  constructor(
    private readonly label: string,
    private readonly options: DriverOptions,
  ) {
    this.deadlineMs = options.unreachableDeadlineMs ?? frontDoorUnreachableMs;
  }

  /**
   * Run `fn` until the server answers, for up to the deadline from `askedAt`: when the statement was asked for,
   * not when it got the connection, so statements queued behind one that gave up give up with it (after one
   * try each) instead of each waiting the whole deadline again, which would hold up a runner's shutdown.
   * `transaction`: `fn` is a whole write transaction, so its failure means nothing was committed.
   */
  async run<T>(askedAt: number, fn: () => Promise<T>, transaction = false): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      let result: T;
      try {
        result = await fn();
      } catch (error) {
        if (error instanceof CommitUnknown) throw this.commitUnknownError(error.cause);
        if (isStoreError(error) || !isUnreachableError(error)) throw error;
        if (this.outageSince === null) {
          this.outageSince = Date.now();
          this.options.onWait?.(`database server unreachable: ${this.label} (${reasonOf(error)}); retrying for up to ${seconds(this.deadlineMs)}…`);
        }
        const waited = Date.now() - askedAt;
        if (waited >= this.deadlineMs || this.options.stopWaiting?.aborted) throw this.unreachableError(error, Math.min(waited, this.deadlineMs), transaction);
        const base = unreachableBackoffMs[Math.min(attempt, unreachableBackoffMs.length - 1)]!;
        // The last try falls on the deadline, so a server back just in time is still found.
        await new Promise((resolve) => setTimeout(resolve, Math.min(base * (0.5 + Math.random() / 2), this.deadlineMs - waited)));
        continue;
      }
      if (this.outageSince !== null) {
        this.options.onWait?.(`database server reachable again: ${this.label} (unreachable for ${seconds(Date.now() - this.outageSince)})`);
        this.outageSince = null;
      }
      return result;
    }
  }

  private unreachableError(error: unknown, waitedMs: number, transaction: boolean): StoreError {
    return new StoreError(
      'unreachable',
      `database server unreachable: ${this.label} (${reasonOf(error)}; gave up after ${seconds(waitedMs)})${transaction ? ', nothing was saved' : ''}; check that the server is running and that DELEGATE_DATABASE_URL points at it, then retry`,
      { cause: error },
    );
  }

  private commitUnknownError(error: unknown): StoreError {
    return new StoreError(
      'commit_unknown',
      `lost the connection to the database server while committing: ${this.label} (${reasonOf(error)}); the change may or may not have been saved: look (delegate status) before doing it again`,
      { cause: error },
    );
  }
}

/**
 * WAL checkpoints at idle. SQLite checkpoints in the COMMIT that takes the log past `wal_autocheckpoint` pages
 * (1000 by default), two fsyncs and the copy of every page (~11 ms here): every ~80th DelegateTask waited for
 * one. This connection checkpoints instead once it has been idle for a moment after some commits, as SQLite
 * advises for applications that can, and leaves the COMMIT's own checkpoint for a log grown 4× that under
 * load that never pauses (fewer, larger checkpoints; ~16 MB of log at most between them).
 */
const walAutocheckpointPages = 4000;
const walSizeLimitBytes = 4 * 1024 * 1024;
/** How often a read outside a transaction looks whether the schema changed (see EmbeddedDriver.checkSchema). */
const schemaCheckMs = 1000;
const idleCheckpointMs = 250;
const idleCheckpointCommits = 32;

class EmbeddedDriver implements SqlDriver {
  readonly kind = 'embedded' as const;
  private readonly db: Database.Database;
  private readonly statements = new Map<string, Prepared>();
  private readonly mutex = new Mutex();
  private readonly busy: BusyWait;
  readonly label: string;
  readonly file: string | null;
  /** SQLite's schema cookie as this connection last read it, and when (see checkSchema). */
  private schemaVersion: number | null = null;
  private schemaCheckedAt = 0;
  /** Commits since this connection last checkpointed. */
  private commits = 0;
  /** Fires once no statement has run for idleCheckpointMs; refreshed by each. */
  private idle: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(Driver: typeof Database, file: string, options: DriverOptions) {
    this.label = file;
    this.file = file === ':memory:' ? null : file;
    this.busy = new BusyWait(file, this.file, options);
    try {
      if (file !== ':memory:') mkdirSync(path.dirname(file), { recursive: true });
      this.db = new Driver(file);
    } catch (error) {
      throw new StoreError('cannot_open', `cannot open the database file ${file} (${openFailure(file, error)}); check that it is a file this user can read and write, or set DELEGATE_DATA_DIR to another directory`, {
        cause: error,
      });
    }
    // First, so that the setup below already waits for a process that is creating the same file.
    this.db.exec(`PRAGMA busy_timeout = ${busyTimeoutMs}`);
  }

  open(): Promise<void> {
    return this.mutex.run(() =>
      this.busy.run(async () => {
        // Opening must not write, so that a reader never waits for another process's writer: WAL is persistent,
        // so it is set only on a new file; the other two are settings of this connection, not of the file.
        const { journal_mode: mode } = this.db.prepare('PRAGMA journal_mode').get() as { journal_mode: string };
        if (mode !== 'wal' && mode !== 'memory') this.db.exec('PRAGMA journal_mode = WAL');
        this.db.exec('PRAGMA synchronous = NORMAL');
        this.db.exec('PRAGMA foreign_keys = ON');
        this.db.exec(`PRAGMA wal_autocheckpoint = ${walAutocheckpointPages}`);
        // A log that grew under load is cut back to this when it next starts over, not kept at its largest.
        this.db.exec(`PRAGMA journal_size_limit = ${walSizeLimitBytes}`);
      }),
    );
  }

  /** A statement ran, and `wrote` says whether it committed a change: the idle checkpoint waits on. */
  private ran(wrote: boolean): void {
    if (wrote) this.commits++;
    if (this.idle) this.idle.refresh();
    else if (this.commits >= idleCheckpointCommits && !this.closed) {
      this.idle = setTimeout(() => void this.checkpointAtIdle(), idleCheckpointMs);
      // Never what keeps a process alive: the last connection to close checkpoints anyway.
      this.idle.unref();
    }
  }

  /**
   * Rows are named by the columns a statement had when it was first read (see rowsOf). SQLite prepares a
   * statement again when another connection changed the schema (a newer delegate migrated it), and a `SELECT *`
   * may then have other columns, in the same number. So the schema cookie is read at the start of every write
   * transaction (the schema cannot change while it holds the lock), and before a read outside one at most once
   * a second; when it moved, every statement's names are read again. Reading it costs about half a small query.
   */
  private checkSchema(always: boolean): void {
    const now = Date.now();
    if (!always && now - this.schemaCheckedAt < schemaCheckMs) return;
    this.schemaCheckedAt = now;
    const version = (this.prepared('PRAGMA schema_version').statement.all() as number[][])[0]![0]!;
    if (this.schemaVersion !== null && version !== this.schemaVersion) {
      for (const prepared of this.statements.values()) prepared.columns = [];
    }
    this.schemaVersion = version;
  }

  private checkpointAtIdle(): Promise<void> {
    this.idle = undefined;
    // Now, not once the mutex is free: a statement meanwhile must not arm a second checkpoint.
    this.commits = 0;
    return this.mutex.run(async () => {
      if (this.closed) return;
      try {
        // PASSIVE: copies what no reader still needs, without waiting for any reader or writer.
        this.db.exec('PRAGMA wal_checkpoint(PASSIVE)');
      } catch {
        // Only upkeep (another process may be checkpointing): the next idle moment, or a COMMIT, does it.
      }
    });
  }

  private prepared(sql: string): Prepared {
    let prepared = this.statements.get(sql);
    if (!prepared) {
      const statement = this.db.prepare(sql);
      const reader = statement.reader;
      // Rows come back as arrays and become objects here: libsql names each value of each row through N-API,
      // which cost more than running the statement (a page of 50 tasks: 0.46 → 0.32 ms).
      if (reader) statement.raw(true);
      prepared = { statement, reader, columns: [], row: () => ({}) };
      this.statements.set(sql, prepared);
    }
    return prepared;
  }

  private readonly executor: SqlExecutor = {
    all: async (sql, args) => {
      const prepared = this.prepared(sql);
      if (!prepared.reader) {
        prepared.statement.run(argsOf(args));
        return [];
      }
      return rowsOf(prepared, prepared.statement.all(argsOf(args)) as SqlValue[][]);
    },
    run: async (sql, args) => {
      const prepared = this.prepared(sql);
      if (prepared.reader) {
        // A RETURNING statement is a reader; run() would not return its rows, so count them.
        return { changes: prepared.statement.all(argsOf(args)).length };
      }
      return { changes: prepared.statement.run(argsOf(args)).changes };
    },
  };

  /** One statement outside a transaction; `wrote`: whether it makes a change (for the idle checkpoint). */
  private single<T>(wrote: boolean, statement: () => Promise<T>): Promise<T> {
    return this.mutex.run(() =>
      this.busy.run(async () => {
        this.checkSchema(false);
        const result = await statement();
        this.ran(wrote);
        return result;
      }),
    );
  }

  all(sql: string, args?: readonly SqlValue[]): Promise<SqlRow[]> {
    return this.single(false, () => this.executor.all(sql, args));
  }

  run(sql: string, args?: readonly SqlValue[]): Promise<{ changes: number }> {
    // Outside a transaction, `run` is how a change is made (an update of a run's pid, its session).
    return this.single(true, () => this.executor.run(sql, args));
  }

  write<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    return this.mutex.run(() =>
      this.busy.run(async () => {
        this.db.exec('BEGIN IMMEDIATE');
        try {
          this.checkSchema(true);
          const result = await fn(this.executor);
          this.db.exec('COMMIT');
          this.ran(true);
          return result;
        } catch (error) {
          if (this.db.inTransaction) this.db.exec('ROLLBACK');
          throw error;
        }
      }),
    );
  }

  async dataVersion(): Promise<number | null> {
    return this.mutex.run(async () => {
      const [row] = await this.executor.all('PRAGMA data_version');
      return Number(row!.data_version);
    });
  }

  async close(): Promise<void> {
    await this.mutex.run(async () => {
      this.closed = true;
      clearTimeout(this.idle);
      this.db.close();
    });
  }
}

/** A prepared statement of the embedded driver, and what is read of it once. */
interface Prepared {
  statement: Database.Statement<unknown[]>;
  /** It returns rows (a SELECT, or a write with RETURNING). libsql's getter is a native call, so it is read once. */
  reader: boolean;
  /** The names of a reader's columns, as of the last rows read; emptied when the schema changed. */
  columns: string[];
  /** A row object of a reader's raw values, by column name. */
  row: (values: readonly SqlValue[]) => SqlRow;
}

/**
 * A statement's parameters as both drivers take them: the caller's array itself, which neither changes (passed
 * to libsql as spread arguments, they were copied twice).
 */
function argsOf(args: readonly SqlValue[] | undefined): SqlValue[] {
  return (args ?? []) as SqlValue[];
}

/** A reader's raw rows as objects by column name. */
function rowsOf(prepared: Prepared, rows: SqlValue[][]): SqlRow[] {
  // Names not read yet, cleared by checkSchema, or a row of another width than they: read them (again).
  if (rows.length > 0 && rows[0]!.length !== prepared.columns.length) {
    prepared.columns = prepared.statement.columns().map((column) => column.name);
    prepared.row = rowMaker(prepared.columns);
  }
  return rows.map(prepared.row);
}

/**
 * An object literal compiled for these columns: every row of a statement gets one shape, built at the speed of
 * a literal. The names are the store's own SQL's (a `__proto__` column would set the prototype).
 */
function rowMaker(columns: readonly string[]): (values: readonly SqlValue[]) => SqlRow {
  const fields = columns.map((column, index) => `${JSON.stringify(column)}: values[${index}]`).join(', ');
  return new Function('values', `return { ${fields} };`) as (values: readonly SqlValue[]) => SqlRow;
}

/**
 * An executor that notes whether any statement through it may have changed the database. Known not to: a
 * SELECT, and an INSERT, UPDATE, DELETE or REPLACE that changed no row (SQLite's triggers are per row, so none
 * fired). Anything else (DDL, a PRAGMA, a WITH) counts as a change.
 */
function changeTracker(inner: SqlExecutor): { executor: SqlExecutor; changedAny(): boolean } {
  let changed = false;
  const note = (sql: string, rows: number | null) => {
    if (changed || /^\s*SELECT\b/i.test(sql)) return;
    if (rows === null || rows > 0 || !/^\s*(INSERT|UPDATE|DELETE|REPLACE)\b/i.test(sql)) changed = true;
  };
  return {
    executor: {
      all: async (sql, args) => {
        const rows = await inner.all(sql, args);
        // Rows count changes only with RETURNING (a row per changed row).
        note(sql, /\bRETURNING\b/i.test(sql) ? rows.length : null);
        return rows;
      },
      run: async (sql, args) => {
        const result = await inner.run(sql, args);
        note(sql, result.changes);
        return result;
      },
    },
    changedAny: () => changed,
  };
}

class ClientDriver implements SqlDriver {
  readonly kind = 'client' as const;
  private readonly mutex = new Mutex();
  private readonly busy: BusyWait;
  private readonly server: ServerWait;
  private readonly requestTimeoutMs: number;
  private client: Client;

  constructor(
    private readonly newClient: () => Client,
    readonly label: string,
    /** The local file, or null for a remote database. */
    readonly file: string | null,
    options: DriverOptions,
  ) {
    this.client = newClient();
    this.busy = new BusyWait(label, file, options);
    this.server = new ServerWait(label, options);
    this.requestTimeoutMs = options.requestTimeoutMs ?? defaultRequestTimeoutMs;
  }

  async open(): Promise<void> {
    if (!this.file) return;
    // As the embedded driver: only a new file is switched to WAL, so opening an existing one does not write.
    const [row] = await this.all('PRAGMA journal_mode');
    if (row?.journal_mode !== 'wal') await this.all('PRAGMA journal_mode = WAL');
  }

  /**
   * One request to a remote server, given up after requestTimeoutMs: the connection it hangs on is closed and
   * replaced, and the request fails as a lost connection (ETIMEDOUT), which ServerWait retries on the new one or,
   * for a COMMIT, reports as commit_unknown. A local file's requests are not timed: they cannot get lost.
   */
  private request<T>(send: () => Promise<T>): Promise<T> {
    if (this.file) return send();
    const client = this.client;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        if (this.client === client) {
          this.client = this.newClient();
          client.close();
        }
        const error = new Error(`no answer from the database server in ${seconds(this.requestTimeoutMs)}`) as NodeJS.ErrnoException;
        error.code = 'ETIMEDOUT';
        reject(error);
      }, this.requestTimeoutMs);
    });
    return Promise.race([send(), timedOut]).finally(() => clearTimeout(timer));
  }

  private executor(target: Client | Transaction): SqlExecutor {
    return {
      all: async (sql, args) => {
        const result = await this.request(() => target.execute({ sql, args: argsOf(args) as InValue[] }));
        return result.rows.map((row) => {
          const out: SqlRow = {};
          for (const column of result.columns) out[column] = row[column] as SqlValue;
          return out;
        });
      },
      run: async (sql, args) => {
        const result = await this.request(() => target.execute({ sql, args: argsOf(args) as InValue[] }));
        // With RETURNING, rowsAffected is 0 (stack.md §3): count returned rows instead.
        return { changes: result.columns.length > 0 ? result.rows.length : result.rowsAffected };
      },
    };
  }

  all(sql: string, args?: readonly SqlValue[]): Promise<SqlRow[]> {
    const askedAt = Date.now();
    return this.mutex.run(() => this.server.run(askedAt, () => this.busy.run(() => this.executor(this.client).all(sql, args))));
  }

  run(sql: string, args?: readonly SqlValue[]): Promise<{ changes: number }> {
    const askedAt = Date.now();
    return this.mutex.run(() => this.server.run(askedAt, () => this.busy.run(() => this.executor(this.client).run(sql, args))));
  }

  write<T>(fn: (tx: SqlExecutor) => Promise<T>): Promise<T> {
    const askedAt = Date.now();
    return this.mutex.run(() =>
      this.server.run(askedAt, () =>
        this.busy.run(async () => {
          const client = this.client;
          const tx = await this.request(() => client.transaction('write'));
          const changes = changeTracker(this.executor(tx));
          let committing = false;
          let result: T | undefined;
          try {
            result = await fn(changes.executor);
            committing = true;
            await this.request(() => tx.commit());
            return result;
          } catch (error) {
            if (!tx.closed && this.client === client) await this.request(() => tx.rollback()).catch(() => undefined);
            // Up to here a lost connection left nothing committed, and ServerWait runs it all again; from the
            // COMMIT on it may have been applied, unless the COMMIT provably never left (see ServerWait). A
            // transaction that changed nothing (a claim that found no task) has the same outcome either way.
            if (committing && isUnreachableError(error) && !commitNotSent(error)) {
              if (!changes.changedAny()) return result as T;
              throw new CommitUnknown('commit outcome unknown', { cause: error });
            }
            throw error;
          } finally {
            tx.close();
          }
        }),
        true,
      ),
    );
  }

  async dataVersion(): Promise<number | null> {
    // A pooled or remote connection's data_version does not track other writers reliably: callers poll slower.
    return null;
  }

  async close(): Promise<void> {
    this.client.close();
  }
}

/**
 * The libsql module, loaded without a diagnostic report. To pick its native package, libsql asks @neon-rs/load,
 * which calls process.report.getReport() only to learn whether libc is glibc: a full report (environment, shared
 * objects, network interfaces), ~7 ms of CPU and ~1.2 MiB at the start of every process that opens a database
 * (measured). libsql then corrects that pick with detect-libc, which reads /usr/bin/ldd, or runs getconf where
 * there is none. So while it loads, the report is empty: @neon-rs/load guesses musl, and detect-libc turns the
 * guess back to gnu where libc is glibc. Synchronous, so no other code runs before the real report is back.
 */
function loadLibsql(): typeof Database {
  const report = Object.getOwnPropertyDescriptor(process, 'report');
  if (report?.configurable) Object.defineProperty(process, 'report', { value: { getReport: () => ({}) }, configurable: true, enumerable: true });
  try {
    return createRequire(import.meta.url)('libsql') as typeof Database;
  } finally {
    if (report?.configurable) Object.defineProperty(process, 'report', report);
  }
}

/** Which driver an URL gets, unless forced (the contract suite runs both on a file). */
export type DriverChoice = 'auto' | 'embedded' | 'client';

/**
 * Open a connection for a database URL (`file:/path`, `:memory:`, `libsql://…`, `https://…`). @libsql/client is
 * loaded only for a URL that needs it: importing it costs every CLI command ~125 ms that the embedded default
 * never uses.
 */
export async function openSqlDriver(url: string, options: DriverOptions = {}): Promise<SqlDriver> {
  const choice = options.driver ?? 'auto';
  const isFile = url === ':memory:' || url.startsWith('file:');
  if (isFile && choice !== 'client') {
    const file = url === ':memory:' || url === 'file::memory:' ? ':memory:' : filePathOf(url);
    // Loaded here, not at import: the native module costs ~20 ms and ~8 MB, which a front door only pays when it opens a database.
    return new EmbeddedDriver(loadLibsql(), file, options);
  }
  const file = isFile ? filePathOf(url) : null;
  if (file) mkdirSync(path.dirname(file), { recursive: true });
  const { createClient } = await import('@libsql/client');
  const newClient = (): Client =>
    createClient({
      url: isFile ? url : remoteClientUrl(url),
      ...(options.authToken ? { authToken: options.authToken } : {}),
      // Applies the busy timeout to every pooled connection of a local file (stack.md §3).
      ...(isFile ? { timeout: busyTimeoutMs, concurrency: 1 } : {}),
    });
  return new ClientDriver(newClient, file ?? redactDatabaseUrl(url), file, options);
}

/**
 * The URL @libsql/client gets for a server: a `libsql://` URL speaks WebSockets (`wss://`, or `ws://` with
 * `?tls=0`), where the client on Node would pick HTTP. A runner sends many small statements, and each statement
 * of an interactive transaction is a round trip while it holds the server's write lock: one runner on a local
 * sqld ran 7.0–9.2 tasks/s over WebSockets against 4.2–5.7 over HTTP, and the chaos test's tasks were done
 * 2–13 s after its last kill against ~50 s. `http(s)://` URLs keep HTTP, for proxies that do not pass WebSockets.
 */
function remoteClientUrl(url: string): string {
  if (!url.startsWith('libsql://')) return url;
  const insecure = /[?&]tls=0(&|$)/.test(url);
  return `${insecure ? 'ws' : 'wss'}://${url.slice('libsql://'.length)}`;
}

function filePathOf(url: string): string {
  if (url.startsWith('file://')) return fileURLToPath(url);
  return url.slice('file:'.length);
}
