/**
 * Shared helpers of the benchmarks: temp data dirs, the fake claude, a `delegate serve` child, direct spawns of
 * the fake claude (the baselines), /proc readings, table printing and the figures run.js summarises. Benchmarks
 * never call the real `claude` or the network: the fake claude (test/fixtures/bin/claude) is first on PATH.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { appendFileSync, existsSync, mkdtempSync, openSync, closeSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const fakeClaudeDir = path.join(repoRoot, 'test', 'fixtures', 'bin');
export const fakeClaude = path.join(fakeClaudeDir, 'claude');
export const cliBin = path.join(repoRoot, 'bin', 'delegate.js');
/** The flags the engine passes to claude (adapters/agents/claude.ts), minus the per-run session id. */
export const claudeFlags = ['-p', '--output-format', 'stream-json', '--verbose'];

/**
 * Set by `bench/run.js --quick`: every benchmark shrinks its sizes (tasks, calls, rounds, waits) so that each of
 * its code paths runs once, fast. Its figures are then no measurements, and its tables say so.
 */
export const quick = process.env.BENCH_QUICK === '1';

/** Import a compiled engine module from dist/ (run `npx tsc -p tsconfig.json` first). */
export async function dist(relative) {
  const file = path.join(repoRoot, 'dist', relative);
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npx tsc -p tsconfig.json)`);
  return import(pathToFileURL(file).href);
}

/** A fresh temp data dir. */
export function tempDir(prefix = 'delegate-bench-') {
  return mkdtempSync(path.join(os.tmpdir(), prefix));
}

export function removeDir(dir) {
  for (let attempt = 1; ; attempt++) {
    try {
      rmSync(dir, { recursive: true, force: true });
      return;
    } catch (error) {
      // The agent host outlives the runners and may write a run's exit into the dir while it goes; rmSync's own
      // retries only retry the rmdir, so each attempt here lists the dir again.
      if (error.code !== 'ENOTEMPTY' || attempt === 5) throw error;
    }
  }
}

/** The environment of a runner and of the baseline spawns: the fake claude first on PATH, no autostart, no idle exit. */
export function benchEnv(dataDir, maxWorkers) {
  return {
    PATH: `${fakeClaudeDir}${path.delimiter}${process.env.PATH ?? ''}`,
    HOME: process.env.HOME ?? os.tmpdir(),
    DELEGATE_DATA_DIR: dataDir,
    DELEGATE_MAX_WORKERS: String(maxWorkers),
    DELEGATE_AUTOSTART: '0',
    DELEGATE_IDLE_EXIT: '0',
    CPU_THRESHOLD: '100',
    MEMORY_RESERVE: '0',
    FAKE_CLAUDE_LOG: path.join(dataDir, 'fake-claude.jsonl'),
  };
}

/** The engine's store and task service, in this process, for fast setup. */
export async function openEngine(env) {
  const { loadConfig } = await dist('engine/config.js');
  const { openStore } = await dist('engine/store/store.js');
  const { TaskService } = await dist('engine/task-service.js');
  const { systemClock } = await dist('engine/clock.js');
  // TaskService checks agent names against the registry; importing the built-in agents fills it.
  await dist('adapters/agents/index.js');
  const config = loadConfig(env);
  const store = await openStore(config.databaseUrl);
  const service = new TaskService(store, config, systemClock, config.dataDir);
  return { config, store, service };
}

/** Start `delegate serve` as a child (stderr to <dataDir>/runner.log) and wait until it is registered. */
export async function startRunner(env, engine) {
  const log = openSync(path.join(env.DELEGATE_DATA_DIR, 'runner.log'), 'a');
  const child = spawn(process.execPath, [cliBin, 'serve'], { env, cwd: env.DELEGATE_DATA_DIR, stdio: ['ignore', log, log] });
  closeSync(log);
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  child.exited = exited;
  const { waitForRunner } = await dist('engine/runner-control.js');
  const node = await Promise.race([waitForRunner(engine.store, engine.config, 20_000, child.pid), exited.then(() => null)]);
  if (!node) {
    await stopRunner(child);
    throw new Error(`the runner did not come up; see ${env.DELEGATE_DATA_DIR}/runner.log:\n${tail(path.join(env.DELEGATE_DATA_DIR, 'runner.log'))}`);
  }
  return child;
}

/** SIGTERM the runner and wait for it to exit (SIGKILL after 20 s). */
export async function stopRunner(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  await child.exited;
  clearTimeout(timer);
}

function tail(file, lines = 20) {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/** Peak resident set (VmHWM) of a live process, in bytes. */
export function peakRss(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = /^VmHWM:\s+(\d+)\s+kB/m.exec(status);
  if (!kb) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

/** Resident set (VmRSS) of a live process now, in bytes. */
export function currentRss(pid) {
  const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!kb) throw new Error(`no VmRSS for pid ${pid}`);
  return Number(kb[1]) * 1024;
}

/** CPU time (user + system) a live process has used, in ms. */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // utime, stime (fields 14 and 15 of stat)
  return (ticks * 1000) / 100; // USER_HZ is 100 on Linux
}

/** VmHWM of a bare `node -e "setTimeout(()=>{},1000)"` (300 ms under --quick), read just before it exits. */
export async function bareNodePeakRss() {
  const lifeMs = quick ? 300 : 1000;
  const child = spawn(process.execPath, ['-e', `setTimeout(()=>{},${lifeMs})`], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  await sleep(lifeMs - 150);
  const rss = peakRss(child.pid);
  await exited;
  return rss;
}

/**
 * Run the fake claude once, the way the engine's launcher does (same binary, flags, detached, prompt on stdin,
 * stdout and stderr read to the end). Resolves with its duration in ms.
 */
export function spawnFakeClaude(prompt, env, cwd) {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const child = spawn(fakeClaude, [...claudeFlags, '--session-id', randomUUID(), '--permission-mode', 'bypassPermissions'], {
      cwd,
      env,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (out += chunk));
    child.stderr.resume();
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0 || !out.includes('"type":"result"')) reject(new Error(`fake claude exited ${code} without a result`));
      else resolve(performance.now() - started);
    });
    child.stdin.end(prompt);
  });
}

/** Run `count` jobs, `concurrency` at a time (`job(i, lane)`, lane 0 … concurrency − 1); resolves with each job's result. */
export async function pool(count, concurrency, job) {
  const results = new Array(count);
  let next = 0;
  const lane = async (_, laneIndex) => {
    while (next < count) {
      const i = next++;
      results[i] = await job(i, laneIndex);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, count) }, lane));
  return results;
}

/** Poll until no task is unfinished; resolves with the tasks (up to `limit`). */
export async function waitAllFinished(store, limit, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  while ((await store.countUnfinished()) > 0) {
    if (Date.now() > deadline) throw new Error(`tasks still unfinished after ${timeoutMs} ms`);
    await sleep(100);
  }
  return store.listTasks({ limit });
}

/** How many runs the fake claude logged as started in its FAKE_CLAUDE_LOG (a check that every task really ran it). */
export function agentStarts(logFile) {
  if (!existsSync(logFile)) return 0;
  return readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"event":"start"')).length;
}

/**
 * The mean CPU of one run of the fake claude as it counts it itself (its `cpuMs` at the end), or NaN if none
 * said: the same figure for direct spawns and through delegate tells a slower agent from a costlier engine.
 */
export function agentCpuMs(logFile) {
  if (!existsSync(logFile)) return NaN;
  const cpu = readFileSync(logFile, 'utf8')
    .split('\n')
    .filter((line) => line.includes('"event":"end"'))
    .map((line) => JSON.parse(line).cpuMs)
    .filter((ms) => typeof ms === 'number');
  return cpu.length === 0 ? NaN : mean(cpu);
}

/** The pid of the agent host serving the runs of data dir `dataDir`, or null when none runs. */
export function agentHostPid(dataDir) {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let argv;
    try {
      argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (argv.some((arg) => arg.endsWith(path.join('shim', 'host.js'))) && argv.some((arg) => arg.startsWith(dataDir + path.sep))) return Number(entry);
  }
  return null;
}

/**
 * How long a slot stood empty between one agent's end and the next agent's start in the same slot, from the fake
 * claude's log. `slotOf(prompt)` names the slot each run (known by its prompt, unique per run) ran in: the lane of
 * the baseline's pool, the runner's slot actor through delegate. Slot by slot, not the k-th end against the
 * (k + slots)-th start: that pairing holds only while every slot is busy, and a runner adds its slots one at a
 * time at the start (see the supervisor), so it paired a run's end with another slot's first start. A slot's first
 * run has no gap. `toSpawn` ends when the next agent's process began (its Node time origin, ~13 ms after exec,
 * before any of its JS): how long the slot stood idle. `toFirstLine` ends at its first line of JS, so it also
 * holds the agent's own Node start-up (~100 ms alone, several times that while four agents start on two cores),
 * which runs slower the more CPU the engine takes meanwhile. Both times are taken by the agent processes
 * themselves, in the baseline as through delegate.
 */
export function sameSlotGaps(logFile, slotOf) {
  const events = readFileSync(logFile, 'utf8').split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const runs = new Map();
  for (const event of events) {
    if (event.event !== 'start' && event.event !== 'end') continue;
    const run = runs.get(event.prompt) ?? {};
    run[event.event] = event;
    runs.set(event.prompt, run);
  }
  const bySlot = new Map();
  for (const [prompt, run] of runs) {
    const slot = slotOf(prompt);
    if (slot === undefined || !run.start || !run.end) throw new Error(`the run of prompt ${JSON.stringify(prompt)} has ${slot === undefined ? 'no slot' : 'no start or no end'} in ${logFile}`);
    if (!bySlot.has(slot)) bySlot.set(slot, []);
    bySlot.get(slot).push(run);
  }
  const toSpawn = [];
  const toFirstLine = [];
  for (const slotRuns of bySlot.values()) {
    slotRuns.sort((a, b) => a.start.spawnedAt - b.start.spawnedAt);
    for (let k = 1; k < slotRuns.length; k++) {
      const endedAt = slotRuns[k - 1].end.at;
      toSpawn.push(slotRuns[k].start.spawnedAt - endedAt);
      toFirstLine.push(slotRuns[k].start.at - endedAt);
    }
  }
  return { toSpawn, toFirstLine };
}

/**
 * The most intervals (`[start, end]` pairs) open at one time. An end at the same instant as a start counts
 * first: it is the run whose slot that start took.
 */
export function peakOverlap(intervals) {
  const steps = intervals.flatMap(([start, end]) => [{ at: start, step: 1 }, { at: end, step: -1 }]).sort((a, b) => a.at - b.at || a.step - b.step);
  let open = 0;
  let peak = 0;
  for (const { step } of steps) peak = Math.max(peak, (open += step));
  return peak;
}

/** The p-th percentile (0–100) of values, nearest rank. */
export function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `measure(item, round)` for each of `items`, `rounds` times: in turn, and in the reverse order every other round,
 * so that the VM's drift over a run falls on all items alike.
 */
export async function inAlternatingOrder(rounds, items, measure) {
  for (let round = 0; round < rounds; round++) {
    for (const item of round % 2 === 0 ? items : [...items].reverse()) await measure(item, round);
  }
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const mean = (values) => values.reduce((sum, value) => sum + value, 0) / values.length;

/** A small seeded PRNG (mulberry32), so the DAG is the same every run. */
export function seededRandom(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Number formatting for tables. */
export const fmt = {
  s: (ms) => (ms / 1000).toFixed(2),
  ms: (ms) => (ms >= 100 ? ms.toFixed(0) : ms.toFixed(1)),
  mib: (bytes) => (bytes / 1048576).toFixed(1),
  ratio: (value) => (Number.isFinite(value) ? `${value.toFixed(2)}x` : '—'),
  n: (value) => (Number.isInteger(value) ? String(value) : value.toFixed(1)),
};

/** Print a markdown table with aligned columns: `header` is an array of titles, `rows` arrays of cells. */
export function printTable(title, header, rows, notes = []) {
  const cells = [header, ...rows].map((row) => row.map((cell) => String(cell ?? '')));
  const widths = header.map((_, col) => Math.max(3, ...cells.map((row) => row[col].length)));
  const numeric = header.map((_, col) => rows.every((row) => /^[-+]?[\d.]+x?$|^—$/.test(String(row[col] ?? ''))));
  const line = (row) => `| ${row.map((cell, col) => (numeric[col] ? cell.padStart(widths[col]) : cell.padEnd(widths[col]))).join(' | ')} |`;
  const rule = `|${widths.map((width, col) => (numeric[col] ? `${'-'.repeat(width + 1)}:` : `${'-'.repeat(width + 2)}`)).join('|')}|`;
  const out = [`### ${title}`, '', line(cells[0]), rule, ...cells.slice(1).map(line)];
  const allNotes = quick ? [...notes, quickNote] : notes;
  if (allNotes.length) out.push('', ...allNotes.map((note) => `- ${note}`));
  process.stdout.write(`${out.join('\n')}\n\n`);
}

