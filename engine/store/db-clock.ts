/**
 * The database's clock in SQL: leases and heartbeats are written and compared with it, inside the statement, so
 * every host sharing a database agrees on them whatever its own clock says (DESIGN §3).
 */

/** Now, in epoch milliseconds, by the database's clock. */
export const dbNowSql = `CAST(unixepoch('subsec') * 1000 AS INTEGER)`;
