#!/usr/bin/env node
/**
 * Bundles `delegate mcp start` (dist/adapters/mcp/start.js and everything it imports) into one CommonJS file,
 * dist/bundle/mcp-start.cjs, which bin/delegate.js runs through adapters/mcp/bundle-loader.ts. MCP clients start
 * this server at every session; loading ~350 ES modules one by one (zod alone is ~150 files) cost more than
 * running them. CommonJS, because only a classic script can be compiled with V8's code cache on Node 20.
 * Run by `npm run build` after tsc, from the compiled dist/, so it bundles exactly what tsc emitted.
 *
 * The server keeps the bundle's source in memory for as long as it runs (V8 compiles functions lazily from it),
 * so the file is the function the loader calls, not a module it wraps in a second string, and it is ASCII
 * without comments: one byte a character, where a single em dash in a comment made V8 keep all of it at two.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as esbuild from 'esbuild';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

const outfile = path.join(root, 'dist/bundle/mcp-start.cjs');

/**
 * Modules the server never runs, left out of the bundle: 620 KB of its 1.37 MB, and what their top levels build
 * at every start. The server keeps the bundle's source in memory for as long as it runs, and idles in every
 * Claude Code session. Each stand-in throws if it is ever reached, so a change in the SDK that starts using one
 * fails loudly (the MCP tests run this bundle) instead of misbehaving.
 * - zod's error messages in 47 languages other than English (`z.locales`): the server never switches.
 * - Zod 3 and its JSON Schema converter: the SDK takes either Zod; every schema here is Zod 4.
 * - Ajv: the SDK validates only elicitation results with it, which this server never asks for (server.ts
 *   passes its own validator, so the SDK's default is never built).
 */
const neverRun = (what) => `throw new Error(${JSON.stringify(`delegate's MCP bundle leaves out ${what} (scripts/bundle-mcp.js)`)});`;
const leftOut = [
  { filter: /^\.\.\/locales\/index\.js$/, importer: /[\\/]zod[\\/]v4[\\/]/, contents: `export { default as en } from '../locales/en.js';` },
  { filter: /^zod\/v3$/, importer: /[\\/]@modelcontextprotocol[\\/]sdk[\\/]/, contents: `export function object() { ${neverRun('Zod 3')} }` },
  { filter: /^zod-to-json-schema$/, importer: /[\\/]@modelcontextprotocol[\\/]sdk[\\/]/, contents: `export function zodToJsonSchema() { ${neverRun('zod-to-json-schema (Zod 3)')} }` },
  { filter: /^\.\.\/validation\/ajv-provider\.js$/, importer: /[\\/]@modelcontextprotocol[\\/]sdk[\\/]/, contents: `export class AjvJsonSchemaValidator { constructor() { ${neverRun('Ajv')} } }` },
];
const used = new Set();
const leaveOut = {
  name: 'leave-out',
  setup(build) {
    for (const [index, { filter, importer }] of leftOut.entries()) {
      build.onResolve({ filter }, (args) => {
        if (!importer.test(args.importer)) return undefined;
        used.add(index);
        return { path: String(index), namespace: 'left-out', pluginData: args.resolveDir };
      });
    }
    build.onLoad({ filter: /.*/, namespace: 'left-out' }, (args) => ({ contents: leftOut[Number(args.path)].contents, resolveDir: args.pluginData, loader: 'js' }));
  },
};

await esbuild.build({
  entryPoints: [path.join(root, 'dist/adapters/mcp/start.js')],
  // Two levels under the root like every compiled engine module, so paths derived from a module's URL
  // (runner-control's cliEntry) resolve alike.
  outfile,
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
  // The parameters adapters/mcp/bundle-loader.ts passes; the file is one function expression.
  banner: { js: '(function (exports, require, module, __filename, __dirname, __bundleUrl) {' },
  footer: { js: '\n})' },
  // Drops the comments; names stay, so stack traces still say which function.
  minifyWhitespace: true,
  charset: 'ascii',
  logLevel: 'warning',
  plugins: [leaveOut],
});

// An SDK or zod update that moved one of them would otherwise quietly put it back.
const unused = leftOut.filter((_, index) => !used.has(index));
if (unused.length > 0) throw new Error(`scripts/bundle-mcp.js: nothing imported ${unused.map((entry) => entry.filter).join(', ')} any more: update leftOut`);

// charset escapes strings and identifiers, but not the text of a String.raw template.
const source = readFileSync(outfile, 'latin1');
const offset = source.search(/[^\x00-\x7f]/);
if (offset !== -1) {
  throw new Error(`${outfile} has a non-ASCII character at offset ${offset} (${JSON.stringify(source.slice(Math.max(0, offset - 40), offset + 40))}): write it as a \\u escape in the source`);
}