/** True when this module file is the script node was started with. */
export function isMain(moduleUrl) {
  return process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(moduleUrl);
}

export const quickNote = 'QUICK RUN (--quick, BENCH_QUICK=1): sizes shrunk so that every code path runs once; these figures are not measurements';

const resultsFile = process.env.BENCH_RESULTS_FILE;

/**
 * Record one figure of a benchmark for run.js's summary, which passes BENCH_RESULTS_FILE (one JSON line per
 * figure goes there); a benchmark run alone records nothing. `value` and `baseline` are in `unit`; `baseline` is
 * the same thing measured without delegate in the same run, or null. `target` is issue 17's, in one of the forms
 * `≤ 3`, `≥ 0.85`, `= 4`, `≤ baseline + 5`, `≥ 0.95 × baseline`, or null; whether it was met is worked out here.
 * Returns the figure with `met` (true, false, or null without a target).
 */
export function recordFigure({ figure, baseline = null, value, unit, target = null }) {
  const recorded = { figure, baseline, value, unit, target, met: target === null ? null : meetsTarget(target, value, baseline) };
  if (resultsFile) appendFileSync(resultsFile, `${JSON.stringify(recorded)}\n`);
  return recorded;
}

/** ✓, ✗ or — for a figure's `met`. */
export const metMark = (met) => (met === null ? '—' : met ? '✓' : '✗');

