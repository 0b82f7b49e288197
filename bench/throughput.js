/**
 * Throughput: N instant fake-claude tasks through one `delegate serve` runner with DELEGATE_MAX_WORKERS=4,
 * against the same fake claude spawned directly N times, 4 at a time, from this plain Node script (process
 * spawn cost is in both). Also the runner's peak RSS against a bare Node process's.
 */
import path from 'node:path';
import {
  agentStarts,
  bareNodePeakRss,
  benchEnv,
  cpuMs,
  endToNextStartGaps,
  fmt,
  isMain,
  mean,
  openEngine,
  peakRss,
  percentile,
  pool,
  printTable,
  removeDir,
  sleep,
  spawnFakeClaude,
  startRunner,
  stopRunner,
  tempDir,
  waitAllFinished,
} from './lib.js';

const N = Number(process.env.BENCH_THROUGHPUT_N ?? 200);
const WORKERS = 4;
const IDLE_SAMPLE_MS = 2000;

export async function throughput() {
  const dataDir = tempDir();
  const env = benchEnv(dataDir, WORKERS);
  let runner;
  let engine;
  try {
    // Baseline: the same fake claude, same flags and stdin, 4 at a time from a plain script.
    const baseEnv = { ...env, FAKE_CLAUDE_LOG: path.join(dataDir, 'baseline-claude.jsonl') };
    await pool(8, WORKERS, (i) => spawnFakeClaude(`warmup ${i}`, { ...baseEnv, FAKE_CLAUDE_LOG: '' }, dataDir));
    const baseCpu0 = process.cpuUsage();
    const base0 = performance.now();
    const baseDurations = await pool(N, WORKERS, (i) => spawnFakeClaude(`t${i}`, baseEnv, dataDir));
    const baseWall = performance.now() - base0;
    const baseCpu = process.cpuUsage(baseCpu0);
    const baseDriverCpuMs = (baseCpu.user + baseCpu.system) / 1000;

    // delegate: a real runner child; tasks submitted in-process through the TaskService.
    engine = await openEngine(env);
    runner = await startRunner(env, engine);
    // Idle cost first: what the runner burns with nothing to do (polling, heartbeats, sampling).
    await sleep(1000); // past its start-up
    const idle0 = cpuMs(runner.pid);
    await sleep(IDLE_SAMPLE_MS);
    const idleCpuPerS = ((cpuMs(runner.pid) - idle0) * 1000) / IDLE_SAMPLE_MS;
    const runnerCpu0 = cpuMs(runner.pid);
    const submit0 = Date.now();
    for (let i = 0; i < N; i++) await engine.service.delegate({ prompt: `t${i}`, workingDirectory: dataDir });
    const submitMs = Date.now() - submit0;
    const tasks = await waitAllFinished(engine.store, N, 150_000);
    const runnerRss = peakRss(runner.pid);
    const runnerCpuMs = cpuMs(runner.pid) - runnerCpu0;
    await stopRunner(runner);
    const completed = tasks.filter((task) => task.state === 'completed');
    if (completed.length !== N) {
      const bad = tasks.find((task) => task.state !== 'completed');
      throw new Error(`${N - completed.length} of ${N} tasks did not complete (e.g. ${bad?.id}: ${bad?.state} ${bad?.failReason ?? ''} ${bad?.error ?? ''})`);
    }
    const starts = [agentStarts(baseEnv.FAKE_CLAUDE_LOG), agentStarts(env.FAKE_CLAUDE_LOG)];
    if (starts[0] !== N || starts[1] !== N) throw new Error(`fake claude logged ${starts.join(' and ')} starts, expected ${N} each`);
    const lastEnd = Math.max(...tasks.map((task) => task.endedAt));
    const wall = lastEnd - submit0;
    const slotMs = mean(tasks.map((task) => task.endedAt - task.startedAt));
    const baseSlotMs = mean(baseDurations);
    const overheadPerTask = ((wall - baseWall) * WORKERS) / N;
    const bareRss = await bareNodePeakRss();
    // A run ends → the next agent starts in the freed slot; the baseline's gap is the spawn and the fake's own
    // Node start-up, which delegate pays too, so the difference is the engine's.
    const baseGaps = endToNextStartGaps(baseEnv.FAKE_CLAUDE_LOG, WORKERS);
    const gaps = endToNextStartGaps(env.FAKE_CLAUDE_LOG, WORKERS);
    const gapRow = (p) => {
      const base = percentile(baseGaps, p);
      const ours = percentile(gaps, p);
      return [`agent end → next agent start in the slot, p${p} (ms); target: ≤ baseline + ${p === 50 ? 5 : 20}`, fmt.ms(base), fmt.ms(ours), `+${fmt.ms(ours - base)} ms`];
    };

    printTable(
      `throughput: ${N} instant fake-claude tasks, ${WORKERS} at a time`,
      ['metric', 'baseline', 'delegate', 'delegate/baseline'],
      [
        ['wall time, first submit → last completion (s)', fmt.s(baseWall), fmt.s(wall), fmt.ratio(wall / baseWall)],
        ['throughput (tasks/s)', (N / (baseWall / 1000)).toFixed(1), (N / (wall / 1000)).toFixed(1), fmt.ratio(baseWall / wall)],
        ['mean time per task in a slot (ms)', fmt.ms(baseSlotMs), fmt.ms(slotMs), fmt.ratio(slotMs / baseSlotMs)],
        ['engine overhead per task, (wall − base) × 4 / N (ms)', '0', fmt.ms(overheadPerTask), '—'],
        ['slot idle between tasks, (wall × 4 − Σ slot time) / N (ms)', fmt.ms((baseWall * WORKERS - baseSlotMs * N) / N), fmt.ms((wall * WORKERS - slotMs * N) / N), fmt.ratio((wall * WORKERS - slotMs * N) / (baseWall * WORKERS - baseSlotMs * N))],
        gapRow(50),
        gapRow(99),
        ['CPU of the driving process per task (ms)', fmt.ms(baseDriverCpuMs / N), fmt.ms(runnerCpuMs / N), fmt.ratio(runnerCpuMs / baseDriverCpuMs)],
        ['CPU of the idle runner, no tasks (ms per s)', '—', fmt.ms(idleCpuPerS), '—'],
        ['peak RSS, VmHWM (MiB)', fmt.mib(bareRss), fmt.mib(runnerRss), fmt.ratio(runnerRss / bareRss)],
        [`mean busy slots (of ${WORKERS}): Σ slot time / wall`, ((baseSlotMs * N) / baseWall).toFixed(2), ((slotMs * N) / wall).toFixed(2), fmt.ratio((slotMs * baseWall) / (wall * baseSlotMs))],
      ],
      [
        `baseline: ${N} direct spawns of test/fixtures/bin/claude (same flags, prompt on stdin), ${WORKERS} at a time from a plain Node script; RSS baseline: bare \`node -e "setTimeout(()=>{},1000)"\``,
        `delegate: \`delegate serve\` child, DELEGATE_MAX_WORKERS=${WORKERS}; tasks submitted in-process via TaskService (${fmt.ms(submitMs)} ms for all ${N}); slot time = claim → settle; CPU/RSS are the serve process's (worker threads included, agents excluded)`,
      ],
    );
  } finally {
    if (runner) await stopRunner(runner);
    if (engine) await engine.store.close().catch(() => undefined);
    removeDir(dataDir);
  }
}

if (isMain(import.meta.url)) {
  await throughput();
}
