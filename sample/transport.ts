import cluster from 'node:cluster';
import { IpcTransport, LocalTransport, NatsTransport, RedisTransport, type RiversideTransport } from 'nestjs-riverside';

/**
 * The cluster transport, from the environment: TRANSPORT=redis (REDIS_URL) or nats (NATS_URL)
 * for processes on several machines; otherwise IpcTransport when running as a worker of
 * `WORKERS=n npm start`, and the single-process LocalTransport when not.
 */
export function chatTransport(): RiversideTransport {
  switch (process.env.TRANSPORT) {
    case 'redis':
      return new RedisTransport({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379' });
    case 'nats':
      return new NatsTransport({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222' });
    case undefined:
    case '':
    case 'ipc':
      return cluster.isWorker ? new IpcTransport() : new LocalTransport();
    default:
      throw new Error(`TRANSPORT must be redis, nats or ipc (got "${process.env.TRANSPORT}")`);
  }
}
