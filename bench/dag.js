/**
 * DAG scheduling: a random DAG of N instant fake-claude tasks (each depends on 0–3 random earlier tasks, fixed
 * seed), inserted in topological order through the TaskService, then run by one `delegate serve` runner with
 * DELEGATE_MAX_WORKERS=4. The baseline is the per-task time of the instant fake claude measured in this run;
 * the ideal time is max(critical path × per-task time, N × per-task time / 4).
 */
import {
  agentStarts,
  benchEnv,
  cpuMs,
  fmt,
  isMain,
  mean,
  median,
  openEngine,
  peakRss,
  pool,
  printTable,
  quick,
  recordFigure,
  removeDir,
  seededRandom,
  spawnFakeClaude,
  startRunner,
  stopRunner,
  targetCell,
  tempDir,
  waitAllFinished,
} from './lib.js';

const N = Number(process.env.BENCH_DAG_N ?? (quick ? 16 : 1000));
const WORKERS = 4;
const SEED = 20240601;
const WARMUPS = quick ? 0 : 3;
const SERIAL_SAMPLES = quick ? 2 : 20;
const PARALLEL_SAMPLES = quick ? 4 : 40;

/** deps[i]: indexes of the earlier tasks task i depends on (0–3 distinct ones). */
function randomDag(n, seed) {
  const random = seededRandom(seed);
  const deps = [];
  for (let i = 0; i < n; i++) {
    const want = Math.min(i, Math.floor(random() * 4));
    const chosen = new Set();
    while (chosen.size < want) chosen.add(Math.floor(random() * i));
    deps.push([...chosen]);
  }
  return deps;
}

/** Longest chain, in tasks. */
function criticalPath(deps) {
  const depth = [];
  for (let i = 0; i < deps.length; i++) depth.push(1 + Math.max(0, ...deps[i].map((j) => depth[j])));
  return Math.max(...depth);
}

