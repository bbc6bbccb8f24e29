// The baseline: a plain `ws` server doing the same work as the Riverside handler, written as
// a careful user would: authenticate at the upgrade (user id from the query), JSON.parse +
// JSON.stringify + send for echo, and for fan-out stringify once then send the string to
// every member.
// With BENCH_PREFRAMED=1 (the "raw ws (pre-framed)" contender), fan-out builds the frame once
// with ws's Sender.frame and writes that buffer to every member's TCP socket.
import { createServer } from 'node:http';
import type { Socket } from 'node:net';
import * as wsModule from 'ws';
import { WebSocket, WebSocketServer } from 'ws';
import { BENCH_PORT, type ContenderServer, serveBench } from './harness.js';

interface Client extends WebSocket {
  userId: string;
  _socket: Socket;
}

const { Sender } = wsModule as unknown as { Sender: { frame(data: Buffer, options: object): Buffer[] } };
const preframed = process.env.BENCH_PREFRAMED === '1';

const wss = new WebSocketServer({ noServer: true });
const members = new Set<Client>();

function onClose(this: WebSocket): void {
  members.delete(this as Client);
}

const http = createServer((_req, res) => res.writeHead(404).end());
http.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  const user = url.searchParams.get('user');
  if (url.pathname !== '/bench' || !user) {
    socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
    return;
  }
  const role = url.searchParams.get('role');
  wss.handleUpgrade(req, socket, head, (ws) => {
    const client = ws as Client;
    client.userId = user;
    client.on('error', () => {});
    client.on('message', (data) => {
      let message: unknown;
      try {
        message = JSON.parse(data.toString());
      } catch {
        return;
      }
      client.send(JSON.stringify(message));
    });
    if (role === 'member') {
      members.add(client);
      client.on('close', onClose);
    }
  });
});

await new Promise<void>((resolve) => http.listen(BENCH_PORT, resolve));

const server: ContenderServer = {
  members: () => members.size,
  connections: () => wss.clients.size,
  broadcast(message) {
    const text = JSON.stringify(message);
    if (preframed) {
      const frame = Buffer.concat(Sender.frame(Buffer.from(text), { fin: true, opcode: 1, mask: false, readOnly: false, rsv1: false }));
      for (const client of members) {
        if (client.readyState === WebSocket.OPEN) client._socket.write(frame);
      }
      return;
    }
    for (const client of members) {
      if (client.readyState === WebSocket.OPEN) client.send(text);
    }
  },
  close: () =>
    new Promise((resolve) => {
      for (const client of wss.clients) client.terminate();
      http.close(() => resolve());
    }),
};

await serveBench(server, BENCH_PORT);
