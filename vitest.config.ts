import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // clipanion's ESM build imports a directory, which vite's SSR loader refuses unless it is inlined.
    server: { deps: { inline: ['clipanion'] } },
    pool: 'forks',
  },
});
