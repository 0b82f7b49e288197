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
  // It answers a few calls a minute and idles in between, in every Claude Code session: V8's optimizing compiler
  // (TurboFan) buys it little speed and costs memory, and compiling on a second thread competes for the CPU.
  // Measured over 1,000 rapid calls, interleaved: resident memory after them 62-63 MiB against 86, idle 60 against
  // 64.5; round-trip p99 of DelegateTask 3.5-4.5 ms against 5.6-6.1, of TaskStatus 1.9-2.1 against 4.2, at
  // equal p50 for DelegateTask (TaskStatus's p50 0.5 ms against 0.35: its code runs unoptimized).
  v8.setFlagsFromString('--no-opt');
  v8.setFlagsFromString('--optimize-for-size');
  const { loadMcpBundle } = await import(new URL('../dist/adapters/mcp/bundle-loader.js', import.meta.url).href);
  const { runMcpStart } = loadMcpBundle(process.env);
  process.exitCode = await runMcpStart({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
} else {
  const { main: run } = await import(main.href);
  await run();
}
