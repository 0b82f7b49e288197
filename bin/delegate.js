#!/usr/bin/env node
// The published entry: the compiled CLI. `npm ci` builds it (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import v8 from 'node:v8';
// Two V8 settings for every delegate process, set before any module loads (they hold for the pool's worker
// threads too), each measured by interleaved A/B runs on this 2-core machine:
// - the young generation stays at its first size (1 MiB a semi-space) instead of growing to 16 MiB: what these
//   processes allocate per call or per run dies young. MCP server after 1,000 calls 122 -> 94 MiB, runner held
//   86-88 -> 80 MiB, at equal CPU per run within this VM's noise.
// - no optimizing compiler (TurboFan). The runner's JS is glue between native calls (SQL, system calls, messages),
//   and compiling on a background thread competed with it for the two cores: runner CPU per instant task
//   10.8-12.0 ms against 12.6-13.0 (200 and 800 tasks), 1,000 cron fires p99 lag 645-650 ms against 840-910 and
//   ~1,540 fires/s against ~1,150, 8-15 MiB less memory; the DAG of 1,000 tasks within its noise (runner CPU per
//   completion 13.0-13.1 ms against 12.9-14.2).
v8.setFlagsFromString('--semi-space-growth-factor=1');
v8.setFlagsFromString('--no-opt');

const main = new URL('../dist/adapters/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('delegate is not built: run `npm run build` (or `npm ci`) in the delegate folder\n');
  process.exit(1);
}
const args = process.argv.slice(2);
if (args.length === 2 && args[0] === 'mcp' && args[1] === 'start') {
  // What MCP clients start at every session: straight to the server, without loading every CLI command, from
  // its single-file bundle (see scripts/bundle-mcp.js).
  // It idles between a few calls a minute, in every Claude Code session: memory matters more than speed. With no
  // TurboFan (above) and V8 tuned for size (~1 MiB of it), resident memory after 1,000 rapid calls was 62-63 MiB
  // against 86, idle 60.4 against 64.5; p99 of DelegateTask 3.5-4.5 ms against 5.6-6.1, of TaskStatus one id
  // 1.6-2.1 against 2.5-4.2, while TaskStatus's p50 rose from 0.35 to 0.5 ms.
  v8.setFlagsFromString('--optimize-for-size');
  const { loadMcpBundle } = await import(new URL('../dist/adapters/mcp/bundle-loader.js', import.meta.url).href);
  const { runMcpStart } = loadMcpBundle(process.env);
  process.exitCode = await runMcpStart({ stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, env: process.env, cwd: process.cwd() });
} else {
  const { main: run } = await import(main.href);
  await run();
}
