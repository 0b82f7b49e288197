/**
 * Runs the single-file bundle of `delegate mcp start` (scripts/bundle-mcp.js) with V8's code cache, kept in the
 * data dir: compiling the ~1.4 MB bundle is most of what is left of the server's start once its modules are one
 * file. The cache is only a speed-up: a missing, stale or unwritable one just means compiling from source.
 */
import { mkdirSync, readFileSync, readdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import vm from 'node:vm';
import type * as McpStart from './start.js';

/** The bundle, two levels under the package root like the module it was built from. */
export const mcpBundlePath = fileURLToPath(new URL('../../bundle/mcp-start.cjs', import.meta.url));

/** How long after start the cache is written: by then the server has compiled what answering a client needs. */
const cacheAfterMs = 1_000;

/**
 * The data dir as engine/config.ts resolves it, without loading the config (and its imports) before the bundle:
 * a wrong guess only misplaces the cache.
 */
function cacheDir(env: NodeJS.ProcessEnv): string {
  return path.join(path.resolve(env.DELEGATE_DATA_DIR?.trim() || path.join(os.homedir(), '.delegate')), 'cache');
}

/** Load the bundle's exports (what start.ts exports), compiled from the cache when one fits. */
export function loadMcpBundle(env: NodeJS.ProcessEnv, bundle: string = mcpBundlePath): typeof McpStart {
  const source = readFileSync(bundle, 'utf8');
  // V8 checks a cache against the source's length only, so the name carries the build (size and mtime) too.
  const stat = statSync(bundle);
  const dir = cacheDir(env);
  const name = `mcp-start-${process.versions.v8}-${stat.size}-${Math.trunc(stat.mtimeMs)}.bin`;
  let cachedData: Buffer | undefined;
  try {
    cachedData = readFileSync(path.join(dir, name));
  } catch {
    cachedData = undefined;
  }
  // The bundle is a function expression already (scripts/bundle-mcp.js): wrapping it here would keep a second copy.
  const script = new vm.Script(source, {
    filename: bundle,
    ...(cachedData ? { cachedData } : {}),
  });
  const module = { exports: {} as typeof McpStart };
  const run = script.runInThisContext() as (...args: unknown[]) => void;
  run(module.exports, createRequire(bundle), module, bundle, path.dirname(bundle), pathToFileURL(bundle).href);
  if (!cachedData || script.cachedDataRejected) {
    // Or at exit, for a server that ends sooner (a client that only lists the tools).
    const save = (): void => {
      clearTimeout(timer);
      process.off('exit', save);
      saveCache(script, dir, name);
    };
    const timer = setTimeout(save, cacheAfterMs).unref();
    process.once('exit', save);
  }
  return module.exports;
}

function saveCache(script: vm.Script, dir: string, name: string): void {
  try {
    mkdirSync(dir, { recursive: true });
    const temporary = path.join(dir, `${name}.${process.pid}.tmp`);
    writeFileSync(temporary, script.createCachedData());
    // Renamed into place, so a concurrent start reads a whole cache or none.
    renameSync(temporary, path.join(dir, name));
    // Caches of earlier builds would only pile up.
    for (const entry of readdirSync(dir)) {
      if (entry.startsWith('mcp-start-') && entry !== name && !entry.endsWith('.tmp')) unlinkSync(path.join(dir, entry));
    }
  } catch {
    // Only a speed-up: the next start compiles from source again.
  }
}