export async function dag() {
  const benchStart = performance.now();
  const dataDir = tempDir();
  const env = benchEnv(dataDir, WORKERS);
  let runner;
  let engine;
  try {
    const deps = randomDag(N, SEED);
    const edges = deps.reduce((sum, list) => sum + list.length, 0);
    const path = criticalPath(deps);

    // Baseline: the per-task time of an instant fake claude, direct spawns measured now.
    const baseEnv = { ...env, FAKE_CLAUDE_LOG: '' };
    for (let i = 0; i < WARMUPS; i++) await spawnFakeClaude(`warmup ${i}`, baseEnv, dataDir);
    const serial = [];
    for (let i = 0; i < SERIAL_SAMPLES; i++) serial.push(await spawnFakeClaude(`s${i}`, baseEnv, dataDir));
    const perTask = median(serial);
    // The same, 4 at a time: what 4 parallel agents really cost per task on this machine (2 cores).
    const par0 = performance.now();
    await pool(PARALLEL_SAMPLES, WORKERS, (i) => spawnFakeClaude(`p${i}`, baseEnv, dataDir));
    const perTaskAt4 = (performance.now() - par0) / PARALLEL_SAMPLES;

    // Insert the DAG in topological order, no runner yet.
    engine = await openEngine(env);
    const ids = [];
    const insert0 = performance.now();
    for (let i = 0; i < N; i++) {
      const view = await engine.service.delegate({ prompt: `d${i}`, dependsOn: deps[i].map((j) => ids[j]), workingDirectory: dataDir });
      ids.push(view.taskId);
    }
    const insertMs = performance.now() - insert0;

    // Run it: a real runner child; wall time from the first claim to the last completion.
    runner = await startRunner(env, engine);
    const runnerCpu0 = cpuMs(runner.pid);
    const tasks = await waitAllFinished(engine.store, N, 600_000);
    const runnerRss = peakRss(runner.pid);
    const runnerCpuMs = cpuMs(runner.pid) - runnerCpu0;
    await stopRunner(runner);
    const completed = tasks.filter((task) => task.state === 'completed');
    if (completed.length !== N) {
      const bad = tasks.find((task) => task.state !== 'completed');
      throw new Error(`${N - completed.length} of ${N} tasks did not complete (e.g. ${bad?.id}: ${bad?.state} ${bad?.failReason ?? ''} ${bad?.error ?? ''})`);
    }
    if (agentStarts(env.FAKE_CLAUDE_LOG) !== N) throw new Error(`fake claude logged ${agentStarts(env.FAKE_CLAUDE_LOG)} starts, expected ${N}`);
    // Dependencies were respected: every task started after all its dependencies ended.
    const byIndex = ids.map((id) => tasks.find((task) => task.id === id));
    for (let i = 0; i < N; i++) {
      for (const j of deps[i]) {
        if (byIndex[i].startedAt < byIndex[j].endedAt) throw new Error(`task d${i} started before its dependency d${j} ended`);
      }
    }
    const firstStart = Math.min(...tasks.map((task) => task.startedAt));
    const lastEnd = Math.max(...tasks.map((task) => task.endedAt));
    const total = lastEnd - firstStart;
    const ideal = Math.max(path * perTask, (N * perTask) / WORKERS);
    const idealAt4 = Math.max(path * perTask, N * perTaskAt4);
    const slotMs = mean(tasks.map((task) => task.endedAt - task.startedAt));
    const benchMs = performance.now() - benchStart;

    // Issue 17's target is on the ideal from spawns measured in this run: the formula's ideal leaves out what
    // 4 agents at once cost this machine.
    const vsIdeal = recordFigure({ figure: 'wall time, first claim → last completion, vs ideal (s)', baseline: ideal / 1000, value: total / 1000, unit: 's' });
    const vsMeasured = recordFigure({ figure: 'wall time vs ideal from measured 4-parallel spawns (s)', baseline: idealAt4 / 1000, value: total / 1000, unit: 's', target: '≤ 1.10 × baseline' });
    const insertPerTask = recordFigure({ figure: 'insert per task (ms)', value: insertMs / N, unit: 'ms' });
    const wallRow = (f) => [f.figure, f.baseline.toFixed(2), f.value.toFixed(2), fmt.ratio(f.value / f.baseline), targetCell(f)];
    printTable(
      `dag: ${N} instant fake-claude tasks, random DAG (seed ${SEED}), ${WORKERS} workers`,
      ['metric', 'baseline', 'delegate', 'delegate/baseline', 'target'],
      [
        wallRow(vsIdeal),
        ['scheduling overhead, total − ideal (s)', '0', fmt.s(total - ideal), '—', '—'],
        wallRow(vsMeasured),
        ['wall time per completion (ms)', fmt.ms(ideal / N), fmt.ms(total / N), fmt.ratio(total / ideal), '—'],
        ['time per task: serial spawn median / mean in a slot (ms)', fmt.ms(perTask), fmt.ms(slotMs), fmt.ratio(slotMs / perTask), '—'],
        [`mean busy slots (of ${WORKERS}): Σ slot time / wall`, ((perTask * N) / ideal).toFixed(2), ((slotMs * N) / total).toFixed(2), '—', '—'],
        ['runner CPU per completion (ms)', '—', fmt.ms(runnerCpuMs / N), '—', '—'],
        [`insert ${N} tasks + ${edges} edges via TaskService (s)`, '—', fmt.s(insertMs), '—', '—'],
        [insertPerTask.figure, '—', fmt.ms(insertPerTask.value), '—', '—'],
        ['runner peak RSS, VmHWM (MiB)', '—', fmt.mib(runnerRss), '—', '—'],
      ],
      [
        `DAG: ${N} tasks, ${edges} edges, critical path ${path} tasks; ideal = max(critical path × t, N × t / ${WORKERS}) with t = median of ${SERIAL_SAMPLES} serial direct spawns (${fmt.ms(perTask)} ms)`,
        `measured 4-parallel ideal uses ${PARALLEL_SAMPLES} direct spawns ${WORKERS} at a time (${fmt.ms(perTaskAt4)} ms/task): it counts the CPU contention of this machine, which the formula above does not`,
        `this benchmark took ${fmt.s(benchMs)} s in all`,
      ],
    );
  } finally {
    if (runner) await stopRunner(runner);
    if (engine) await engine.store.close().catch(() => undefined);
    removeDir(dataDir);
  }
}

if (isMain(import.meta.url)) {
  await dag();
}
