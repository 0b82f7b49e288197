/**
 * Errors that reach users. Each carries a string code so front doors decide how to show it in one place:
 * usage errors are one line without a stack (CLI exit 2, MCP `isError: true`); store errors too, with CLI exit 1.
 */

/** Codes of errors a user can cause and fix. */
export type UsageErrorCode = 'invalid_input' | 'invalid_config' | 'not_found' | 'conflict';

/** A mistake of the caller: bad input, unknown id, a task in the wrong state. The message is one line. */
export class UsageError extends Error {
  constructor(
    readonly code: UsageErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** True for errors whose message is meant for the user as it is. */
export function isUsageError(error: unknown): error is UsageError {
  return error instanceof UsageError;
}

/**
 * Codes of database errors a user must act on: `locked` (another process held the write lock until the wait
 * gave up), `not_a_database` (the file is not SQLite, or is corrupt), `cannot_open` (the file or its directory
 * cannot be created or opened: a directory in its place, no permission), `newer_schema` (a newer delegate migrated
 * it), `unreachable` (the database server could not be reached until the wait gave up; nothing was written), and
 * `commit_unknown` (the connection was lost while a commit was on its way: it may or may not have been applied).
 */
export type StoreErrorCode = 'cannot_open' | 'locked' | 'not_a_database' | 'newer_schema' | 'unreachable' | 'commit_unknown';

/** A database the engine cannot use, for a reason outside it. The message is one line naming the database and the fix. */
export class StoreError extends Error {
  constructor(
    readonly code: StoreErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StoreError';
  }
}

/** True for database errors whose message is meant for the user as it is. */
export function isStoreError(error: unknown): error is StoreError {
  return error instanceof StoreError;
}

/**
 * True for a write whose COMMIT went unanswered (a server that stopped at that moment): it may or may not have
 * been saved. A front door tells its user so; a runner looks at what the write would have left and carries on.
 */
export function isCommitUnknown(error: unknown): error is StoreError {
  return error instanceof StoreError && error.code === 'commit_unknown';
}

/**
 * What `write` resolves to or, when its COMMIT went unanswered, what `instead` does: a look at what the write
 * would have left, the write again where it means the same done twice, or a value that says so. Other errors
 * go through.
 */
export async function ifCommitUnknown<T, U = T>(write: Promise<T>, instead: () => U | Promise<U>): Promise<T | U> {
  try {
    return await write;
  } catch (error) {
    if (!isCommitUnknown(error)) throw error;
    return instead();
  }
}
