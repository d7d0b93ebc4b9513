import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    exclude: ['test/crash/**', 'test/cluster/**', 'node_modules/**'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Servers started by tests (in process or spawned) take any free REST port, not the default 19531.
    env: { QUIVER_HTTP_PORT: '0' },
  },
});
