#!/usr/bin/env node
// The published entry: the compiled CLI. `npm ci` builds it (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
// Keep V8's young generation at its first size (1 MiB a semi-space) instead of letting it grow to 16: measured
// on the MCP server and the runner, it cut ~12 MiB (runner) to ~28 MiB (server after 1,000 calls) of resident
// memory at no cost in CPU or latency, since what they allocate per call or run is short-lived. Set before any
// module loads; the flag holds for the pool's worker threads too.
v8.setFlagsFromString('--semi-space-growth-factor=1');

const main = new URL('../dist/adapters/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('delegate is not built: run `npm run build` (or `npm ci`) in the delegate folder\n');
  process.exit(1);
}
const args = process.argv.slice(2);
if (args.length === 2 && args[0] === 'mcp' && args[1] === 'start') {
  // What MCP clients start at every session: straight to the server, without loading every CLI command, from
  // its single-file bundle (see scripts/bundle-mcp.js).
  const { loadMcpBundle } = await import(new URL('../dist/adapters/mcp/bundle-loader.js', import.meta.url).href);
  const { runMcpStart } = loadMcpBundle(process.env);
  process.exitCode = await runMcpStart({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
} else {
  const { main: run } = await import(main.href);
  await run();
}
