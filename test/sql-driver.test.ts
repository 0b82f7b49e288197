/**
 * The two SQL drivers on a local file: rows are plain objects by column name whatever the driver, and the
 * embedded driver's statements, prepared once, still answer rightly after another connection changed the schema.
 */
import { execFileSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openSqlDriver, together, type SqlDriver, type SqlExecutor } from '../engine/store/sql-driver.js';
import { eventually, removeDir, tempDir } from './helpers.js';
import { sqldAvailable, startSqld, type SqldServer } from './sqld.js';

let dir: string;
const opened: SqlDriver[] = [];

beforeEach(() => {
  dir = tempDir('delegate-sql-driver-');
});

afterEach(async () => {
  for (const driver of opened.splice(0)) await driver.close();
  removeDir(dir);
});

async function open(driver: 'embedded' | 'client'): Promise<SqlDriver> {
  const opening = await openSqlDriver(`file:${path.join(dir, 'test.db')}`, { driver });
  await opening.open();
  opened.push(opening);
  return opening;
}

describe.each(['embedded', 'client'] as const)('%s driver', (kind) => {
  it('returns rows as objects by column name, and counts or returns the rows of a write with RETURNING', async () => {
    const db = await open(kind);
    await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, n REAL)');
    await db.run('INSERT INTO t (id, name, n) VALUES (?, ?, ?), (?, ?, ?)', [1, 'one', 1.5, 2, null, 2]);
    expect(await db.all('SELECT * FROM t ORDER BY id')).toEqual([
      { id: 1, name: 'one', n: 1.5 },
      { id: 2, name: null, n: 2 },
    ]);
    expect(await db.all('SELECT count(*) AS n, max(n) AS top FROM t')).toEqual([{ n: 2, top: 2 }]);
    expect(await db.all('SELECT * FROM t WHERE id = 3')).toEqual([]);
    // A write that returns rows is counted by run and answered by all.
    expect(await db.run('UPDATE t SET n = n + 1 RETURNING id')).toEqual({ changes: 2 });
    expect(await db.all('UPDATE t SET n = 0 WHERE id = 1 RETURNING id, n')).toEqual([{ id: 1, n: 0 }]);
  });

  exerciseTogether(() => open(kind));
});

/**
 * `together` in a write transaction: the statements' results in the order given, all of it or none of it. A
 * failure is thrown only once every other chain has ended: one still running after the rollback would write
 * outside the transaction (on the embedded driver, in autocommit).
 */
function exerciseTogether(connect: () => Promise<SqlDriver>): void {
  it('sends statements of a transaction together and answers each in order', async () => {
    const db = await connect();
    await db.run('CREATE TABLE pipelined (id INTEGER PRIMARY KEY, name TEXT)');
    const [inserted, updated, rows] = await db.write((tx) =>
      together([
        tx.all("INSERT INTO pipelined (id, name) VALUES (1, 'one'), (2, 'two') RETURNING id"),
        tx.run("UPDATE pipelined SET name = 'uno' WHERE id = 1"),
        tx.all('SELECT name FROM pipelined ORDER BY id'),
      ]),
    );
    expect(inserted.map((row) => row.id).sort()).toEqual([1, 2]);
    expect(updated).toEqual({ changes: 1 });
    expect(rows).toEqual([{ name: 'uno' }, { name: 'two' }]);
  });

  it('rolls back all of a transaction whose statement sent together failed, a slower chain included', async () => {
    const db = await connect();
    await db.run('CREATE TABLE rolled (id INTEGER PRIMARY KEY)');
    const slower = async (tx: SqlExecutor): Promise<void> => {
      await tx.run('INSERT INTO rolled (id) VALUES (1)');
      await new Promise((resolve) => setTimeout(resolve, 50));
      await tx.run('INSERT INTO rolled (id) VALUES (2)').catch(() => undefined);
    };
    let slow: Promise<void> = Promise.resolve();
    await expect(db.write((tx) => together([(slow = slower(tx)), tx.run('INSERT INTO no_such_table (id) VALUES (1)')]))).rejects.toThrow(/no_such_table/);
    await slow;
    expect(await db.all('SELECT id FROM rolled')).toEqual([]);
  });
}

