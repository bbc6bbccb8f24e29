// One Riverside node in a process of its own, for the plain-JavaScript benchmarks
// (bench/presence/run.mjs, bench/tail/idle-nodes.mjs): test/cluster/fixtures/cluster-node.mjs on
// the built package (dist/), with `env` added to this process' environment.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const FIXTURE = fileURLToPath(new URL('../../test/cluster/fixtures/cluster-node.mjs', import.meta.url));

/** Starts a node and resolves once it listens: `{ child, url, id }` (id: its presence node id). */
export function startClusterNode(env) {
  const child = spawn(process.execPath, [FIXTURE], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'inherit'] });
  // The fixture exits when its stdin closes; a write to a node that already exited is no error here.
  child.stdin.on('error', () => {});
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('a node did not start within 30 s')), 30_000);
    createInterface({ input: child.stdout }).on('line', (line) => {
      let parsed;
      try {
        parsed = JSON.parse(line);
      } catch {
        // Not one of its JSON lines, or one cut short by its exit (it prints its members' leaves as it stops).
        return;
      }
      if (typeof parsed.url === 'string') {
        clearTimeout(timer);
        resolve({ child, url: parsed.url, id: parsed.node });
      }
    });
  });
}
