#!/usr/bin/env node
// The published entry: the compiled CLI. `npm ci` builds it (the `prepare` script).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const main = new URL('../dist/adapters/cli/main.js', import.meta.url);
if (!existsSync(fileURLToPath(main))) {
  process.stderr.write('delegate is not built: run `npm run build` (or `npm ci`) in the delegate folder\n');
  process.exit(1);
}
const { main: run } = await import(main.href);
await run();
