// Micro-benchmarks (STYLE 20): what Riverside's own code costs per frame and per delivery,
// against the raw ws code doing the same, with sockets that discard what is written. On a
// real loopback socket the kernel's send dominates a delivery; here only user space is left,
// which is the part a framework can make cheaper or dearer. Runs in one process, pinned to the
// server's CPU by the orchestrator. By hand: `node bench/dist/micro.js` (after `npm run bench`
// or `tsc -p bench/tsconfig.json`) prints a table.
//
// It reaches into dist/ internals (Connection, SessionRegistry, LocalDelivery): that is what it
// measures, and it has to be kept in step with them.
import { type CanActivate, type PipeTransform, UseGuards, UsePipes } from '@nestjs/common';
import { ApplicationConfig, NestContainer } from '@nestjs/core';
import { Duplex } from 'node:stream';
import { WebSocket } from 'ws';
import { boundLifetime, childConfig, send } from './lib/process.js';
import { median } from './lib/stats.js';

type ConnectionModule = typeof import('../dist/connection/connection.js');
type RegistryModule = typeof import('../dist/delivery/session-registry.js');
type LocalDeliveryModule = typeof import('../dist/delivery/local-delivery.js');
type EncodedMessageModule = typeof import('../dist/delivery/encoded-message.js');
type OptionsModule = typeof import('../dist/module/riverside-options.resolver.js');
type CodecModule = typeof import('../dist/codec/json.codec.js');
type StatsModule = typeof import('../dist/stats/riverside-stats.js');
type ContextCreatorModule = typeof import('../dist/handler/riverside-context.creator.js');
type ConnectionHost = import('../dist/connection/connection.js').ConnectionHost;
type HandlerDefinition = import('../dist/handler/handler-definition.js').HandlerDefinition;
type HandlerExplorer = import('../dist/handler/handler.explorer.js').HandlerExplorer;

// Compiled to bench/dist/micro.js: the package's dist/ is two levels up from there.
const load = <T>(path: string): Promise<T> => import(new URL(`../../dist/${path}`, import.meta.url).href) as Promise<T>;
const { Connection } = await load<ConnectionModule>('connection/connection.js');
const { SessionRegistry } = await load<RegistryModule>('delivery/session-registry.js');
const { LocalDelivery } = await load<LocalDeliveryModule>('delivery/local-delivery.js');
const { EncodedMessage } = await load<EncodedMessageModule>('delivery/encoded-message.js');
const { resolveRiversideOptions } = await load<OptionsModule>('module/riverside-options.resolver.js');
const { JsonCodec } = await load<CodecModule>('codec/json.codec.js');
const { RiversideStats } = await load<StatsModule>('stats/riverside-stats.js');
const { RiversideContextCreator } = await load<ContextCreatorModule>('handler/riverside-context.creator.js');

export interface MicroResult {
  name: string;
  size: string;
  rawOpsPerSec: number;
  riversideOpsPerSec: number;
}

boundLifetime(5 * 60_000);
const { durationMs = 400 } = childConfig<{ durationMs?: number }>();

/** A Duplex that swallows writes, as ws accepts in place of a net.Socket. */
function sinkWebSocket(): WebSocket {
  const socket = new Duplex({
    read() {},
    write(_chunk, _encoding, callback) {
      callback();
    },
    writev(_chunks, callback) {
      callback();
    },
  });
  // ws builds server-side sockets this way in WebSocketServer#completeUpgrade.
  const ws = new (WebSocket as unknown as new (address: null, protocols: undefined, options: object) => WebSocket)(null, undefined, {});
  (ws as unknown as { setSocket(socket: Duplex, head: Buffer, options: object): void }).setSocket(socket, Buffer.alloc(0), {
    allowSynchronousEvents: true,
    maxPayload: 1024 * 1024,
    skipUTF8Validation: false,
  });
  return ws;
}

// ---- Riverside's side: a registry and connections as the server builds them ----------------

