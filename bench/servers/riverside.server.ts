// Riverside, from the built package (dist/), as an application uses it: authenticate at the
// handshake, an echo @OnMessage returning the message, members joined to one channel in
// @OnInit, and fan-out through DeliveryService.deliver({ channel }). BENCH_TRANSPORT=redis|nats
// puts it on a cluster transport (REDIS_URL / NATS_URL, a prefix of its own).
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import {
  AuthError,
  NatsTransport,
  RedisTransport,
  type AuthRequest,
  type AuthResult,
  DeliveryService,
  OnAuthenticate,
  OnInit,
  OnMessage,
  RiversideHandler,
  RiversideModule,
  RiversideStats,
  type Session,
} from 'nestjs-riverside';
import { BENCH_PORT, type ContenderServer, serveBench } from './harness.js';

const CHANNEL = 'bench';
const PREFIX = `bench-${process.pid}`;
const transport =
  process.env.BENCH_TRANSPORT === 'redis'
    ? new RedisTransport({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix: PREFIX })
    : process.env.BENCH_TRANSPORT === 'nats'
      ? new NatsTransport({ servers: process.env.NATS_URL ?? 'nats://127.0.0.1:4222', prefix: PREFIX })
      : undefined;

@RiversideHandler({ path: '/bench' })
class BenchHandler {
  @OnAuthenticate()
  authenticate(request: AuthRequest): AuthResult<string> {
    const { user, role } = request.queries;
    if (typeof user !== 'string' || user === '') throw AuthError.unauthorized();
    return { userId: user, state: role === 'member' ? 'member' : 'other' };
  }

  @OnInit()
  init(session: Session<string>): void {
    if (session.state === 'member') session.join(CHANNEL);
  }

  @OnMessage()
  echo(message: unknown): unknown {
    return message;
  }
}

@Module({
  imports: [
    RiversideModule.forRoot({
      port: BENCH_PORT,
      // Pipelined echo sends thousands of frames per second per connection: lift the flood
      // limit (the counter still runs). Idle members must outlive the whole run.
      transmissionLimit: { capacity: Infinity, duration: 1000 },
      idleTimeout: 600_000,
      ...(transport ? { transport } : {}),
    }),
  ],
  providers: [BenchHandler],
})
class BenchModule {}

const app = await NestFactory.createApplicationContext(BenchModule, { logger: ['error', 'warn'] });
const delivery = app.get(DeliveryService);
const stats = app.get(RiversideStats);

const server: ContenderServer = {
  members: () => delivery.localMembers(CHANNEL).length,
  connections: () => stats.currentConnections,
  broadcast(message) {
    delivery.deliver({ channel: CHANNEL }, message);
  },
  close: () => app.close(),
};

await serveBench(server, BENCH_PORT);
