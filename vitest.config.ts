import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    reporters: ['default', './test/helpers/summary-reporter.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
    // Tests run the sidecar in their worker too: the flag it runs with everywhere (package.json
    // `start`), for http-proxy's util._extend on every WebSocket (DEP0060). That code only.
    execArgv: ['--disable-warning=DEP0060'],
    // Two cores: more workers only add contention to tests that measure real traffic.
    maxWorkers: 2,
  },
});
