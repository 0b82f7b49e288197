#!/usr/bin/env node
// The published entry: the compiled CLI. `npm ci` builds it (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';

const main = new URL('../dist/adapters/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('delegate is not built: run `npm run build` (or `npm ci`) in the delegate folder\n');
  process.exit(1);
}
// Before any other module of delegate loads (see engine/v8-settings.ts).
const { applyV8Settings } = await import(new URL('../dist/engine/v8-settings.js', import.meta.url).href);
applyV8Settings();
const args = process.argv.slice(2);
if (args.length === 2 && args[0] === 'mcp' && args[1] === 'start') {
  // What MCP clients start at every session: straight to the server, without loading every CLI command, from
  // its single-file bundle (see scripts/bundle-mcp.js).
  // It idles between a few calls a minute, in every Claude Code session: memory matters more than speed. With no
  // TurboFan (engine/v8-settings.ts) and V8 tuned for size (~1 MiB of it), resident memory after 1,000 rapid
  // calls was 62-63 MiB against 86, idle 60.4 against 64.5; p99 of DelegateTask 3.5-4.5 ms against 5.6-6.1, of
  // TaskStatus one id 1.6-2.1 against 2.5-4.2, while TaskStatus's p50 rose from 0.35 to 0.5 ms.
  v8.setFlagsFromString('--optimize-for-size');
  const { loadMcpBundle } = await import(new URL('../dist/adapters/mcp/bundle-loader.js', import.meta.url).href);
  const { runMcpStart } = loadMcpBundle(process.env);
  process.exitCode = await runMcpStart({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
} else {
  const { main: run } = await import(main.href);
  await run();
}
