// bench:scale's load generator: opens `count` authenticated connections (users u<offset>..)
// from its own 127.0.x.y source address and holds them; the first `members` join channel
// `room`. It records the latency of every message carrying a send time `{"t":<ns>}` between
// 'measure' and 'report', counts fan-out messages until told how many to expect, and reports
// when every socket has been closed by the server (the drain on SIGTERM).
import { boundLifetime, childConfig, nowNs, send } from '../lib/process.js';
import { BenchSocket } from './bench-socket.js';
import { pooled } from './wire.js';
import { TRACE_DIR, traceProcess } from '../lib/trace.js';

export interface ScaleLoadConfig {
  host: string;
  port: number;
  path: string;
  offset: number;
  count: number;
  members: number;
  localAddress: string;
  /** Handshakes in flight at once. */
  concurrency: number;
  maxLifetimeMs: number;
  /** Reconnect (honouring Retry-After) when the server drops a socket, as browsers with a retry loop do. */
  reconnect: boolean;
  /** Monotonic time (ns) after which no new connection is opened: the run reports what it has. */
  openDeadlineNs: number;
}

export type ScaleLoadCommand = { type: 'measure' } | { type: 'report' } | { type: 'arm'; perMember: number } | { type: 'drain' } | { type: 'close' };

export type ScaleLoadReport =
  | { type: 'ready'; connected: number; startNs: number; endNs: number }
  | { type: 'latencies'; micros: number[]; open: number; closed: number; refused: number; attempts: number }
  | { type: 'armed'; members: number }
  | { type: 'reached'; atNs: number }
  | { type: 'drained'; atNs: number; closeCodes: Record<number, number> }
  | { type: 'reconnected'; atNs: number; attempts: number; refused: number }
  | { type: 'error'; message: string };

const config = childConfig<ScaleLoadConfig>();
boundLifetime(config.maxLifetimeMs);

let measuring = false;
let latencies: number[] = [];
/** SCALE_TRACE_DIR only: [send ns, receive ns] of every measured delivery. */
const samples: [number, number][] = [];
const tracing = TRACE_DIR !== undefined;
traceProcess('load', () => ({ samples }));
let fanoutReceived = 0;
let fanoutTarget = Number.POSITIVE_INFINITY;
let open = 0;
/** Open sockets that joined the channel. */
let membersOpen = 0;
let draining = false;
const closeCodes: Record<number, number> = {};
let lost = 0;
let reconnectAttempts = 0;
let refused = 0;
/** Failed attempts per connection index. */
const failures = new Uint8Array(config.count);

// Source ports are handed out in turn rather than left to the kernel: binding to a source
// address with port 0 makes the kernel search for a free port, at a cost that grows with the
// ports in use (at 17,000 sockets the load generator spent ~1 ms of CPU per connection, more
// than the server). Each load generator has a source address of its own, so a port is only
// taken when a wildcard listener or a socket of an earlier run holds it: then the next is tried.
const FIRST_SOURCE_PORT = 10_000;
const LAST_SOURCE_PORT = 65_535;
let nextSourcePort = FIRST_SOURCE_PORT;
function sourcePort(): number {
  const port = nextSourcePort;
  nextSourcePort = port === LAST_SOURCE_PORT ? FIRST_SOURCE_PORT : port + 1;
  return port;
}
/** Source ports found taken (skipped, not counted as failed attempts). */
let portsTaken = 0;

const DIGIT_0 = 0x30;
const CLOSE_BRACE = 0x7d;

/**
 * `{"t":<ns>}` from a user delivery; anything else is a fan-out message (`{"t":<ns>,"seq":<n>}`
 * from the cluster, `{"type":"msg","seq":<n>,...}` from the raw ws server). Read from the bytes
 * (no string per frame: the payload is a view of the shared read buffer, see rawUpgrade); the
 * send time, < 2^53 ns, is exact in a double.
 */
