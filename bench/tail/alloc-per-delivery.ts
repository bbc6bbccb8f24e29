// `npm run build && tsc -p bench/tsconfig.json && node bench/dist/tail/alloc-per-delivery.js
// [transport] [deliveries] [perSecond]` (Redis at REDIS_URL for 'redis'): two Riverside nodes in
// this one process (A and B, on `redis` or on one in-process `local` node), 200 WebSocket clients
// connected to B, and A delivering `{ n }` to a random one of their users at a steady rate. While
// it runs, V8's sampling heap profiler counts every allocation, including the objects the next
// scavenge throws away: the bytes allocated per delivery (sender and receiver together, with the
// clients' own reading) and the functions that allocate most. What it answers: what makes the
// workers' young generation fill (bench/PROFILE.md, "The Redis tail at 100,000 connections").
import 'reflect-metadata';
import { Module } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Session as InspectorSession } from 'node:inspector/promises';
import { WebSocket } from 'ws';
import {
  type AuthRequest,
  type AuthResult,
  DeliveryService,
  OnAuthenticate,
  RedisTransport,
  RiversideHandler,
  RiversideModule,
} from 'nestjs-riverside';

const kind = process.argv[2] === 'local' ? 'local' : 'redis';
const deliveries = Number(process.argv[3] ?? 20_000);
const perSecond = Number(process.argv[4] ?? 2000);
const CLIENTS = 200;
const prefix = `alloc-${process.pid}`;

@RiversideHandler({ path: '/' })
class Handler {
  @OnAuthenticate()
  authenticate(request: AuthRequest): AuthResult {
    return { userId: String(request.queries.user) };
  }
}

async function node(port: number) {
  const transport = kind === 'redis' ? new RedisTransport({ url: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', prefix }) : undefined;
  @Module({ imports: [RiversideModule.forRoot({ port, idleTimeout: 0, ...(transport ? { transport } : {}) })], providers: [Handler] })
  class AppModule {}
  const app = await NestFactory.createApplicationContext(AppModule, { logger: ['error', 'warn'] });
  return app;
}

const portB = 29200 + (process.pid % 500);
const b = await node(portB);
const a = kind === 'redis' ? await node(portB + 1) : b;
const clients = await Promise.all(
  Array.from({ length: CLIENTS }, (_, i) => new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${portB}/?user=u${i}`);
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
  })),
);
let received = 0;
for (const ws of clients) ws.on('message', () => received++);
await new Promise((resolve) => setTimeout(resolve, 300)); // subscriptions confirmed

const delivery = a.get(DeliveryService);
function drive(count: number): Promise<void> {
  return new Promise((resolve) => {
    const target = received + count;
    let sent = 0;
    const began = performance.now();
    const timer = setInterval(() => {
      const due = Math.min(count, Math.floor(((performance.now() - began) * perSecond) / 1000));
      for (; sent < due; sent++) delivery.deliver({ user: `u${sent % CLIENTS}` }, { n: sent });
      if (sent < count) return;
      clearInterval(timer);
      const wait = setInterval(() => {
        if (received < target) return;
        clearInterval(wait);
        resolve();
      }, 5);
    }, 1);
  });
}

await drive(Math.min(5000, deliveries)); // warm-up
const inspector = new InspectorSession();
inspector.connect();
await inspector.post('HeapProfiler.enable');
await inspector.post('HeapProfiler.startSampling', {
  samplingInterval: 256,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
await drive(deliveries);
const { profile } = await inspector.post('HeapProfiler.stopSampling');

interface ProfileNode { callFrame: { functionName: string; url: string; lineNumber: number }; selfSize: number; children: ProfileNode[] }
const bySite = new Map<string, number>();
/** Who allocates: Riverside (dist/), a package, Node itself, V8 builtins, or this script (its clients). */
const byOwner = new Map<string, number>();
function ownerOf(url: string): string {
  if (url.includes('/node_modules/')) return url.replace(/^.*\/node_modules\/((@[^/]+\/)?[^/]+).*$/, '$1');
  if (url.includes('/dist/tail/')) return 'this script (driver and clients)';
  if (url.includes('/dist/')) return 'nestjs-riverside';
  if (url.startsWith('node:') || url === '' || !url.includes('/')) return url === '' ? 'V8 builtins' : 'Node';
  return url;
}
let total = 0;
// ALLOC_STACKS=<regex>: also the call stacks that allocate in functions whose name matches.
const stacksOf = process.env.ALLOC_STACKS ? new RegExp(process.env.ALLOC_STACKS) : null;
const stacks = new Map<string, number>();
const path: string[] = [];
const walk = (n: ProfileNode) => {
  total += n.selfSize;
  path.push(`${n.callFrame.functionName || '(anonymous)'}:${n.callFrame.lineNumber + 1}`);
  if (stacksOf !== null && n.selfSize > 0 && stacksOf.test(n.callFrame.functionName)) {
    const stack = path.slice(-8).join(' < ');
    stacks.set(stack, (stacks.get(stack) ?? 0) + n.selfSize);
  }
  if (n.selfSize > 0) {
    const owner = ownerOf(n.callFrame.url);
    byOwner.set(owner, (byOwner.get(owner) ?? 0) + n.selfSize);
    const file = n.callFrame.url.replace(/^.*\/(node_modules\/)?/, '');
    const site = `${n.callFrame.functionName || '(anonymous)'} ${file}:${n.callFrame.lineNumber + 1}`;
    bySite.set(site, (bySite.get(site) ?? 0) + n.selfSize);
  }
  n.children.forEach(walk);
  path.pop();
};
walk(profile.head as ProfileNode);
console.log(`${kind}: ${deliveries} deliveries at ${perSecond}/s to ${CLIENTS} clients: ${(total / deliveries).toFixed(0)} B allocated per delivery (whole process: sender, receiver and the clients)`);
for (const [owner, bytes] of [...byOwner].sort((x, y) => y[1] - x[1])) {
  console.log(`${(bytes / deliveries).toFixed(0).padStart(6)} B  ${owner}`);
}
for (const [site, bytes] of [...bySite].sort((x, y) => y[1] - x[1]).slice(0, 25)) {
  console.log(`${(bytes / deliveries).toFixed(0).padStart(6)} B  ${site}`);
}
for (const [stack, bytes] of [...stacks].sort((x, y) => y[1] - x[1]).slice(0, 10)) {
  console.log(`${(bytes / deliveries).toFixed(0).padStart(6)} B  ${stack}`);
}
for (const ws of clients) ws.terminate();
await Promise.all([a.close(), ...(a === b ? [] : [b.close()])]);
process.exit(0);
