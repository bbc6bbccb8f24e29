// The server of `bench/soak/churn.mjs`: CHURN_CONTENDER=riverside (the built package, dist/) or
// raw-ws, on CHURN_PORT. Start it with --expose-gc. On { type: 'sample' } over IPC it reports its
// CPU time, then forces GC, then reports heap, RSS, the size of every map and set Riverside
// keeps, and the process's active handles and timers.
//
// Clients authenticate with `?user=<id>&role=member|idle`; no `user` is refused (401). A member
// joins the channel "churn" in @OnInit. Every message is echoed.
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { WebSocketServer } from 'ws';
import {
  AuthError,
  OnAuthenticate,
  OnInit,
  OnMessage,
  RiversideHandler,
  RiversideModule,
  RiversideServer,
} from '../../dist/index.js';

const PORT = Number(process.env.CHURN_PORT ?? 0);
const CHANNEL = 'churn';
const gc = globalThis.gc;
if (gc === undefined) throw new Error('start with --expose-gc');

/** Riverside's maps and sets, read through their (internal) fields. */
function riversideSizes(server) {
  const registry = server.registry;
  const channel = registry.byChannel.get(CHANNEL);
  return {
    connections: registry.connections.size,
    users: registry.byUser.size,
    channels: registry.byChannel.size,
    channelMembers: channel?.size ?? 0,
    handshakes: server.handshakes.size,
    handshakeDeadlines: server.deadlines.pending.size,
    preUpgradeGuard: server.guard.pending.size,
    refusalLog: server.refusals.quiet.size,
    pendingTerminations: server.pendingTerminations.size,
    relaySubscribing: server.relay.subscribing.size,
    gatewayClients: server.gateways.clients.size,
    statsTerminationKeys: Object.keys(server.stats.terminations).length,
    statsRejectionKeys: Object.keys(server.stats.rejections).length,
    openNow: server.stats.currentConnections,
    opened: server.stats.totalConnections,
  };
}

async function startRiverside() {
  class ChurnHandler {
    authenticate(request) {
      const { user, role } = request.queries;
      if (typeof user !== 'string' || user === '') throw AuthError.unauthorized();
      return { userId: user, state: role === 'member' ? 'member' : 'other' };
    }
    init(session) {
      if (session.state === 'member') session.join(CHANNEL);
    }
    echo(message) {
      return message;
    }
  }
  RiversideHandler({ path: '/churn' })(ChurnHandler);
  const proto = ChurnHandler.prototype;
  for (const [name, decorator] of [['authenticate', OnAuthenticate()], ['init', OnInit()], ['echo', OnMessage()]]) {
    decorator(proto, name, Object.getOwnPropertyDescriptor(proto, name));
  }
  class ChurnModule {}
  Module({
    imports: [RiversideModule.forRoot({ port: PORT, host: '127.0.0.1', transmissionLimit: { capacity: Infinity, duration: 1000 }, idleTimeout: 600_000 })],
    providers: [ChurnHandler],
  })(ChurnModule);
  const app = await NestFactory.createApplicationContext(ChurnModule, { logger: ['error', 'warn'] });
  const server = app.get(RiversideServer);
  return { port: server.address().port, sizes: () => riversideSizes(server) };
}

async function startRawWs() {
  const wss = new WebSocketServer({ noServer: true });
  const members = new Set();
  function onClose() {
    members.delete(this);
  }
  const http = createServer((_req, res) => res.writeHead(404).end());
  http.on('upgrade', (req, socket, head) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const user = url.searchParams.get('user');
    if (url.pathname !== '/churn' || !user) {
      socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const role = url.searchParams.get('role');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.userId = user;
      ws.on('error', () => {});
      ws.on('message', (data) => {
        let message;
        try {
          message = JSON.parse(data.toString());
        } catch {
          return;
        }
        ws.send(JSON.stringify(message));
      });
      if (role === 'member') {
        members.add(ws);
        ws.on('close', onClose);
      }
    });
  });
  await new Promise((resolve) => http.listen(PORT, '127.0.0.1', resolve));
  return { port: http.address().port, sizes: () => ({ openNow: wss.clients.size, clients: wss.clients.size, channelMembers: members.size }) };
}

const contender = process.env.CHURN_CONTENDER === 'raw-ws' ? await startRawWs() : await startRiverside();
// Time spent in GC between samples (the forced collections of a sample are left out).
let gcMs = 0;
let gcCount = 0;
let majorGcs = 0;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    gcMs += entry.duration;
    gcCount++;
    if (entry.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR) majorGcs++;
  }
}).observe({ entryTypes: ['gc'] });

/** TIME_WAIT sockets of the whole machine (every process's, the kernel's hash tables hold them all). */
function timeWaits() {
  return Number(/tw (\d+)/.exec(readFileSync('/proc/net/sockstat', 'latin1'))?.[1] ?? -1);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

process.on('message', async (command) => {
  if (command.type === 'open-now') return process.send({ type: 'open-now', openNow: contender.sizes().openNow });
  if (command.type !== 'sample') return;
  // Splits a --trace-* log into batches (stdout goes to CHURN_SERVER_LOG then).
  if (process.env.CHURN_SERVER_LOG) process.stdout.write('--- sample\n');
  const cpu = process.cpuUsage();
  // Entries of the batch's collections are delivered in a later task: let them in first.
  await sleep(0);
  const gcOfBatch = { gcMs, gcCount, majorGcs };
  // CHURN_FORCE_GC=0: no forced GC (heap and RSS then are not after GC), to see what the
  // process does between its own collections only.
  for (let i = 0; i < 4 && process.env.CHURN_FORCE_GC !== '0'; i++) {
    gc();
    await sleep(20);
  }
  const memory = process.memoryUsage();
  await sleep(0);
  gcMs = 0;
  gcCount = 0;
  majorGcs = 0;
  const resources = process.getActiveResourcesInfo();
  process.send({
    type: 'sample',
    cpuMicros: cpu.user + cpu.system,
    userMicros: cpu.user,
    systemMicros: cpu.system,
    ...gcOfBatch,
    timeWaits: timeWaits(),
    cpuAfterGcMicros: (({ user, system }) => user + system)(process.cpuUsage()),
    heapUsed: memory.heapUsed,
    rss: memory.rss,
    external: memory.external,
    sizes: contender.sizes(),
    handles: resources.filter((name) => name !== 'Timeout').length,
    timers: resources.filter((name) => name === 'Timeout').length,
  });
});
// Whatever becomes of bench/soak/churn.mjs (a crash, a kill), the server does not outlive it.
process.on('disconnect', () => process.exit(0));
process.send({ type: 'ready', port: contender.port });
