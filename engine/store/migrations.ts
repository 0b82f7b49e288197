/**
 * Numbered schema migrations. Each runs once, inside the write transaction that records it, so two processes
 * starting at once on one database cannot both apply it.
 */
import { StoreError } from '../errors.js';
import type { SqlDriver, SqlExecutor } from './sql-driver.js';

/** Migration N is `migrations[N - 1]`; never edit one that has shipped, add the next. */
export const migrations: readonly string[][] = [
  [
    `CREATE TABLE tasks (
      id TEXT PRIMARY KEY,
      prompt TEXT NOT NULL,
      priority INTEGER NOT NULL,
      state TEXT NOT NULL,
      snapshot TEXT NOT NULL,
      fail_reason TEXT,
      error TEXT,
      agent TEXT NOT NULL,
      model TEXT,
      permission_mode TEXT,
      allowed_tools TEXT NOT NULL DEFAULT '[]',
      disallowed_tools TEXT NOT NULL DEFAULT '[]',
      working_directory TEXT NOT NULL,
      timeout_ms INTEGER NOT NULL,
      max_output_buffer INTEGER NOT NULL,
      max_budget_usd REAL,
      worktree INTEGER NOT NULL DEFAULT 0,
      continue_from TEXT,
      parent_task_id TEXT,
      retry_of TEXT,
      pending_deps INTEGER NOT NULL DEFAULT 0,
      start_delay_ms INTEGER NOT NULL DEFAULT 0,
      run_after INTEGER,
      additional_context TEXT,
      fork_session_id TEXT,
      owner TEXT,
      attempt INTEGER NOT NULL DEFAULT 0,
      lease_until INTEGER,
      session_id TEXT,
      exit_code INTEGER,
      cost_usd REAL,
      num_turns INTEGER,
      usage TEXT,
      result TEXT,
      resume_at INTEGER,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL,
      started_at INTEGER,
      ended_at INTEGER
    )`,
    // Claiming reads only this index: the best ready task is its first entry.
    `CREATE INDEX tasks_ready ON tasks (priority, created_at) WHERE state = 'ready'`,
    `CREATE INDEX tasks_state ON tasks (state, created_at)`,
    `CREATE INDEX tasks_owner ON tasks (owner) WHERE owner IS NOT NULL`,
    `CREATE INDEX tasks_created ON tasks (created_at)`,
    `CREATE TABLE task_deps (
      task_id TEXT NOT NULL REFERENCES tasks (id),
      depends_on TEXT NOT NULL REFERENCES tasks (id),
      PRIMARY KEY (task_id, depends_on)
    ) WITHOUT ROWID`,
    `CREATE INDEX task_deps_dependants ON task_deps (depends_on, task_id)`,
    // One row per attempt: who ran it, which process, how it ended, where its output is.
    `CREATE TABLE task_runs (
      task_id TEXT NOT NULL REFERENCES tasks (id),
      attempt INTEGER NOT NULL,
      node_id TEXT NOT NULL,
      host TEXT NOT NULL,
      pid INTEGER,
      pid_start INTEGER,
      session_id TEXT,
      log_path TEXT NOT NULL,
      output_bytes INTEGER NOT NULL DEFAULT 0,
      started_at INTEGER NOT NULL,
      ended_at INTEGER,
      outcome TEXT,
      exit_code INTEGER,
      cost_usd REAL,
      PRIMARY KEY (task_id, attempt)
    )`,
    // The recovery sweep looks at runs that have not ended.
    `CREATE INDEX task_runs_open ON task_runs (task_id, attempt) WHERE ended_at IS NULL`,
    // Every accepted lifecycle event, for status history and the inspector.
    `CREATE TABLE task_events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      task_id TEXT NOT NULL,
      at INTEGER NOT NULL,
      event TEXT NOT NULL,
      from_state TEXT,
      to_state TEXT NOT NULL,
      node_id TEXT,
      attempt INTEGER NOT NULL,
      detail TEXT
    )`,
    `CREATE INDEX task_events_task ON task_events (task_id, id)`,
    `CREATE TABLE nodes (
      id TEXT PRIMARY KEY,
      host TEXT NOT NULL,
      pid INTEGER NOT NULL,
      pid_start INTEGER,
      data_dir TEXT NOT NULL,
      version TEXT NOT NULL,
      autostarted INTEGER NOT NULL DEFAULT 0,
      started_at INTEGER NOT NULL,
      heartbeat_at INTEGER NOT NULL
    )`,
    // What a finished attempt left behind, for continueFrom and ResumeTask (SPEC §8).
    `CREATE TABLE checkpoints (
      task_id TEXT NOT NULL REFERENCES tasks (id),
      attempt INTEGER NOT NULL,
      created_at INTEGER NOT NULL,
      outcome TEXT NOT NULL,
      git_branch TEXT,
      git_sha TEXT,
      git_dirty TEXT,
      last_lines TEXT NOT NULL,
      error TEXT,
      session_id TEXT,
      PRIMARY KEY (task_id, attempt)
    )`,
    // Node-local actors (supervisor, slots) write their snapshots here for the inspector.
    `CREATE TABLE actor_snapshots (
      actor_id TEXT PRIMARY KEY,
      kind TEXT NOT NULL,
      node_id TEXT,
      snapshot TEXT NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
  ],
  // Durable timers and the event stream (DESIGN §2, §9). The per-task history moves into the events table.
  [
    `CREATE TABLE timers (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      actor_id TEXT NOT NULL,
      key TEXT NOT NULL,
      event TEXT NOT NULL,
      due_at INTEGER NOT NULL,
      attempt INTEGER,
      locked_by TEXT,
      locked_until INTEGER,
      created_at INTEGER NOT NULL,
      UNIQUE (actor_id, key)
    )`,
    `CREATE INDEX timers_due ON timers (due_at)`,
    `CREATE TABLE events (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      at INTEGER NOT NULL,
      actor_id TEXT NOT NULL,
      kind TEXT NOT NULL,
      type TEXT NOT NULL,
      from_state TEXT,
      to_state TEXT NOT NULL,
      cause TEXT NOT NULL,
      node_id TEXT,
      attempt INTEGER,
      detail TEXT
    )`,
    `CREATE INDEX events_actor ON events (actor_id, id)`,
    `INSERT INTO events (at, actor_id, kind, type, from_state, to_state, cause, node_id, attempt, detail)
       SELECT at, task_id, 'task', 'task:' || to_state, from_state, to_state, event, node_id, attempt, detail FROM task_events ORDER BY id`,
    `DROP TABLE task_events`,
    // Delays that earlier versions kept as columns and polled become timers.
    `INSERT INTO timers (actor_id, key, event, due_at, attempt, created_at)
       SELECT id, 'resume', '{"type":"RESUME_DUE"}', resume_at, attempt, updated_at FROM tasks WHERE state = 'paused' AND resume_at IS NOT NULL`,
    `INSERT INTO timers (actor_id, key, event, due_at, attempt, created_at)
       SELECT id, 'timeout', '{"type":"TIMEOUT"}', COALESCE(started_at, updated_at) + timeout_ms, attempt, updated_at FROM tasks WHERE state = 'running'`,
  ],
  // Schedules (SPEC §3–§5, DESIGN §6): the durable schedule actors, their run history, and the task link.
  [
    `CREATE TABLE schedules (
      id TEXT PRIMARY KEY,
      prompt TEXT NOT NULL,
      type TEXT NOT NULL,
      cron_expression TEXT,
      scheduled_at INTEGER,
      timezone TEXT NOT NULL,
      missed_run_policy TEXT NOT NULL,
      priority INTEGER NOT NULL,
      working_directory TEXT NOT NULL,
      agent TEXT NOT NULL,
      max_runs INTEGER,
      expires_at INTEGER,
      after_schedule_id TEXT,
      state TEXT NOT NULL,
      snapshot TEXT NOT NULL,
      runs INTEGER NOT NULL DEFAULT 0,
      next_run_at INTEGER,
      cancel_reason TEXT,
      created_at INTEGER NOT NULL,
      updated_at INTEGER NOT NULL
    )`,
    `CREATE INDEX schedules_state ON schedules (state, created_at)`,
    // One row per slot: the UNIQUE key is what makes a slot fire once however many nodes are up.
    `CREATE TABLE schedule_runs (
      schedule_id TEXT NOT NULL REFERENCES schedules (id),
      scheduled_for INTEGER NOT NULL,
      fired_at INTEGER NOT NULL,
      task_id TEXT,
      outcome TEXT NOT NULL,
      detail TEXT,
      UNIQUE (schedule_id, scheduled_for)
    )`,
    `ALTER TABLE tasks ADD COLUMN schedule_id TEXT`,
    `CREATE INDEX tasks_schedule ON tasks (schedule_id, created_at) WHERE schedule_id IS NOT NULL`,
  ],
  // Cost and tokens (issue 12): per-run usage in real columns, the task's sums over its runs next to its cost,
  // and the JSON `usage` of earlier versions carried over (it held the last run's counts) and dropped.
  [
    ...['input_tokens', 'output_tokens', 'cache_creation_tokens', 'cache_read_tokens'].flatMap((column) => [
      `ALTER TABLE task_runs ADD COLUMN ${column} INTEGER`,
      `ALTER TABLE tasks ADD COLUMN ${column} INTEGER`,
    ]),
    `ALTER TABLE task_runs ADD COLUMN num_turns INTEGER`,
    `ALTER TABLE task_runs ADD COLUMN model TEXT`,
    // The model the agent reported; `model` stays the one the task asked for (a retry asks for it again).
    `ALTER TABLE tasks ADD COLUMN model_used TEXT`,
    // The step that ended a task's latest run wrote its usage and turns on the task: they are that run's.
    `UPDATE task_runs SET
       input_tokens = (SELECT json_extract(t.usage, '$.input_tokens') FROM tasks t WHERE t.id = task_runs.task_id AND json_valid(t.usage)),
       output_tokens = (SELECT json_extract(t.usage, '$.output_tokens') FROM tasks t WHERE t.id = task_runs.task_id AND json_valid(t.usage)),
       cache_creation_tokens = (SELECT json_extract(t.usage, '$.cache_creation_input_tokens') FROM tasks t WHERE t.id = task_runs.task_id AND json_valid(t.usage)),
       cache_read_tokens = (SELECT json_extract(t.usage, '$.cache_read_input_tokens') FROM tasks t WHERE t.id = task_runs.task_id AND json_valid(t.usage)),
       num_turns = (SELECT t.num_turns FROM tasks t WHERE t.id = task_runs.task_id)
     WHERE ended_at IS NOT NULL AND attempt = (SELECT t.attempt FROM tasks t WHERE t.id = task_runs.task_id)`,
    // Only what the agent reported would be better, but older runs did not keep it; the requested model is the best guess.
    `UPDATE task_runs SET model = (SELECT t.model FROM tasks t WHERE t.id = task_runs.task_id) WHERE ended_at IS NOT NULL`,
    `ALTER TABLE tasks DROP COLUMN usage`,
    // A task's cost was its latest run's; now it is the sum over its runs (interrupted ones cost money too).
    `UPDATE tasks SET (cost_usd, num_turns, input_tokens, output_tokens, cache_creation_tokens, cache_read_tokens) = (
       SELECT COALESCE(SUM(r.cost_usd), tasks.cost_usd), COALESCE(SUM(r.num_turns), tasks.num_turns), SUM(r.input_tokens),
              SUM(r.output_tokens), SUM(r.cache_creation_tokens), SUM(r.cache_read_tokens)
       FROM task_runs r WHERE r.task_id = tasks.id)`,
    // UsageSummary reads runs by when they ended.
    `CREATE INDEX task_runs_ended ON task_runs (ended_at) WHERE ended_at IS NOT NULL`,
  ],
  // Worktrees: one row per git worktree made for a task; the tasks that run in it name it.
  [
    `CREATE TABLE worktrees (
      path TEXT PRIMARY KEY,
      repo TEXT NOT NULL,
      branch TEXT NOT NULL,
      base_branch TEXT,
      base_sha TEXT NOT NULL,
      task_id TEXT NOT NULL,
      created_at INTEGER NOT NULL,
      merged_at INTEGER,
      removed_at INTEGER
    )`,
    `ALTER TABLE tasks ADD COLUMN worktree_path TEXT`,
    `CREATE INDEX tasks_worktree ON tasks (worktree_path) WHERE worktree_path IS NOT NULL`,
  ],
  // Usage limits and budgets (SPEC §7, §12): holds on an agent and account while its limit is in force, a
  // schedule's daily budget (a day's spend is summed on task_runs_ended, made with the token columns).
  [
    `CREATE TABLE usage_holds (
      agent TEXT NOT NULL,
      account TEXT NOT NULL,
      until INTEGER NOT NULL,
      limit_type TEXT,
      task_id TEXT,
      created_at INTEGER NOT NULL,
      PRIMARY KEY (agent, account)
    ) WITHOUT ROWID`,
    `ALTER TABLE schedules ADD COLUMN daily_budget_usd REAL`,
  ],
  // 7: a task's output in the database, in bounded chunks, so a front door on another host can read and follow
  // it. `file_end` is how far into its host's log file a chunk reaches, so a runner that adopts a run ships on
  // from where the last one stopped.
  [
    `CREATE TABLE task_output (
      seq INTEGER PRIMARY KEY AUTOINCREMENT,
      task_id TEXT NOT NULL,
      host TEXT NOT NULL,
      file_end INTEGER NOT NULL,
      bytes INTEGER NOT NULL,
      text TEXT NOT NULL
    )`,
    `CREATE INDEX task_output_by_task ON task_output (task_id, seq)`,
  ],
  // 8: listings are ordered by (created_at, id), and the tasks of one graph or pipeline share a created_at: with
  // the id in the index, a page of 50 of 10,000 tasks reads 50 rows instead of sorting every tie (1.5 → 0.1 ms).
  [
    `DROP INDEX tasks_created`,
    `CREATE INDEX tasks_created ON tasks (created_at, id)`,
    `DROP INDEX tasks_state`,
    `CREATE INDEX tasks_state ON tasks (state, created_at, id)`,
  ],
  // 9: every firing looks for the schedules that follow the one that fired. Without this index that read walked
  // every active schedule, so a burst of N firings cost N² row reads.
  [`CREATE INDEX schedules_after ON schedules (after_schedule_id) WHERE after_schedule_id IS NOT NULL`],
];

/**
 * Bring the schema up to date; safe to call from many processes at once. An up-to-date database is only read,
 * so opening it never waits for another process's writer; the write lock is taken only to migrate.
 */
export async function migrate(driver: SqlDriver, now: number): Promise<number> {
  const current = await schemaVersion(driver);
  refuseNewer(driver, current);
  if (current === migrations.length) return current;
  return driver.write(async (tx) => {
    await tx.run(`CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)`);
    // Again under the lock: another process may have migrated since the read above.
    const locked = await schemaVersion(tx);
    refuseNewer(driver, locked);
    for (let version = locked + 1; version <= migrations.length; version++) {
      for (const statement of migrations[version - 1] ?? []) await tx.run(statement);
      await tx.run(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, [version, now]);
    }
    return migrations.length;
  });
}

/** The applied schema version; 0 for a new database (no schema_migrations table yet). A plain read. */
async function schemaVersion(db: SqlExecutor): Promise<number> {
  const table = await db.all(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'`);
  if (table.length === 0) return 0;
  const rows = await db.all(`SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations`);
  return Number(rows[0]?.version ?? 0);
}

function refuseNewer(driver: SqlDriver, version: number): void {
  if (version <= migrations.length) return;
  throw new StoreError(
    'newer_schema',
    `database schema version ${version} of ${driver.label} is newer than this delegate (${migrations.length}): upgrade delegate before using this database`,
  );
}
