/**
 * Exit codes (SPEC §5) of every delegate command, `mcp start` included. `interrupted` is what a shell reports for
 * a command ended by Ctrl-C (128 + SIGINT's number 2): a command that catches SIGINT to say something first exits
 * with it, so callers still see an interrupt (bash's `$?`, make, CI runners stop the way they would for an
 * uncaught SIGINT). Apart from the CLI's context, so the MCP entry can use them without loading clipanion.
 */
export const exitCode = { ok: 0, failed: 1, usage: 2, interrupted: 130 } as const;