/** A table's target cell for a recorded figure: its target and whether this run met it. */
export const targetCell = (figure) => (figure.target === null ? '—' : `${figure.target} ${metMark(figure.met)}`);

const targetForm = /^(?<op>[≤≥=]) (?:baseline \+ (?<plus>\d+(?:\.\d+)?)|(?<times>\d+(?:\.\d+)?) × baseline|(?<limit>\d+(?:\.\d+)?))$/;

/** Whether `value` meets `target` (see recordFigure); a value or baseline that is no number meets nothing. */
export function meetsTarget(target, value, baseline) {
  const form = targetForm.exec(target)?.groups;
  if (!form) throw new Error(`target "${target}" is none of the forms "≤ 3", "≥ 0.85", "= 4", "≤ baseline + 5", "≥ 0.95 × baseline"`);
  const relative = form.limit === undefined;
  if (relative && baseline === null) throw new Error(`target "${target}" needs a baseline, but the figure has none`);
  const limit = form.plus !== undefined ? baseline + Number(form.plus) : form.times !== undefined ? baseline * Number(form.times) : Number(form.limit);
  if (!Number.isFinite(value) || !Number.isFinite(limit)) return false;
  return form.op === '≤' ? value <= limit : form.op === '≥' ? value >= limit : value === limit;
}
