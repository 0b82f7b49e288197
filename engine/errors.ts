/**
 * Errors that reach users. Each carries a string code so front doors decide how to show it in one place:
 * usage errors are one line without a stack (CLI exit 2, MCP `isError: true`).
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
