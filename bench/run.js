/**
 * `npm run bench`: every benchmark in sequence, each in its own Node process, one table each. Every table
 * compares against a baseline measured in the same run (ratios, never timed assertions). Exits 0 unless a
 * benchmark crashed. Needs the compiled engine (`npm run bench` builds it first).
 */
import { spawn } from 'node:child_process';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const benchmarks = ['throughput.js', 'dag.js', 'recovery.js', 'schedules.js', 'ramp.js', 'hosts.js', 'mcp.js'];

const load = () => os.loadavg().map((value) => value.toFixed(2)).join(' ');
process.stdout.write(
  `## delegate benchmarks — node ${process.version}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, load average ${load()}\n\n`,
);

const failed = [];
const started = performance.now();
for (const file of benchmarks) {
  const t0 = performance.now();
  const code = await new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(here, file)], { stdio: 'inherit' });
    child.once('exit', (exitCode, signal) => resolve(exitCode ?? (signal ? 1 : 0)));
  });
  if (code !== 0) {
    failed.push(file);
    process.stdout.write(`!! bench/${file} crashed (exit ${code}); see the error above\n\n`);
  } else {
    process.stdout.write(`(bench/${file}: ${((performance.now() - t0) / 1000).toFixed(1)} s)\n\n`);
  }
}
process.stdout.write(`all benchmarks: ${((performance.now() - started) / 1000).toFixed(1)} s, load average now ${load()}\n`);
process.exitCode = failed.length ? 1 : 0;
