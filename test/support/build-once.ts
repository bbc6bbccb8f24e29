import { execFile } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

/**
 * Vitest globalSetup: builds the package into dist/ (`tsc -p tsconfig.build.json`) once per
 * run, before any test file, then the benchmark scripts into bench/dist/ (`tsc -p
 * bench/tsconfig.json`, which type-checks against dist/). Tests that run the package as users
 * get it, in child processes without a TypeScript loader (test/cluster/fixtures/*.mjs), import it
 * from dist/; the smokes of the benchmarks (test/bench/) run bench/dist/. Compiling here, once,
 * keeps smokes running in parallel from rewriting bench/dist/ under each other.
 */
export default async function buildOnce(): Promise<void> {
  const root = fileURLToPath(new URL('../..', import.meta.url));
  // The compiler's own entry run by this Node: no shell, no npx lookup.
  const tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
  const started = Date.now();
  for (const [project, output] of [
    ['tsconfig.build.json', 'dist/'],
    ['bench/tsconfig.json', 'bench/dist/'],
  ]) {
    try {
      await promisify(execFile)(process.execPath, [tsc, '-p', project], { cwd: root, timeout: 60_000 });
    } catch (error) {
      const { code, stdout = '', stderr = '' } = error as { code?: unknown; stdout?: string; stderr?: string };
      // Exit code 2: type errors, but every file was emitted. `npm run typecheck` reports them;
      // the tests can still run on an output that matches its sources.
      if (code === 2) console.warn(`build-once: ${output} built with type errors:\n${stdout}${stderr}`);
      else throw new Error(`build-once: tsc -p ${project} failed, so ${output} is stale:\n${stdout}${stderr}`, { cause: error });
    }
  }
  if (process.env.CI) console.log(`build-once: dist/ and bench/dist/ built in ${Date.now() - started} ms`);
}