if (sqldAvailable) {
  describe.each(['libsql', 'http'] as const)('client driver on sqld, %s://', (protocol) => {
    let server: SqldServer;
    beforeEach(async () => {
      server = await startSqld();
    });
    afterEach(async () => {
      for (const driver of opened.splice(0)) await driver.close();
      await server.cleanup();
    });
    exerciseTogether(async () => {
      const driver = await openSqlDriver(protocol === 'libsql' ? server.url : server.httpUrl);
      await driver.open();
      opened.push(driver);
      return driver;
    });
  });
}

describe('embedded driver', () => {
  // In a fresh process (of the build), since this one may have loaded libsql already.
  it('loads libsql without a diagnostic report, and leaves process.report as it was', () => {
    const driverUrl = new URL('../dist/engine/store/sql-driver.js', import.meta.url).href;
    const script = `
      const { openSqlDriver } = await import(${JSON.stringify(driverUrl)});
      const db = await openSqlDriver(':memory:');
      await db.open();
      const rows = await db.all('SELECT 1 AS one');
      await db.close();
      console.log(JSON.stringify({ rows, reported: process.moduleLoadList.includes('Internal Binding report'), report: typeof process.report.getReport }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ rows: [{ one: 1 }], reported: false, report: 'function' });
  });

  // It keeps each statement prepared, with the names of its columns.
  it('a statement it prepared before another connection added a column returns that column too', async () => {
    const db = await open('embedded');
    await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT)');
    await db.run("INSERT INTO t (id, name) VALUES (1, 'one')");
    expect(await db.all('SELECT * FROM t')).toEqual([{ id: 1, name: 'one' }]);
    const other = await open('embedded');
    await other.run("ALTER TABLE t ADD COLUMN added TEXT NOT NULL DEFAULT 'yes'");
    expect(await db.all('SELECT * FROM t')).toEqual([{ id: 1, name: 'one', added: 'yes' }]);
  });

  it('names the columns of a statement it prepared before another connection dropped one and added another', async () => {
    const db = await open('embedded');
    await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, extra TEXT)');
    await db.run("INSERT INTO t (id, name, extra) VALUES (1, 'one', 'e')");
    expect(await db.all('SELECT * FROM t')).toEqual([{ id: 1, name: 'one', extra: 'e' }]);
    const other = await open('embedded');
    await other.run('ALTER TABLE t DROP COLUMN name');
    await other.run("ALTER TABLE t ADD COLUMN added TEXT NOT NULL DEFAULT 'yes'");
    // As many columns as before: only the schema's version tells. A write transaction always looks.
    expect(await db.write((tx) => tx.all('SELECT * FROM t'))).toEqual([{ id: 1, extra: 'e', added: 'yes' }]);
    expect(await db.all('SELECT * FROM t')).toEqual([{ id: 1, extra: 'e', added: 'yes' }]);
  });

  it('checkpoints the log once idle after some commits, not in a commit', async () => {
    const db = await open('embedded');
    const file = path.join(dir, 'test.db');
    await db.run('CREATE TABLE t (id INTEGER PRIMARY KEY, body BLOB)');
    const insert = (i: number) => db.write((tx) => tx.run('INSERT INTO t (body) VALUES (?)', [new Uint8Array(8000).fill(i)]));
    // 31 commits of ~8 KB (with the CREATE, one short of the 32 after which it checkpoints when idle), ~90 pages:
    // far from the 4000 at which a COMMIT would checkpoint, however long this takes.
    for (let i = 0; i < 30; i++) await insert(i);
    await new Promise((resolve) => setTimeout(resolve, 400));
    // In WAL mode the database file only changes when a checkpoint copies the pages into it.
    expect(statSync(file).size).toBeLessThan(30 * 8000);
    await insert(30);
    await eventually(() => statSync(file).size >= 31 * 8000, 5_000, 50);
    expect(await db.all('SELECT count(*) AS n FROM t')).toEqual([{ n: 31 }]);
  });
});
