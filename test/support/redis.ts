import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { Redis } from 'ioredis';
import { binaryAvailable, freePort } from './brokers.js';
import { serviceAvailable } from './service-gate.js';

/** The shared Redis of the test run. */
export const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A test client on `url` that gives up at once when Redis is down (no retries, no queue). */
export function rawRedis(url = REDIS_URL): Redis {
  return new Redis(url, { lazyConnect: true, retryStrategy: () => null, enableOfflineQueue: false, connectTimeout: 1000 });
}

/** Whether the shared Redis answers PING (see serviceAvailable for what happens when not). */
export function redisAvailable(): Promise<boolean> {
  return serviceAvailable('Redis', REDIS_URL, async () => {
    const probe = rawRedis();
    let cause: Error | undefined;
    probe.on('error', (error: Error) => (cause ??= error));
    try {
      await probe.connect();
      await probe.ping();
    } catch (error) {
      throw cause ?? error; // 'connect ECONNREFUSED ...' rather than 'Connection is closed.'
    } finally {
      probe.disconnect();
    }
  });
}

/** Whether a redis-server binary can be run (for tests that stop and restart their own). */
export function redisServerAvailable(): Promise<boolean> {
  return binaryAvailable('redis-server', 'redis-server');
}

/** How many subscribers Redis counts on a channel (PUBSUB NUMSUB). */
export async function subscriberCount(redis: Redis, channel: string): Promise<number> {
  const reply = (await redis.call('PUBSUB', 'NUMSUB', channel)) as [string, number];
  return Number(reply[1]);
}

/**
 * A redis-server of the test's own on a free port, without persistence, that the test can
 * stop (SIGKILL, as in a crash) and start again on the same port. Never the shared one.
 */
export class OwnRedisServer {
  private process: ChildProcess | null = null;

  private constructor(readonly port: number) {}

  static async start(): Promise<OwnRedisServer> {
    const server = new OwnRedisServer(await freePort());
    await server.start();
    return server;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server and waits (up to 5 s) until it accepts connections. */
  async start(): Promise<void> {
    if (this.process) throw new Error('redis-server is already running');
    const child = spawn(
      'redis-server',
      ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    this.process = child;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error('not ready within 5000 ms')), 5000);
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill('SIGKILL');
        reject(new Error(`redis-server on port ${this.port} failed to start: ${error.message}\n${output}`));
      };
      const onExit = (code: number | null) => fail(new Error(`exited with ${code}`));
      child.on('error', fail);
      child.on('exit', onExit);
      child.stdout!.on('data', (chunk: Buffer) => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          child.off('exit', onExit);
          resolve();
        }
      });
    });
  }

  /** Kills redis-server at once (SIGKILL: no goodbye to its clients) and waits for it to exit. */
  async stop(): Promise<void> {
    const child = this.process;
    if (!child) return;
    this.process = null;
    if (child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGKILL');
      await exited;
    }
  }
}