const codec = new JsonCodec();
const options = resolveRiversideOptions({ port: 0, transmissionLimit: { capacity: Infinity, duration: 1000 }, idleTimeout: 600_000 });
const registry = new SessionRegistry();
const host: ConnectionHost = {
  options,
  stats: new RiversideStats(),
  registry,
  logger: console as unknown as ConnectionHost['logger'],
  now: () => performance.now(),
  connectionClosed() {},
  connectionTerminated() {},
  trackTermination() {},
};
const handler: HandlerDefinition = {
  className: 'BenchHandler',
  path: '/bench',
  codec,
  codecName: 'JsonCodec',
  subprotocols: [],
  authenticate: null,
  init: null,
  message: (message: unknown) => message,
  router: null,
  info: null,
  handshakeGuards: null,
  terminate: null,
  labels: { authenticate: 'a', init: 'i', message: 'm', info: 'n', terminate: 't' },
};
let sessions = 0;
function riversideConnection(channel?: string, definition: HandlerDefinition = handler) {
  const ws = sinkWebSocket();
  const id = String(sessions++);
  const connection = new Connection(ws, definition, host, {
    userId: `u${id}`,
    sessionId: id.padStart(40, '0'),
    peer: { address: '127.0.0.1', port: 1, forwardedFor: '' },
    subprotocol: null,
    state: undefined,
  });
  registry.add(connection);
  connection.start();
  if (channel !== undefined) connection.join(channel, undefined);
  return { ws, connection };
}

// ---- timing --------------------------------------------------------------------------------

/** Operations per second of `batch` (which does `perBatch` of them) over about durationMs, after a warm-up. */
function opsPerSec(batch: () => void, perBatch: number): number {
  const run = (ms: number) => {
    const end = performance.now() + ms;
    let done = 0;
    while (performance.now() < end) {
      batch();
      done += perBatch;
    }
    return done;
  };
  run(durationMs / 4);
  const start = performance.now();
  const done = run(durationMs);
  return done / ((performance.now() - start) / 1000);
}

/** Raw and Riverside in turns (A B A B A B), the median of each: GC debt does not favour either. */
function compare(raw: () => void, riverside: () => void, perBatch: number): [number, number] {
  const rates: [number[], number[]] = [[], []];
  for (let turn = 0; turn < 3; turn++) {
    rates[0].push(opsPerSec(raw, perBatch));
    rates[1].push(opsPerSec(riverside, perBatch));
  }
  return [median(rates[0]), median(rates[1])];
}

/** opsPerSec for a batch that must be awaited. */
async function opsPerSecAsync(batch: () => Promise<void>, perBatch: number): Promise<number> {
  const run = async (ms: number) => {
    const end = performance.now() + ms;
    let done = 0;
    while (performance.now() < end) {
      await batch();
      done += perBatch;
    }
    return done;
  };
  await run(durationMs / 4);
  const start = performance.now();
  const done = await run(durationMs);
  return done / ((performance.now() - start) / 1000);
}

/** compare() for several awaited batches, in turns, the median of each. */
async function compareAsync(batches: (() => Promise<void>)[], perBatch: number): Promise<number[]> {
  const rates: number[][] = batches.map(() => []);
  for (let turn = 0; turn < 3; turn++) {
    for (let i = 0; i < batches.length; i++) rates[i].push(await opsPerSecAsync(batches[i], perBatch));
  }
  return rates.map(median);
}

const results: MicroResult[] = [];

// Frame dispatch: a decoded text frame in, the echo out (what ws's Receiver hands over).
for (const bytes of [64, 1024, 16 * 1024]) {
  const base = JSON.stringify({ type: 'chat', seq: 1, text: '' }).length;
  const frame = Buffer.from(JSON.stringify({ type: 'chat', seq: 1, text: 'x'.repeat(bytes - base) }));
  const raw = sinkWebSocket();
  raw.on('message', (data: Buffer) => {
    let message: unknown;
    try {
      message = JSON.parse(data.toString());
    } catch {
      return;
    }
    raw.send(JSON.stringify(message));
  });
  const { ws } = riversideConnection();
  const per = 100;
  const [rawRate, riversideRate] = compare(
    () => {
      for (let i = 0; i < per; i++) raw.emit('message', frame, false);
    },
    () => {
      for (let i = 0; i < per; i++) ws.emit('message', frame, false);
    },
    per,
  );
  results.push({ name: 'dispatch (decode, handler, encode, send)', size: `${bytes} B`, rawOpsPerSec: rawRate, riversideOpsPerSec: riversideRate });
}

