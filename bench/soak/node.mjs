// One node of `npm run soak`, on the built package (dist/). Environment: SOAK_TRANSPORT ("redis"
// with REDIS_URL, several comma-separated for a ShardedTransport over them, or "nats" with
// NATS_URL) and SOAK_PREFIX. Prints {"url": ...} once it listens.
//
// Clients authenticate with `?user=<id>&sid=<id>`; messages:
//   { "join": "<channel>" }  -> joins, answers { "joined": "<channel>" }
//   { "leave": "<channel>" } -> leaves, answers { "left": "<channel>" }
//   { "burst": [[target, message], ...] } -> DeliveryService.deliver(target, message) for each, in order
import 'reflect-metadata';
import { Inject, Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  DeliveryService,
  NatsTransport,
  OnAuthenticate,
  OnMessage,
  RedisTransport,
  RiversideHandler,
  RiversideModule,
  RiversideServer,
  ShardedTransport,
} from '../../dist/index.js';

function redisTransport() {
  // Several URLs, comma-separated: one shard per Redis server.
  const urls = (process.env.REDIS_URL ?? 'redis://127.0.0.1:6379').split(',');
  const shards = urls.map((url) => new RedisTransport({ url, prefix: process.env.SOAK_PREFIX }));
  return shards.length === 1 ? shards[0] : new ShardedTransport({ shards });
}

const transport =
  process.env.SOAK_TRANSPORT === 'nats'
    ? new NatsTransport({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', prefix: process.env.SOAK_PREFIX })
    : redisTransport();

class SoakHandler {
  constructor(delivery) {
    this.delivery = delivery;
  }

  authenticate(req) {
    return { userId: String(req.queries.user), sessionId: String(req.queries.sid) };
  }

  onMessage(message, session) {
    if (typeof message.join === 'string') {
      session.join(message.join);
      return { joined: message.join };
    }
    if (typeof message.leave === 'string') {
      session.leave(message.leave);
      return { left: message.leave };
    }
    if (Array.isArray(message.burst)) for (const [target, payload] of message.burst) this.delivery.deliver(target, payload);
    return undefined;
  }
}
Inject(DeliveryService)(SoakHandler, undefined, 0);
Reflect.decorate([RiversideHandler()], SoakHandler);
for (const [method, decorator] of [['authenticate', OnAuthenticate()], ['onMessage', OnMessage()]]) {
  Reflect.decorate([decorator], SoakHandler.prototype, method, Object.getOwnPropertyDescriptor(SoakHandler.prototype, method));
}

class SoakModule {}
Reflect.decorate(
  [
    Module({
      imports: [
        RiversideModule.forRoot({
          port: 0,
          host: '127.0.0.1',
          transport,
          // The driver's senders send bursts far faster than a person would.
          transmissionLimit: { capacity: 1_000_000, duration: 1000 },
        }),
      ],
      providers: [SoakHandler],
    }),
  ],
  SoakModule,
);

const app = await NestFactory.createApplicationContext(SoakModule, { logger: ['error', 'warn'] });
process.stdout.write(`${JSON.stringify({ url: app.get(RiversideServer).url('/') })}\n`);
const stop = async () => {
  await app.close();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.stdin.on('end', stop);
process.stdin.resume();