function onText(payload: Buffer): void {
  const now = nowNs();
  let t = 0;
  let i = 5;
  for (; i < payload.length; i++) {
    const digit = payload[i] - DIGIT_0;
    if (digit < 0 || digit > 9) break;
    t = t * 10 + digit;
  }
  const userDelivery = i > 5 && i === payload.length - 1 && payload[i] === CLOSE_BRACE;
  if (!userDelivery) {
    if (++fanoutReceived >= fanoutTarget) {
      fanoutTarget = Number.POSITIVE_INFINITY;
      void send({ type: 'reached', atNs: now } satisfies ScaleLoadReport);
    }
    return;
  }
  if (measuring) {
    latencies.push(Math.round((now - t) / 1000));
    if (tracing) samples.push([t, now]);
  }
}

async function open1(index: number): Promise<void> {
  for (;;) {
    try {
      const socket = await BenchSocket.connect({
        protocol: 'ws',
        host: config.host,
        port: config.port,
        path: config.path,
        user: `u${config.offset + index}`,
        role: index < config.members ? 'member' : 'idle',
        localAddress: config.localAddress,
        localPort: sourcePort(),
        rawHandshake: true,
      });
      socket.collect = true;
      socket.onText = onText;
      open++;
      const member = index < config.members;
      if (member) membersOpen++;
      socket.socket.once('close', () => {
        open--;
        if (member) membersOpen--;
        closeCodes[socket.closeCode] = (closeCodes[socket.closeCode] ?? 0) + 1;
        if (config.reconnect && !draining) {
          lost++;
          void open1(index).then(() => {
            if (--lost === 0) void send({ type: 'reconnected', atNs: nowNs(), attempts: reconnectAttempts, refused } satisfies ScaleLoadReport);
          });
        } else if (draining && open === 0) void send({ type: 'drained', atNs: nowNs(), closeCodes } satisfies ScaleLoadReport);
      });
      return;
    } catch (error) {
      const message = (error as Error).message;
      if (/EADDRINUSE|EADDRNOTAVAIL/.test(message)) {
        if (++portsTaken > 2 * (LAST_SOURCE_PORT - FIRST_SOURCE_PORT)) throw error;
        continue;
      }
      // A 503 from maxHandshakesPerSecond or maxConnections, or transient on a saturated machine
      // (a timeout, a reset, a worker gone): back after Retry-After (else a second) plus up to a
      // second of jitter, as a well-behaved client does; up to 10 failures, and as many 503s as
      // the server hands out (it says when to come back: that is the point of the storm).
      const unavailable = message.includes('HTTP 503');
      if (!unavailable && (++failures[index] > 10 || !/timed out|ECONNRESET|ECONNREFUSED|socket hang up|EPIPE/.test(message))) throw error;
      reconnectAttempts++;
      if (unavailable) refused++;
      const retryAfter = Number(/Retry-After: (\d+)/.exec(message)?.[1] ?? 1);
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + Math.random() * 1000));
    }
  }
}

process.on('message', (command: ScaleLoadCommand) => {
  switch (command.type) {
    case 'measure':
      latencies = [];
      measuring = true;
      return;
    case 'report':
      measuring = false;
      void send({ type: 'latencies', micros: latencies, open, closed: Object.values(closeCodes).reduce((n, k) => n + k, 0), refused, attempts: reconnectAttempts } satisfies ScaleLoadReport);
      return;
    case 'arm':
      fanoutTarget = fanoutReceived + command.perMember * membersOpen;
      void send({ type: 'armed', members: membersOpen } satisfies ScaleLoadReport);
      return;
    case 'drain':
      draining = true;
      return;
    case 'close':
      draining = true;
      process.exit(0);
  }
});

const startNs = nowNs();
try {
  await pooled(
    Array.from({ length: config.count }, (_, i) => i),
    config.concurrency,
    (i) => (nowNs() < config.openDeadlineNs ? open1(i) : Promise.resolve()),
  );
} catch (error) {
  await send({ type: 'error', message: (error as Error).message } satisfies ScaleLoadReport);
  process.exit(1);
}
await send({ type: 'ready', connected: open, startNs, endNs: nowNs() } satisfies ScaleLoadReport);
