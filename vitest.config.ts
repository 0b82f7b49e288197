import { defineConfig } from 'vitest/config';

// clipanion's ESM build imports a directory, which vite's SSR loader refuses unless it is inlined.
const shared = { testTimeout: 60_000, hookTimeout: 60_000, server: { deps: { inline: ['clipanion'] } }, pool: 'forks' as const };

export default defineConfig({
  test: {
    projects: [
      {
        // On 2 cores vitest's default (cores − 1) runs one file at a time, while most files spend their time
        // waiting on child processes: two at once.
        test: { ...shared, name: 'suite', include: ['test/**/*.test.ts'], exclude: ['test/chaos.test.ts'], maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        // The chaos test kills runners at random while 200 tasks run; it runs alone, after the rest, so what it
        // measures is the engine under its own load and not another file's.
        test: { ...shared, name: 'chaos', include: ['test/chaos.test.ts'], maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
