import { execFile } from 'node:child_process';
import { createServer, Socket } from 'node:net';
import { promisify } from 'node:util';
import { serviceAvailable } from './service-gate.js';

// What the Redis and NATS test support (redis.ts, nats.ts) share.

/**
 * A prefix (Redis channel or NATS subject prefix) no other test, file or run on a shared broker
 * uses: one NATS subject token, so valid for both.
 */
export function uniquePrefix(tag: string): string {
  return `rvtest-${process.pid}-${Date.now()}-${tag}`;
}

/** A free TCP port on loopback (nothing listens on it when this returns). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether something on loopback accepts TCP connections on `port` within `timeout` ms. */
export function accepting(port: number, timeout = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (up: boolean) => {
      socket.destroy();
      resolve(up);
    };
    socket.setTimeout(timeout, () => done(false));
    socket.once('error', () => done(false));
    socket.connect(port, '127.0.0.1', () => done(true));
  });
}

/**
 * Whether a server binary (redis-server, nats-server) can be run, for tests that stop and
 * restart a server of their own (see serviceAvailable for what happens when not).
 */
export function binaryAvailable(service: string, binary: string): Promise<boolean> {
  return serviceAvailable(service, `the ${binary} binary`, async () => {
    await promisify(execFile)(binary, ['--version'], { timeout: 5000 });
  });
}
