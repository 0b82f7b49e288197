/**
 * Ramp: N tasks (default 100) queued at once, then one `delegate serve` runner with the default configuration
 * (worker count derived from this machine, CPU_THRESHOLD 80, MEMORY_RESERVE 1 GiB) starts them. Prints when
 * each slot joined the pool and how its settling window ended, from the runner's log: the pool grows in
 * steps, never all at once. BENCH_RAMP_SLEEP_MS makes each fake agent sleep (default 0: instant agents);
 * DELEGATE_MAX_WORKERS, CPU_THRESHOLD and MEMORY_RESERVE in this process's environment override the defaults.
 */
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { benchEnv, fmt, isMain, openEngine, printTable, quick, recordFigure, removeDir, startRunner, stopRunner, tempDir, waitAllFinished } from './lib.js';

const N = Number(process.env.BENCH_RAMP_N ?? (quick ? 4 : 100));
const SLEEP_MS = Number(process.env.BENCH_RAMP_SLEEP_MS ?? 0);

/** `2026-…Z info  [runner] slot added slot=slot-1 slots=2 busy=2` → { at, message, fields }. */
function parseLogLine(line) {
  const match = /^(\S+) \w+\s+\[[^\]]+\] (.*?)((?: \w+=\S+)*)$/.exec(line);
  if (!match) return null;
  const fields = Object.fromEntries([...match[3].matchAll(/ (\w+)=(\S+)/g)].map((m) => [m[1], m[2]]));
  return { at: Date.parse(match[1]), message: match[2], fields };
}

export async function ramp() {
  const dataDir = tempDir();
  const env = { ...benchEnv(dataDir, 1), LOG_LEVEL: 'info' };
  // The defaults under test: nothing of the pool's sizing or admission is configured, unless this process's
  // environment sets it (e.g. CPU_THRESHOLD=100 on a machine other work keeps busy).
  for (const name of ['DELEGATE_MAX_WORKERS', 'CPU_THRESHOLD', 'MEMORY_RESERVE']) {
    if (process.env[name] === undefined) delete env[name];
    else env[name] = process.env[name];
  }
  let runner;
  let engine;
  try {
    engine = await openEngine(env);
    const prompt = SLEEP_MS > 0 ? ` [sleep ${SLEEP_MS}]` : '';
    for (let i = 0; i < N; i++) await engine.service.delegate({ prompt: `t${i}${prompt}`, workingDirectory: dataDir });
    runner = await startRunner(env, engine);
    const tasks = await waitAllFinished(engine.store, N, 300_000);
    await stopRunner(runner);
    const completed = tasks.filter((task) => task.state === 'completed').length;

    const log = readFileSync(path.join(dataDir, 'runner.log'), 'utf8').split('\n').map(parseLogLine).filter(Boolean);
    const started = log.find((entry) => entry.message === 'runner started');
    const added = log.filter((entry) => entry.message === 'slot added');
    const settled = log.filter((entry) => entry.message.startsWith('slot settled'));
    const firstClaim = log.find((entry) => entry.message === 'claimed task');
    const t0 = added[0]?.at ?? firstClaim?.at ?? 0;
    const rows = added.map((entry, i) => {
      const window = settled.find((s) => s.fields.slot === entry.fields.slot && s.at >= entry.at);
      return [
        entry.fields.slot,
        new Date(entry.at).toISOString().slice(11, 23),
        fmt.ms(entry.at - t0),
        entry.fields.busy,
        window ? `${window.fields.end} after ${window.fields.afterMs} ms (cpu ${window.fields.cpuPercent} %)` : '—',
        i === 0 ? '—' : fmt.ms(entry.at - added[i - 1].at),
      ];
    });
    const slotsAdded = recordFigure({ figure: `slots added while ${N} tasks were queued`, value: added.length, unit: 'slots' });
    const drained = recordFigure({ figure: 'first claim → last task end (s)', value: (Math.max(...tasks.map((task) => task.endedAt ?? 0)) - (firstClaim?.at ?? t0)) / 1000, unit: 's' });
    printTable(
      `ramp: ${N} ${SLEEP_MS > 0 ? `fake-claude tasks sleeping ${SLEEP_MS} ms` : 'instant fake-claude tasks'} queued at once, CPU_THRESHOLD ${env.CPU_THRESHOLD ?? '80 (default)'}, load average ${os.loadavg()[0].toFixed(2)} before`,
      ['slot', 'added at (UTC)', 'ms after first slot', 'agents then', 'settling window ended', 'step'],
      rows,
      [
        `runner: ${started?.fields.maxWorkers ?? '?'} slots at most (derived from this machine); ${completed} of ${N} tasks completed; ${slotsAdded.value} slot additions; first claim → last task end ${drained.value.toFixed(2)} s`,
        'each new slot waits for the previous one to settle: two readings 50 ms apart that agree, its run ending, or 2 s',
      ],
    );
    if (completed !== N) throw new Error(`${N - completed} of ${N} tasks did not complete`);
  } finally {
    if (runner) await stopRunner(runner);
    if (engine) await engine.store.close().catch(() => undefined);
    removeDir(dataDir);
  }
}

if (isMain(import.meta.url)) {
  await ramp();
}
