import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { availableParallelism } from 'node:os';

// Two cores here: the server under test gets the first, the load generators (and this
// orchestrator, which is idle while measuring) the last. Pinning keeps them from stealing
// each other's core, and every contender gets the same split.
const CORES = availableParallelism();
const CAN_PIN = CORES >= 2 && spawnSync('taskset', ['-c', '0', 'true']).status === 0;
export const SERVER_CPU = 0;
export const LOAD_CPU = CORES - 1;

export function pinningNote(): string {
  return CAN_PIN
    ? `server pinned to CPU ${SERVER_CPU}, load generators to CPU ${LOAD_CPU} (taskset)`
    : 'no CPU pinning (taskset missing or a single core)';
}

/** A child Node process spoken to over IPC; messages are awaited by their `type`. */
export class Child {
  private readonly inbox: { type: string }[] = [];
  private readonly waiters: { type: string; resolve: (m: never) => void; reject: (e: Error) => void }[] = [];
  private exitCode: number | null | undefined = undefined;
  readonly exited: Promise<void>;

  constructor(
    readonly name: string,
    readonly process: ChildProcess,
  ) {
    process.on('message', (message: { type: string; message?: string }) => {
      // A load generator that fails reports 'error' instead of what is awaited.
      if (message.type === 'error') {
        for (const waiter of this.waiters.splice(0)) waiter.reject(new Error(`${name}: ${message.message}`));
      }
      const index = this.waiters.findIndex((waiter) => waiter.type === message.type);
      if (index === -1) this.inbox.push(message);
      else this.waiters.splice(index, 1)[0].resolve(message as never);
    });
    this.exited = new Promise((resolve) =>
      process.on('exit', (code, signal) => {
        this.exitCode = code;
        for (const waiter of this.waiters.splice(0)) {
          waiter.reject(new Error(`${name} exited (${signal ?? code}) while ${waiter.type} was awaited`));
        }
        resolve();
      }),
    );
  }

  get pid(): number {
    return this.process.pid ?? -1;
  }

  send(message: object): void {
    if (this.process.connected) this.process.send(message);
  }

  /** The next message of this type (already received, or within `timeoutMs`). */
  next<T extends { type: string }>(type: T['type'], timeoutMs: number): Promise<T> {
    const index = this.inbox.findIndex((message) => message.type === type);
    if (index !== -1) return Promise.resolve(this.inbox.splice(index, 1)[0] as T);
    const error = this.inbox.find((message) => message.type === 'error') as { message?: string } | undefined;
    if (error) return Promise.reject(new Error(`${this.name}: ${error.message}`));
    if (this.exitCode !== undefined) return Promise.reject(new Error(`${this.name} has exited (${this.exitCode})`));
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        const at = this.waiters.indexOf(waiter);
        if (at !== -1) this.waiters.splice(at, 1);
        reject(new Error(`${this.name}: no ${type} within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = {
        type,
        resolve: (message: never) => {
          clearTimeout(timer);
          resolve(message as T);
        },
        reject: (cause: Error) => {
          clearTimeout(timer);
          reject(cause);
        },
      };
      this.waiters.push(waiter);
    });
  }

  /** Waits for the exit, killing the process after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    if (this.exitCode !== undefined) return;
    const timer = setTimeout(() => this.process.kill('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** Starts `node [flags] script '<config json>'` on the given CPU. */
export function spawnNode(
  name: string,
  script: string,
  config: object,
  options: { cpu: number; nodeFlags?: string[]; env?: Record<string, string> },
): Child {
  const args = [...(options.nodeFlags ?? []), script, JSON.stringify(config)];
  const [command, commandArgs] = CAN_PIN && options.cpu >= 0
    ? ['taskset', ['-c', String(options.cpu), process.execPath, ...args]]
    : [process.execPath, args];
  const child = spawn(command, commandArgs, {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, ...options.env },
  });
  return new Child(name, child);
}

/** A port free right now on loopback (the Nest gateways need theirs before they start). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

let nextSource = 2;
/**
 * A fresh 127.0.0.x source address per load generator: each has its own ~28k ephemeral
 * ports, and the TIME_WAIT left by one scenario never starves the next.
 */
export function sourceAddress(): string {
  const address = `127.0.0.${nextSource}`;
  nextSource = nextSource >= 254 ? 2 : nextSource + 1;
  return address;
}
