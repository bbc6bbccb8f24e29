import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

/** A fixture app running in its own Node process (test/cluster/fixtures/*.mjs). */
export interface NodeProcess {
  /** What the child printed as its first JSON line, e.g. `{ "url": "ws://127.0.0.1:4123/" }`. */
  readonly url: string;
  readonly child: ChildProcess;
  /** Every JSON line the child printed on stdout so far, in order (the `{ url }` line first). */
  readonly output: Record<string, unknown>[];
  /** Everything the child wrote on stderr so far (Nest logs errors and warnings there). */
  stderr(): string;
  /**
   * SIGTERM, then SIGKILL if it has not exited within `timeout` ms; resolves with how it
   * exited. Safe to call twice.
   */
  stop(timeout?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null; forced: boolean }>;
}

/**
 * Spawns `node <script>` with `env` added, and waits (up to `readyTimeout` ms) for the first
 * stdout line that parses as JSON with a `url`. The child's stdin is a pipe: fixtures exit when
 * it closes, so a crashed test runner leaves no process behind.
 */
export async function startNodeProcess(script: string, env: Record<string, string>, readyTimeout = 8000): Promise<NodeProcess> {
  const child = spawn(process.execPath, [script], { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const output: Record<string, unknown>[] = [];
  const lines = createInterface({ input: child.stdout! });
  lines.on('line', (line) => {
    try {
      const parsed: unknown = JSON.parse(line);
      if (typeof parsed === 'object' && parsed !== null) output.push(parsed as Record<string, unknown>);
    } catch {
      // Not one of the fixture's JSON lines.
    }
  });

  const url = await new Promise<string>((resolve, reject) => {
    const fail = (reason: string) => {
      clearTimeout(timer);
      lines.close();
      child.kill('SIGKILL');
      reject(new Error(`${script} ${reason}\n--- stderr ---\n${stderr}`));
    };
    const timer = setTimeout(() => fail(`printed no {"url"} line within ${readyTimeout} ms`), readyTimeout);
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => fail(`exited (${signal ?? code}) before it was ready`);
    const onError = (error: Error) => fail(`could not start: ${error.message}`);
    child.once('exit', onExit);
    child.once('error', onError);
    lines.on('line', (line) => {
      let parsed: { url?: unknown };
      try {
        parsed = JSON.parse(line) as { url?: unknown };
      } catch {
        return;
      }
      if (typeof parsed?.url !== 'string') return;
      clearTimeout(timer);
      child.off('exit', onExit);
      child.off('error', onError);
      resolve(parsed.url);
    });
  });

  let stopped: ReturnType<NodeProcess['stop']> | undefined;
  return {
    url,
    child,
    output,
    stderr: () => stderr,
    stop(timeout = 3000) {
      return (stopped ??= (async () => {
        let forced = false;
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGTERM');
          const timer = setTimeout(() => {
            forced = true;
            child.kill('SIGKILL');
          }, timeout);
          await exited;
          clearTimeout(timer);
        }
        const [code, signal] = await exited;
        return { code, signal, forced };
      })());
    },
  };
}

const CLUSTER_NODE = fileURLToPath(new URL('../cluster/fixtures/cluster-node.mjs', import.meta.url));

/** test/cluster/fixtures/cluster-node.mjs, and the topics it reported subscribed (`{"subscribed":"<topic>"}` lines). */
export interface ClusterNodeProcess extends NodeProcess {
  readonly subscribed: Set<string>;
}

/**
 * Starts test/cluster/fixtures/cluster-node.mjs on `transport`; `env` gives it the broker's URL
 * (REDIS_URL or NATS_URL) and RIVERSIDE_PREFIX.
 */
export async function startClusterNode(
  transport: 'redis' | 'nats',
  env: Record<string, string>,
  readyTimeout?: number,
): Promise<ClusterNodeProcess> {
  const node = await startNodeProcess(CLUSTER_NODE, { ...env, RIVERSIDE_TRANSPORT: transport }, readyTimeout);
  const subscribed = new Set<string>();
  createInterface({ input: node.child.stdout! }).on('line', (line) => {
    try {
      const { subscribed: topic } = JSON.parse(line) as { subscribed?: unknown };
      if (typeof topic === 'string') subscribed.add(topic);
    } catch {
      // Not one of the fixture's JSON lines.
    }
  });
  return { ...node, subscribed };
}
