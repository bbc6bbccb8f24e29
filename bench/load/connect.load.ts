// The connect-rate scenario's load generator: opens `count` connections, `concurrency` at a
// time, each with its user id in the query, and closes each one as soon as its 101 has arrived
// (connection churn: the server pays the upgrade, the auth, @OnInit and the close of every
// connection while it keeps accepting new ones). It costs as little as it can per connection:
// a bare TCP socket, one pre-built request string, the status line checked and nothing else
// parsed, source ports chosen here instead of searched for by the kernel. The server, not this
// process, must be what limits the rate; the orchestrator checks that from both CPU figures.
import { connect, type Socket } from 'node:net';
import { boundLifetime, childConfig, nowNs, ownCpuSeconds, send } from '../lib/process.js';

export interface ConnectLoadConfig {
  host: string;
  port: number;
  path: string;
  count: number;
  concurrency: number;
  userPrefix: string;
  /** A 127.0.0.x address of this generator's own, not used by the previous rounds. */
  localAddress: string;
  maxLifetimeMs: number;
}

/** `close`: the orchestrator has read the server's CPU; exit (it would otherwise wait to be killed). */
export type ConnectLoadCommand = { type: 'go' } | { type: 'close' };

export type ConnectLoadReport =
  | { type: 'ready' }
  | { type: 'done'; opened: number; startNs: number; endNs: number; cpuSeconds: number }
  | { type: 'error'; message: string };

const config = childConfig<ConnectLoadConfig>();
boundLifetime(config.maxLifetimeMs);

// Any valid key does (RFC 6455 4.1: 16 bytes, base64); the server's accept hash is not checked.
const KEY = 'dGhlIHNhbXBsZSBub25jZQ==';
const requestTail =
  `&role=idle HTTP/1.1\r\nHost: ${config.host}:${config.port}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n` +
  `Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: ${KEY}\r\n\r\n`;
const requestHead = `GET ${config.path}?user=${encodeURIComponent(config.userPrefix)}-`;
/** "HTTP/1.1 101": the status code is bytes 9-11 of the response. */
const SWITCHING = 0x31_30_31;

// Source ports handed out in turn (see scale.load.ts: the kernel's search for a free port on a
// bound address grows with the ports in use). The address is fresh, so a port is only taken
// when a wildcard listener holds it: that one is skipped.
let nextSourcePort = 10_000;

let opened = 0;

function openOne(index: number, done: () => void, fail: (error: Error) => void): void {
  const socket: Socket = connect({ host: config.host, port: config.port, localAddress: config.localAddress, localPort: nextSourcePort++ });
  socket.setNoDelay(true);
  socket.once('connect', () => socket.write(requestHead + index + requestTail));
  socket.once('data', (chunk: Buffer) => {
    // The 101 fits in the first chunk; anything else is a refusal.
    const status = chunk.length >= 12 ? (chunk[9] << 16) | (chunk[10] << 8) | chunk[11] : 0;
    socket.destroy();
    if (status !== SWITCHING) return fail(new Error(`connection ${index} answered ${chunk.toString('latin1', 0, 40)}`));
    opened++;
    done();
  });
  socket.once('error', (error: NodeJS.ErrnoException) => {
    socket.destroy();
    // The source port is held by a listener: the same connection from the next port.
    if (error.code === 'EADDRINUSE') openOne(index, done, fail);
    else fail(error);
  });
}

function run(): Promise<void> {
  return new Promise((resolve, reject) => {
    let next = 0;
    let running = 0;
    const onDone = () => {
      running--;
      if (next < config.count) {
        running++;
        openOne(next++, onDone, reject);
      } else if (running === 0) {
        resolve();
      }
    };
    for (; running < config.concurrency && next < config.count; running++) openOne(next++, onDone, reject);
  });
}

process.on('message', (command: ConnectLoadCommand) => {
  if (command.type === 'close') process.exit(0);
  if (command.type !== 'go') return;
  const cpuBefore = ownCpuSeconds();
  const startNs = nowNs();
  run().then(
    () => send({ type: 'done', opened, startNs, endNs: nowNs(), cpuSeconds: ownCpuSeconds() - cpuBefore } satisfies ConnectLoadReport),
    (error: Error) => send({ type: 'error', message: error.message } satisfies ConnectLoadReport).then(() => process.exit(1)),
  );
});

await send({ type: 'ready' } satisfies ConnectLoadReport);
