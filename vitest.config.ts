import { defineConfig } from 'vitest/config';

// clipanion's ESM build imports a directory, which vite's SSR loader refuses unless it is inlined.
const shared = { testTimeout: 60_000, hookTimeout: 60_000, server: { deps: { inline: ['clipanion'] } }, pool: 'forks' as const };

/** Files that run after the rest, one at a time. */
const alone = ['test/chaos.test.ts', 'test/server-faults.test.ts'];

export default defineConfig({
  test: {
    projects: [
      {
        // On 2 cores vitest's default (cores − 1) runs one file at a time, while most files spend their time
        // waiting on child processes: two at once.
        test: { ...shared, name: 'suite', include: ['test/**/*.test.ts'], exclude: alone, maxWorkers: 2, sequence: { groupOrder: 0 } },
      },
      {
        // Then, one file at a time: the chaos test, and the faults of a database server that stops and comes
        // back, whose runners must notice within their lease periods (they timed out with another file beside them).
        test: { ...shared, name: 'alone', include: alone, maxWorkers: 1, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
