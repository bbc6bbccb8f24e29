// Socket.IO through the stock Nest gateway on @nestjs/platform-socket.io (IoAdapter, default
// server options). Echo: `socket.emit('echo', data)` answered by returning { event, data };
// fan-out: members join a room in handleConnection, broadcast with `server.to(room).emit()`.
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { IoAdapter } from '@nestjs/platform-socket.io';
import {
  MessageBody,
  type OnGatewayConnection,
  SubscribeMessage,
  WebSocketGateway,
  WebSocketServer,
} from '@nestjs/websockets';
import type { Server, Socket } from 'socket.io';
import { BENCH_PORT, type ContenderServer, serveBench } from './harness.js';

const ROOM = 'bench';

@WebSocketGateway(BENCH_PORT)
class EchoGateway implements OnGatewayConnection {
  @WebSocketServer() server!: Server;

  handleConnection(socket: Socket): void {
    const { user, role } = socket.handshake.query;
    if (typeof user !== 'string' || user === '') {
      socket.disconnect(true);
      return;
    }
    socket.data.userId = user;
    if (role === 'member') void socket.join(ROOM);
  }

  @SubscribeMessage('echo')
  echo(@MessageBody() data: unknown) {
    return { event: 'echo', data };
  }
}

@Module({ providers: [EchoGateway] })
class BenchModule {}

const app = await NestFactory.create(BenchModule, { logger: ['error', 'warn'] });
app.useWebSocketAdapter(new IoAdapter(app));
await app.init();
const gateway = app.get(EchoGateway);

const server: ContenderServer = {
  members: () => gateway.server.sockets.adapter.rooms.get(ROOM)?.size ?? 0,
  connections: () => gateway.server.engine.clientsCount,
  broadcast(message) {
    gateway.server.to(ROOM).emit('msg', message);
  },
  close: () => app.close(),
};

await serveBench(server, BENCH_PORT);
