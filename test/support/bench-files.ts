import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root, where the benchmark scripts are run from. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BENCH = join(ROOT, 'bench');

/**
 * A hash of every file under bench/ but bench/dist (the compiled scripts), by path: a smoke of a
 * benchmark takes one before and one after, and expects them equal, so that it never replaces
 * the published results (bench/RESULTS.md, results.json, presence/RESULTS.md, ...).
 */
export function benchFiles(): Record<string, string> {
  const hashes: Record<string, string> = {};
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        if (path !== join(BENCH, 'dist')) walk(path);
      } else {
        hashes[relative(ROOT, path)] = createHash('sha256').update(readFileSync(path)).digest('hex');
      }
    }
  };
  walk(BENCH);
  return hashes;
}

/** What a failed child process printed, for the test's error message. */
export function childOutput(error: unknown): string {
  const { stdout = '', stderr = '', message = '' } = error as { stdout?: string; stderr?: string; message?: string };
  return `${message}\n--- stdout\n${stdout}\n--- stderr\n${stderr}`;
}
