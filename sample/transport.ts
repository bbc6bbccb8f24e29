import cluster from 'node:cluster';
import { IpcTransport, LocalTransport, NatsTransport, RedisTransport, type RiversideTransport, ShardedTransport } from 'nestjs-riverside';

/**
 * The cluster transport, from the environment: TRANSPORT=redis (REDIS_URL, or CHAT_REDIS_URL
 * alone; several comma-separated URLs shard the chat over those servers) or nats (NATS_URL) for
 * processes on several machines, with the prefix CHAT_PREFIX
 * (default 'chat'); otherwise IpcTransport when running as a worker of `WORKERS=n npm start`,
 * and the single-process LocalTransport when not.
 */
export function chatTransport(): RiversideTransport {
  const prefix = process.env.CHAT_PREFIX ?? 'chat';
  const transport = process.env.TRANSPORT ?? (process.env.CHAT_REDIS_URL ? 'redis' : '');
  switch (transport) {
    case 'redis': {
      const urls = (process.env.CHAT_REDIS_URL ?? process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').split(',');
      const shards = urls.map((url) => new RedisTransport({ url: url.trim(), prefix }));
      return shards.length === 1 ? shards[0] : new ShardedTransport({ shards });
    }
    case 'nats':
      return new NatsTransport({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', prefix });
    case '':
    case 'ipc':
      return cluster.isWorker ? new IpcTransport({ prefix }) : new LocalTransport();
    default:
      throw new Error(`TRANSPORT must be redis, nats or ipc (got "${transport}")`);
  }
}
