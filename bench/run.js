/**
 * `npm run bench`: every benchmark in sequence, each in its own Node process, one table each. Every table
 * compares against a baseline measured in the same run (ratios, never timed assertions). Then one summary table
 * of the figures the benchmarks recorded (lib.js's recordFigure) with their targets, and the whole run as JSON.
 * Exits 0 unless a benchmark crashed or recorded nothing. Needs the compiled engine (`npm run bench` builds it).
 *
 *   node bench/run.js [--quick] [--json <file>]
 *
 * --quick: every benchmark shrinks its sizes (BENCH_QUICK=1) so that each code path runs once, fast; its figures
 * are no measurements. --json: where the run's JSON goes (default bench/results/latest.json).
 */
import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { metMark, printTable, quick, quickNote, removeDir } from './lib.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const benchmarks = ['throughput.js', 'dag.js', 'recovery.js', 'schedules.js', 'ramp.js', 'hosts.js', 'mcp.js'];

let options;
try {
  ({ values: options } = parseArgs({ options: { quick: { type: 'boolean', default: false }, json: { type: 'string' } } }));
} catch (error) {
  process.stderr.write(`${error.message}\nusage: node bench/run.js [--quick] [--json <file>]\n`);
  process.exit(2);
}
const jsonFile = path.resolve(options.json ?? path.join(here, 'results', 'latest.json'));
// BENCH_QUICK=1 in the environment means what --quick does, so that this process and the benchmarks agree.
const quickRun = options.quick || quick;

const startedAt = new Date();
const loadAtStart = os.loadavg();
const load = (values) => values.map((value) => value.toFixed(2)).join(' ');
process.stdout.write(
  `## delegate benchmarks — node ${process.version}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB, load average ${load(loadAtStart)}\n\n`,
);
if (quickRun) process.stdout.write(`${quickNote}\n\n`);

const resultsDir = mkdtempSync(path.join(os.tmpdir(), 'delegate-bench-results-'));
const runs = [];
const figures = [];
const started = performance.now();
try {
  for (const file of benchmarks) {
    const name = path.basename(file, '.js');
    const resultsFile = path.join(resultsDir, `${name}.jsonl`);
    const env = { ...process.env, BENCH_RESULTS_FILE: resultsFile, BENCH_QUICK: quickRun ? '1' : undefined };
    const t0 = performance.now();
    const exitCode = await new Promise((resolve) => {
      const child = spawn(process.execPath, [path.join(here, file)], { stdio: 'inherit', env });
      child.once('exit', (code, signal) => resolve(code ?? (signal ? 1 : 0)));
    });
    const seconds = (performance.now() - t0) / 1000;
    const recorded = readFigures(resultsFile);
    figures.push(...recorded.map((figure) => ({ bench: name, ...figure })));
    runs.push({ name, file: `bench/${file}`, exitCode, crashed: exitCode !== 0, seconds, figuresRecorded: recorded.length });
    if (exitCode !== 0) process.stdout.write(`!! bench/${file} crashed (exit ${exitCode}); see the error above\n\n`);
    else if (recorded.length === 0) process.stdout.write(`!! bench/${file} recorded no figures: it must call recordFigure (bench/lib.js)\n\n`);
    else process.stdout.write(`(bench/${file}: ${seconds.toFixed(1)} s)\n\n`);
  }
} finally {
  removeDir(resultsDir);
}

const crashed = runs.filter((run) => run.crashed).map((run) => run.name);
const silent = runs.filter((run) => !run.crashed && run.figuresRecorded === 0).map((run) => run.name);
printSummary(figures, crashed, silent);

const result = {
  startedAt: startedAt.toISOString(),
  quick: quickRun,
  seconds: (performance.now() - started) / 1000,
  commit: gitCommit(),
  machine: {
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    cpu: os.cpus()[0]?.model ?? null,
    cores: os.availableParallelism(),
    memoryBytes: os.totalmem(),
    loadAverage: { start: loadAtStart, end: os.loadavg() },
  },
  benches: runs,
  crashed,
  figures,
};
mkdirSync(path.dirname(jsonFile), { recursive: true });
writeFileSync(jsonFile, `${JSON.stringify(result, null, 2)}\n`);
process.stdout.write(`all benchmarks: ${result.seconds.toFixed(1)} s, load average now ${load(result.machine.loadAverage.end)}\nresults: ${jsonFile}\n`);
process.exitCode = crashed.length || silent.length ? 1 : 0;

/** The figures a benchmark appended to its results file (none when it crashed before recording any). */
function readFigures(file) {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter(Boolean)
    .flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        // Only a benchmark killed in the middle of a line leaves one; the figures before it still count.
        process.stdout.write(`!! ${path.basename(file)}: a figure cut short, left out: ${line}\n\n`);
        return [];
      }
    });
}

/** A figure's number with its unit, to about three significant digits. */
function withUnit(value, unit) {
  if (value === null || !Number.isFinite(value)) return '—';
  const digits = Number.isInteger(value) ? 0 : Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${unit}`;
}

/** The table of every figure with its baseline and target, after the benchmarks' own tables. */
function printSummary(all, crashedNames, silentNames) {
  const missed = all.filter((figure) => figure.met === false).length;
  const withTarget = all.filter((figure) => figure.met !== null).length;
  printTable(
    `summary: ${all.length} figures of ${runs.length} benchmarks, ${withTarget - missed} of ${withTarget} targets met${quickRun ? ' (QUICK RUN: not measurements)' : ''}`,
    ['benchmark', 'figure', 'baseline', 'delegate', 'target', 'met'],
    all.map((figure) => [figure.bench, figure.figure, withUnit(figure.baseline, figure.unit), withUnit(figure.value, figure.unit), figure.target ?? '—', metMark(figure.met)]),
    [
      "baseline: mostly the same work without delegate, measured in this run; each benchmark's table and notes say what it is; targets: issue 17",
      ...crashedNames.map((name) => `bench/${name}.js crashed: its figures are missing or partial`),
      ...silentNames.map((name) => `bench/${name}.js recorded no figures`),
    ],
  );
}

/** The commit the run measured, or null outside a git checkout. */
function gitCommit() {
  try {
    return execFileSync('git', ['rev-parse', 'HEAD'], { cwd: here, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}
