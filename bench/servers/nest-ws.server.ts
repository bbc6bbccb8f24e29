// The stock Nest gateway on @nestjs/platform-ws: clients send { event: 'echo', data } and get
// { event: 'echo', data } back. Nest's WsAdapter has no handshake hook, so the user id is read
// in handleConnection, as Nest's docs suggest.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WsAdapter } from '@nestjs/platform-ws';
import {
  MessageBody,
  type OnGatewayConnection,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import type { IncomingMessage } from 'node:http';
import type { WebSocket, WebSocketServer as WsServer } from 'ws';
import { BENCH_PORT, type ContenderServer, serveBench } from './harness.js';

interface Client extends WebSocket {
  userId: string;
}

@WebSocketGateway(BENCH_PORT)
class EchoGateway implements OnGatewayConnection {
  @WebSocketServer() server!: WsServer;

  handleConnection(client: Client, request: IncomingMessage): void {
    const query = new URL(request.url ?? '/', 'http://localhost').searchParams;
    const user = query.get('user');
    if (!user) {
      client.close(4001, 'unauthorized');
      return;
    }
    client.userId = user;
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return { event: 'echo', data };
  }
}

@Module({ providers: [EchoGateway] })
class BenchModule {}

const app = await NestFactory.create(BenchModule, { logger: ['error', 'warn'] });
app.useWebSocketAdapter(new WsAdapter(app));
await app.init();
const gateway = app.get(EchoGateway);

const server: ContenderServer = {
  members: () => 0,
  connections: () => gateway.server.clients.size,
  broadcast() {
    throw new Error('the Nest ws gateway has no broadcast primitive: fan-out is not run against it');
  },
  close: () => app.close(),
};

await serveBench(server, BENCH_PORT);
