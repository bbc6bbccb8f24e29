import { fileURLToPath } from 'node:url';
import swc from 'unplugin-swc';
import { defineConfig } from 'vitest/config';

// SWC compiles the decorators: it reads experimentalDecorators and
// emitDecoratorMetadata from tsconfig.json, which Nest's DI depends on.
export default defineConfig({
  plugins: [swc.vite()],
  resolve: {
    alias: {
      'nestjs-riverside/testing': fileURLToPath(new URL('./src/testing/index.ts', import.meta.url)),
      'nestjs-riverside': fileURLToPath(new URL('./src/index.ts', import.meta.url)),
    },
  },
  test: {
    include: ['test/**/*.spec.ts', 'test/**/*.e2e-spec.ts'],
    // Builds dist/ once per run, for the child processes of test/cluster (plain ESM, no loader).
    globalSetup: ['test/support/build-once.ts'],
    testTimeout: 15_000,
    hookTimeout: 15_000,
    pool: 'forks',
  },
});