// Dispatch through Nest enhancers (issue 9): the same echo with one guard and one pipe, built
// once as the explorer builds it. An enhanced callback is async (guards and pipes may be), so
// frames are dispatched in batches and each batch is awaited until every frame was handled; the
// plain handler and raw ws go through the same loop, for a like-for-like figure.
{
  let handled = 0;
  class AllowGuard implements CanActivate {
    canActivate(): boolean {
      return true;
    }
  }
  class SamePipe implements PipeTransform {
    transform(value: unknown): unknown {
      return value;
    }
  }
  class EnhancedHandler {
    onMessage(message: unknown): unknown {
      handled++;
      return message;
    }
  }
  const descriptor = Object.getOwnPropertyDescriptor(EnhancedHandler.prototype, 'onMessage') as PropertyDescriptor;
  UseGuards(new AllowGuard())(EnhancedHandler.prototype, 'onMessage', descriptor);
  UsePipes(new SamePipe())(EnhancedHandler.prototype, 'onMessage', descriptor);
  const creator = new RiversideContextCreator(new NestContainer(new ApplicationConfig()));
  const enhanced = creator.create(new EnhancedHandler(), 'onMessage', '', { pattern: 'onMessage', replyRef: null });
  if (enhanced === null) throw new Error('the bench handler should have been wrapped');
  const plain = new EnhancedHandler();
  const plainWs = riversideConnection(undefined, { ...handler, message: (message: unknown) => plain.onMessage(message) }).ws;
  const enhancedWs = riversideConnection(undefined, { ...handler, message: enhanced }).ws;
  const raw = sinkWebSocket();
  raw.on('message', (data: Buffer) => {
    handled++;
    raw.send(JSON.stringify(JSON.parse(data.toString())));
  });
  const base = JSON.stringify({ type: 'chat', seq: 1, text: '' }).length;
  const frame = Buffer.from(JSON.stringify({ type: 'chat', seq: 1, text: 'x'.repeat(64 - base) }));
  const per = 100;
  const batchOn = (ws: WebSocket) => async () => {
    const target = handled + per;
    for (let i = 0; i < per; i++) ws.emit('message', frame, false);
    while (handled < target) await new Promise((resolve) => setImmediate(resolve));
  };
  const [rawRate, plainRate, enhancedRate] = await compareAsync([batchOn(raw), batchOn(plainWs), batchOn(enhancedWs)], per);
  results.push({ name: 'dispatch, batches awaited: no enhancer', size: '64 B', rawOpsPerSec: rawRate, riversideOpsPerSec: plainRate });
  results.push({ name: 'dispatch, batches awaited: one guard + one pipe', size: '64 B', rawOpsPerSec: rawRate, riversideOpsPerSec: enhancedRate });
}

// Fan-out: one 64 B message to every member of a channel; ops are deliveries.
for (const members of [1, 100, 1000, 10_000]) {
  const channel = `room-${members}`;
  const raw = new Set<WebSocket>();
  for (let i = 0; i < members; i++) {
    raw.add(sinkWebSocket());
    riversideConnection(channel);
  }
  // As in an app whose handlers all use one codec.
  const local = new LocalDelivery(registry, { soleCodec: codec } as unknown as HandlerExplorer);
  let seq = 0;
  const text = 'x'.repeat(33);
  const [rawRate, riversideRate] = compare(
    () => {
      const encoded = JSON.stringify({ type: 'msg', seq: seq++, text });
      for (const client of raw) if (client.readyState === WebSocket.OPEN) client.send(encoded);
    },
    // What DeliveryService.deliver() does when there is no cluster transport.
    () => void local.deliver({ channel }, new EncodedMessage({ type: 'msg', seq: seq++, text })),
    members,
  );
  results.push({ name: 'fan-out (deliveries)', size: members === 1 ? '1 member' : `${members.toLocaleString('en-US')} members`, rawOpsPerSec: rawRate, riversideOpsPerSec: riversideRate });
}

if (process.send === undefined) console.table(results);
await send({ type: 'micro', results });
process.exit(0);
