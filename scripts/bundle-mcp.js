#!/usr/bin/env node
/**
 * Bundles `delegate mcp start` (dist/adapters/mcp/start.js and everything it imports) into one CommonJS file,
 * dist/bundle/mcp-start.cjs, which bin/delegate.js runs through adapters/mcp/bundle-loader.ts. MCP clients start
 * this server at every session; loading ~350 ES modules one by one (zod alone is ~150 files) cost more than
 * running them. CommonJS, because only a classic script can be compiled with V8's code cache on Node 20.
 * Run by `npm run build` after tsc, from the compiled dist/, so it bundles exactly what tsc emitted.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

await esbuild.build({
  entryPoints: [path.join(root, 'dist/adapters/mcp/start.js')],
  // Two levels under the root like every compiled engine module, so paths derived from a module's URL
  // (runner-control's cliEntry) resolve alike.
  outfile: path.join(root, 'dist/bundle/mcp-start.cjs'),
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'cjs',
  // The native driver stays a package of its own; @libsql/client is only loaded for remote URLs.
  external: ['libsql', '@libsql/client'],
  // A classic script has no import.meta: the loader passes the bundle's URL in under this name.
  define: { 'import.meta.url': '__bundleUrl' },
  // import() of those two becomes require() (both ship CommonJS): import() in a vm.Script needs Node's
  // experimental vm loader, which prints a warning on stderr.
  supported: { 'dynamic-import': false },
  logLevel: 'warning',
});
